#!/usr/bin/env bash
# Warm and cold `bwdoctor check` on the GPU box (H200; torch 2.11+cu130 in the system Python 3.12; no internet),
# timed in one run against that Python's `python3 -m torch.utils.collect_env` and a bare interpreter start.
#
# Run from the repository root, after installing this tree as the lead does:
#   pip install -q --no-deps --no-build-isolation --no-index --target /tmp/bw .
#   (its dependencies, as pip installs them with bytecode: packaging, pyelftools, distro, zstandard, lz4 and
#   nvidia-ml-py, in /tmp/site; the box's torch venv was installed without bytecode and sets
#   PYTHONDONTWRITEBYTECODE=1, so a dependency borrowed from it is compiled from source on every run)
#   bash benchmarks/gpu_box_speed.sh
# It passes when the lines "warm ... PASS" and "cold ... PASS" are printed: the median warm check <= 0.30 s and the
# median cold check (an empty bwdoctor cache, the issue's "cold") <= 1.50 s. As root it also times
# "check cold+pagecache": an empty bwdoctor cache and the kernel's page cache dropped before each run (reported
# separately, no PASS/FAIL). DROP=0 skips that row; RUNS=N changes the number of rounds (default 5).
# The per-probe table says where the time goes; the `nvml` row of a warm run is the wait for the NVML child that
# starts before the checks are imported.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH=/tmp/bw:/tmp/site
PY=${PY:-$(command -v python3)}
# bytecode, as a pip-installed package has it (pip --target writes it; this only fills what is missing)
python3 -m compileall -q /tmp/bw /tmp/site >/dev/null 2>&1 || true
cd /tmp || exit 2 # the installed bwdoctor, never the source tree beside the script
python3 -m bwdoctor --version
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -2
drop=()
if [ "${DROP:-1}" != 0 ] && [ -w /proc/sys/vm/drop_caches ]; then
    drop=(--drop-page-cache)
fi
exec python3 "$REPO/benchmarks/startup.py" --python "$PY" --runs "${RUNS:-5}" --want-warm 0.3 --want-cold 1.5 \
    "${drop[@]}"
