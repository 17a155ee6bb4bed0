#!/usr/bin/env python3
"""Wall time of `bwdoctor check` against the reference environment reporters on the same machine.

Usage: python benchmarks/startup.py [--runs N] [--python PY]
Prints each tool's median wall time and the ratio to bwdoctor. The reference tools are run only if
present: `python -m torch.utils.collect_env` (imports torch) and `vllm collect-env`.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(argv, runs):
    times, rc = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            rc = res.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), rc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--python", default=sys.executable, help="interpreter with torch for the reference tools")
    a = ap.parse_args()
    rows = [("bwdoctor check", [sys.executable, "-m", "bwdoctor", "check", "--format", "json", "--python", a.python])]
    rows.append(("torch collect_env", [a.python, "-m", "torch.utils.collect_env"]))
    if shutil.which("vllm"):
        rows.append(("vllm collect-env", ["vllm", "collect-env"]))
    base = None
    print(f"{'tool':<20} {'median s':>9} {'min s':>7} {'rc':>8} {'× bwdoctor':>11}")
    for name, argv in rows:
        med, low, rc = timed(argv, a.runs)
        base = base or med
        print(f"{name:<20} {med:9.3f} {low:7.3f} {str(rc):>8} {med / base:11.1f}")


if __name__ == "__main__":
    main()
