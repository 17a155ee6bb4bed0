#!/usr/bin/env python3
"""bwdoctor's link verdicts against `ldd -r` on the same shared objects: prints both times and the ratio.

    python benchmarks/symbols.py [--python PY] [PATH ...]

PATHs are .so files or directories (default: the compiled extensions of the given interpreter's
site-packages and lib-dynload). bwdoctor is timed in-process from a cold Loader (each file parsed once
per run, as in `bwdoctor symbols`); `ldd -r` runs once per file, as a person would. Both read through
a warmed page cache (each tool runs once before it is timed).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bwdoctor.elf.distfiles import iter_elf_files  # noqa: E402
from bwdoctor.elf.dynlink import interpreter_loader  # noqa: E402

_ENV = (
    "import json,site,sys,sysconfig; print(json.dumps([sys.executable, sysconfig.get_paths()['platlib'], "
    "sysconfig.get_paths()['platstdlib'] + '/lib-dynload']))"
)


def files_of(paths):
    out = []
    for p in paths:
        out += list(iter_elf_files(p)) if os.path.isdir(p) else [p]
    return [f for f in out if f.endswith(".so") or ".so." in f]


def bwdoctor_pass(exe, files, torch_dir):
    ld, _ = interpreter_loader({"executable": exe}, torch_dir=torch_dir)
    return [ld.check(f) for f in files]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("paths", nargs="*")
    a = ap.parse_args()
    exe, platlib, dynload = json.loads(
        subprocess.run([a.python, "-c", _ENV], capture_output=True, text=True, timeout=30, check=True).stdout
    )
    files = files_of(a.paths or [platlib, dynload])
    torch_dir = os.path.join(platlib, "torch") if os.path.isdir(os.path.join(platlib, "torch", "lib")) else None
    if not files:
        sys.exit("no shared objects found")
    if not shutil.which("ldd"):
        sys.exit("ldd not installed")
    bwdoctor_pass(exe, files, torch_dir)
    t0 = time.perf_counter()
    results = bwdoctor_pass(exe, files, torch_dir)
    bw = time.perf_counter() - t0

    def ldd_pass():
        for f in files:
            subprocess.run(["ldd", "-r", f], capture_output=True, timeout=300)

    ldd_pass()
    t0 = time.perf_counter()
    ldd_pass()
    ldd = time.perf_counter() - t0
    failing = sum(1 for r in results if r["missing_libraries"] or r["undefined"] or r["missing_versions"] or r["error"])
    print(
        f"{len(files)} shared objects under {a.python} ({'with' if torch_dir else 'without'} torch preloaded); "
        f"{failing} would not load"
    )
    print(f"bwdoctor {bw * 1000:.0f} ms, ldd -r {ldd * 1000:.0f} ms: bwdoctor is x{ldd / bw:.1f} faster")


if __name__ == "__main__":
    main()
