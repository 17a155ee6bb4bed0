#!/usr/bin/env python3
"""Launch every CUDA fixture's kernel on this machine's GPU and compare with bwdoctor's verdicts.

    python3 tools/launch_fixtures.py                     # GPU 0, all tests/fixtures/cuda/*.so
    python3 tools/launch_fixtures.py --device 1 --json /tmp/launch.json
    python3 tools/launch_fixtures.py --dry-run --cc 12.0 # no GPU: print the predictions only

Each fixture exports `extern "C" int launch()` which runs its kernel and returns the cudaError_t
(0 = ran and computed the right value, 209 = cudaErrorNoKernelImageForDevice, 222 =
cudaErrorUnsupportedPtxVersion: the driver is older than the PTX, -1 = wrong result).
Each fixture runs in its own child process so that one failure cannot poison the next.
The fixtures link libcudart.so.13 dynamically; it is looked up in --cudart, $CUDA_HOME/lib64,
/usr/local/cuda/lib64, the nvidia-cuda-runtime wheel of this interpreter, then the loader path.
Exit status: 0 every verdict agreed, 1 some did not, 2 no GPU or no CUDA runtime.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bwdoctor.domain.arch import parse_cc  # noqa: E402
from bwdoctor.domain.compat import NATIVE, PTX_JIT, verdict_for_file  # noqa: E402
from bwdoctor.elf.fatbin import scan_file  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "cuda"
NO_KERNEL_IMAGE = 209
ERROR_NAMES = {
    0: "success",
    209: "cudaErrorNoKernelImageForDevice",
    222: "cudaErrorUnsupportedPtxVersion",
    218: "cudaErrorInvalidPtx",
    100: "cudaErrorNoDevice",
    35: "cudaErrorInsufficientDriver",
    -1: "ran but computed a wrong value",
}
CC_MAJOR_ATTR, CC_MINOR_ATTR = 75, 76  # cudaDevAttrComputeCapabilityMajor / Minor


def cudart_candidates(explicit):
    """Paths (or sonames) to try for libcudart.so.13, most specific first."""
    out = [explicit] if explicit else []
    for base in filter(None, [os.environ.get("CUDA_HOME"), "/usr/local/cuda"]):
        out += sorted(glob.glob(os.path.join(base, "lib64", "libcudart.so.13*")))
    for sp in sys.path:
        out += sorted(glob.glob(os.path.join(sp, "nvidia", "cu13", "lib", "libcudart.so.13*")))
        out += sorted(glob.glob(os.path.join(sp, "nvidia", "cuda_runtime", "lib", "libcudart.so.13*")))
    return out + ["libcudart.so.13"]


def load_cudart(explicit=None):
    """libcudart loaded RTLD_GLOBAL, so that each fixture's DT_NEEDED resolves to it; or None."""
    for cand in cudart_candidates(explicit):
        try:
            return ctypes.CDLL(cand, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
    return None


def device_cc(cudart, device):
    """(major, minor) of a CUDA device through the runtime API."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    for attr, out in ((CC_MAJOR_ATTR, major), (CC_MINOR_ATTR, minor)):
        err = cudart.cudaDeviceGetAttribute(ctypes.byref(out), attr, device)
        if err:
            raise RuntimeError(f"cudaDeviceGetAttribute failed: {ERROR_NAMES.get(err, err)}")
    return major.value, minor.value


def run_one(path, device, cudart_path, symbol="launch"):
    """Child process: load one fixture and print the return code of its launch function."""
    cudart = load_cudart(cudart_path)
    if cudart is None:
        print("no-cudart")
        return 2
    cudart.cudaSetDevice(device)
    lib = ctypes.CDLL(str(path))
    fn = getattr(lib, symbol)
    fn.restype = ctypes.c_int
    print(fn())
    return 0


# units_*.so fixtures: one launch function per compiled unit, judged by that unit's kernel family
UNIT_LAUNCHERS = {"launch_marlin": "marlin", "launch_attention": "paged-attention"}


def launch_targets(so, cc, force_ptx_jit):
    """(symbol, Verdict-like) pairs to launch in one fixture: launch() judged by the file's verdict, or one
    launch_<unit>() per unit judged by its kernel family's verdict (bwdoctor kernels)."""
    if so.name.startswith("units_"):
        from bwdoctor.domain.compat import Verdict
        from bwdoctor.elf.cubin import read_units
        from bwdoctor.kernels import file_report

        rep = file_report(read_units(str(so), names=True), [("gpu", cc)])
        return [(sym, Verdict(rep["families"][fam]["targets"]["gpu"], fam)) for sym, fam in UNIT_LAUNCHERS.items()]
    item = scan_file(so)
    if force_ptx_jit:  # CUDA_FORCE_PTX_JIT=1 makes the driver ignore cubins: only PTX can run
        item = {**item, **{sec: {**item[sec], "elf": []} for sec in ("fatbin", "relfatbin")}}
    return [("launch", verdict_for_file(cc, item))]


def expected_code(status):
    return 0 if status in (NATIVE, PTX_JIT) else NO_KERNEL_IMAGE


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fixtures", nargs="*", help="fixture .so files (default: tests/fixtures/cuda/*.so)")
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--cudart", help="path of libcudart.so.13 to use")
    ap.add_argument("--cc", help="with --dry-run: the compute capability to predict for (e.g. 12.0)")
    ap.add_argument("--dry-run", action="store_true", help="print predictions, launch nothing")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--force-ptx-jit", action="store_true", help="set CUDA_FORCE_PTX_JIT=1 for the launches")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--symbol", default="launch", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        return run_one(args.one, args.device, args.cudart, args.symbol)

    files = [Path(f) for f in args.fixtures] or sorted(FIXTURES.glob("*.so"))
    if args.dry_run:
        cc = parse_cc(args.cc or "12.0")
    else:
        cudart = load_cudart(args.cudart)
        if cudart is None:
            print("libcudart.so.13 not found: pass --cudart PATH or set CUDA_HOME", file=sys.stderr)
            return 2
        try:
            cc = device_cc(cudart, args.device)
        except RuntimeError as exc:
            print(f"no usable GPU: {exc}", file=sys.stderr)
            return 2
    env = dict(os.environ, **({"CUDA_FORCE_PTX_JIT": "1"} if args.force_ptx_jit else {}))
    rows, mismatches = [], 0
    print(f"compute capability {cc[0]}.{cc[1]}{' (dry run)' if args.dry_run else ''}")
    for so in files:
        for symbol, v in launch_targets(so, cc, args.force_ptx_jit):
            want = expected_code(v.status)
            got, note = None, ""
            if not args.dry_run:
                cmd = [sys.executable, __file__, "--one", str(so), "--symbol", symbol, "--device", str(args.device)]
                if args.cudart:
                    cmd += ["--cudart", args.cudart]
                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
                    last = (proc.stdout.strip().splitlines() or ["?"])[-1]
                    got = int(last) if last.lstrip("-").isdigit() else None
                    note = "" if got is not None else (proc.stderr.strip().splitlines() or ["crashed"])[-1]
                except subprocess.TimeoutExpired:
                    note = "timed out"
            agree = None if got is None else (got == want)
            mismatches += agree is False or (not args.dry_run and got is None)
            label = so.name if symbol == "launch" else f"{so.name}:{symbol}"
            rows.append(
                {
                    "fixture": label,
                    "verdict": v.status,
                    "entry": v.entry,
                    "section": v.section,
                    "expected": want,
                    "launch": got,
                    "launch_name": ERROR_NAMES.get(got, got),
                    "agree": agree,
                    "note": note,
                }
            )
            shown = "-" if got is None else f"{got} {ERROR_NAMES.get(got, '')}"
            mark = {True: "ok", False: "MISMATCH", None: "" if args.dry_run else "FAILED"}[agree]
            print(f"{label:16} {v.status:8} {str(v.entry):14} launch={shown:38} {mark} {note}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"cc": list(cc), "dry_run": args.dry_run, "force_ptx_jit": args.force_ptx_jit, "results": rows},
                indent=2,
            )
        )
    if not args.dry_run:
        print(f"{len(rows) - mismatches}/{len(rows)} agree")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
