#!/usr/bin/env bash
# Build the small real CUDA .so fixtures under tests/fixtures/cuda/ and record cuobjdump's
# listings beside each (NAME.so → NAME.cuobjdump.txt), then derive the hostile fixtures.
#
#   tools/build_cuda_fixtures.sh            # NVCC and CUOBJDUMP may be set in the environment
#
# Every fixture exports `extern "C" int launch()` (runs its kernel, returns the cudaError_t),
# which tools/launch_fixtures.py calls on a real GPU. libcudart is linked shared to keep
# each file around 25 KB.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/tests/fixtures/cuda"
src="$out/src"
NVCC="${NVCC:-/usr/local/bin/nvcc}"
if [[ -z "${CUOBJDUMP:-}" ]]; then
    CUOBJDUMP="$(ls "$here"/.venv/lib/python3*/site-packages/nvidia/cu*/bin/cuobjdump 2>/dev/null | head -1)"
fi
[[ -x "$NVCC" ]] || { echo "nvcc not found at $NVCC" >&2; exit 2; }
[[ -x "$CUOBJDUMP" ]] || { echo "cuobjdump not found (pip install nvidia-cuda-cuobjdump)" >&2; exit 2; }
tmp="$(mktemp -d /tmp/bwfix.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

common=(-shared -Xcompiler -fPIC -cudart shared -O2)

# build NAME SOURCES... -- NVCC-OPTIONS...
build() {
    local name="$1"; shift
    local sources=()
    while [[ "$1" != "--" ]]; do sources+=("$1"); shift; done
    shift
    echo "== $name: $*"
    "$NVCC" "${common[@]}" "$@" -o "$out/$name.so" "${sources[@]}"
    listing "$name"
}

listing() {
    local name="$1" f="$out/$1.so"
    {
        echo "# cuobjdump $("$CUOBJDUMP" --version | tail -1)"
        for opts in "--list-elf" "--list-ptx" "-all --list-elf" "-all --list-ptx"; do
            echo "\$ cuobjdump $opts $name.so"
            # cuobjdump prints its own file name path in messages; keep only the base name
            (cd "$out" && "$CUOBJDUMP" $opts "$name.so" 2>&1 || true) | sed "s#$out/##g"
        done
    } > "$out/$name.cuobjdump.txt"
}

k="$src/kernel.cu"
g() { echo "-gencode" "arch=$1,code=$2"; }

build sm80          "$k" -- $(g compute_80 sm_80)
build sm90a         "$k" -- $(g compute_90a sm_90a)
build sm100         "$k" -- $(g compute_100 sm_100)
build sm120         "$k" -- $(g compute_120 sm_120)
build sm120a        "$k" -- $(g compute_120a sm_120a)
build sm120f        "$k" -- $(g compute_120f sm_120f)
build sm121         "$k" -- $(g compute_121 sm_121)
build ptx120        "$k" -- $(g compute_120 compute_120)
build ptx80         "$k" -- $(g compute_80 compute_80)
build mix           "$k" -- $(g compute_80 sm_80) $(g compute_90 sm_90) $(g compute_120 '[sm_120,compute_120]')
build mix_af        "$k" -- $(g compute_90a sm_90a) $(g compute_100f '[sm_100f,compute_100f]') $(g compute_121a sm_121a)
build mix_lz4       "$k" -- $(g compute_80 sm_80) $(g compute_120 '[sm_120,compute_120]') --compress-mode=speed -Xfatbin -compress-all
build mix_zstd      "$k" -- $(g compute_80 sm_80) $(g compute_120 '[sm_120,compute_120]') --compress-mode=size
build mix_plain     "$k" -- $(g compute_80 sm_80) $(g compute_120 '[sm_120,compute_120]') --no-compress
build two_tu        "$src/tu_a.cu" "$src/tu_b.cu" -- $(g compute_90 sm_90) $(g compute_120 sm_120)
build rdc80         "$src/rdc_a.cu" "$src/rdc_b.cu" -- -rdc=true $(g compute_80 '[sm_80,compute_80]')
build rdc_mix       "$src/rdc_a.cu" "$src/rdc_b.cu" -- -rdc=true $(g compute_90 sm_90) $(g compute_120f '[sm_120f,compute_120f]')

# units_A_B: two translation units compiled apart, unit_marlin.cu for sm_A only and unit_attention.cu for sm_B
# only, linked into one .so (what a vLLM build does per source file): the file has code for both, each unit for one.
units() {
    local a="$1" b="$2" name="units_$1_$2"
    echo "== $name"
    "$NVCC" -c -Xcompiler -fPIC -O2 $(g "compute_$a" "sm_$a") -o "$tmp/marlin.o" "$src/unit_marlin.cu"
    "$NVCC" -c -Xcompiler -fPIC -O2 $(g "compute_$b" "sm_$b") -o "$tmp/attention.o" "$src/unit_attention.cu"
    "$NVCC" -shared -cudart shared -o "$out/$name.so" "$tmp/marlin.o" "$tmp/attention.o"
    listing "$name"
}
units 80 120

"${PYTHON:-python3}" "$here/tools/build_cuda_fixtures_hostile.py" "$out"
echo "fixtures written to $out"
