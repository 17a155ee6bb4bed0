#!/usr/bin/env python3
"""Coverage-guided fuzzing campaign (atheris) over bwdoctor's parsers.

    python benchmarks/fuzz.py [--runs 1000000] [--only NAME ...] [--max-len 8192] [--out DIR]

Each target of tests/fuzz_targets.py runs in its own process under atheris (libFuzzer) with a
1 s per-input timeout and a 2 GiB memory limit; crashing inputs are written to --out and should be
turned into regression tests. Prints, per target: inputs executed, seconds, coverage, crashers.
Requires `pip install atheris`.
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def child(name: str, argv):
    import atheris

    sys.path.insert(0, str(TESTS))
    with atheris.instrument_imports(include=["bwdoctor"]):
        import fuzz_targets
    target = {**fuzz_targets.TARGETS, **fuzz_targets.PENDING}[name]
    atheris.Setup([sys.argv[0], *argv], lambda data: target(bytes(data)))
    atheris.Fuzz()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--max-len", type=int, default=8192)
    ap.add_argument("--out", default=str(ROOT / ".scratch" / "fuzz"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a, rest = ap.parse_known_args()
    if a.child:
        child(a.child, rest)
        return
    sys.path.insert(0, str(TESTS))
    import fuzz_targets

    names = a.only or sorted(fuzz_targets.TARGETS)
    print(f"{'target':<18} {'inputs':>9} {'seconds':>8} {'exec/s':>7} {'cov':>6} {'ft':>6}  crashers")
    for name in names:
        out = Path(a.out) / name
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        res = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                name,
                f"-runs={a.runs}",
                f"-max_len={a.max_len}",
                "-timeout=1",
                "-rss_limit_mb=2048",
                f"-artifact_prefix={out}/",
                "-print_final_stats=1",
            ],
            capture_output=True,
            text=True,
        )
        secs = time.time() - t0
        log = res.stderr + res.stdout
        runs = re.findall(r"Done (\d+) runs", log)
        cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
        crashers = sorted(p.name for p in out.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-")))
        n = int(runs[-1]) if runs else 0
        print(
            f"{name:<18} {n:>9} {secs:8.1f} {n / secs if secs else 0:7.0f} {cov[-1][0] if cov else '?':>6} "
            f"{cov[-1][1] if cov else '?':>6}  {', '.join(crashers) or 'none'}"
        )
        if res.returncode not in (0,) and not crashers:
            print("   (exit", res.returncode, ")", log.strip().splitlines()[-3:])


if __name__ == "__main__":
    main()
