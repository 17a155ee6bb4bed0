#!/usr/bin/env python3
"""Wall time of bwdoctor against references measured in the same run, on the same (possibly busy) machine.

Usage: python benchmarks/startup.py --python VENV/bin/python [--target sm_120] [--runs 5] [--reference SRC]

Every repetition runs each command once, round-robin, so that the load of a shared machine falls on all of them
alike; medians are printed, with the ratios the speed issue asks for:
  check (warm cache)      vs  VENV/bin/python -m torch.utils.collect_env   (the environment's own reporter)
  bwdoctor --version      vs  python -c pass                                (a bare interpreter start)
  check (cold: empty cache directory), check --no-cache, and, with --reference SRC, the same cold check of another
  bwdoctor installed into SRC (`pip install --target SRC <tree at an older commit>`), first on sys.path.
Then the per-probe seconds of a warm and a cold run (the report's "probes"), and the load average seen.
bwdoctor runs as `python -m bwdoctor` with this script's interpreter (PYTHONPATH is passed through): run the
script with the interpreter of a regular install (`pip install .`, as the README installs it), from a directory
other than the source tree. An editable install (`pip install -e`) adds its import hook to every start.
--drop-page-cache (root only) adds a row "check cold+pagecache": an empty bwdoctor cache AND the kernel's page
cache emptied before each run (the issue's "cold" is the first run after dropping bwdoctor's cache only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple


def run_once(argv: List[str], env: Dict[str, str], timeout: float = 300) -> Tuple[float, object, str]:
    t0 = time.perf_counter()
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        rc: object = res.returncode
        out = res.stdout
    except subprocess.TimeoutExpired:
        rc, out = "timeout", ""
    return time.perf_counter() - t0, rc, out


def drop_page_cache() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def probe_times(report_text: str) -> Dict[str, float]:
    try:
        doc = json.loads(report_text)
    except ValueError:
        return {}
    probes = doc.get("probes") if isinstance(doc, dict) else None
    return {k: float(v) for k, v in (probes or {}).items()}


def findings_of(report_text: str) -> Optional[list]:
    try:
        doc = json.loads(report_text)
    except ValueError:
        return None
    return sorted(json.dumps(f, sort_keys=True) for f in doc.get("findings", []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--python", default=sys.executable, help="the inspected interpreter (with torch, for collect_env)")
    ap.add_argument("--target", default=None, help="--target for bwdoctor check (default: the GPUs present)")
    ap.add_argument("--reference", metavar="SRC", help="another bwdoctor source tree to time cold (PYTHONPATH=SRC)")
    ap.add_argument("--no-collect-env", action="store_true", help="skip torch's collect_env (e.g. no torch)")
    ap.add_argument("--drop-page-cache", action="store_true", help="root: drop the page cache before cold runs")
    ap.add_argument("--want-warm", type=float, help="print PASS/FAIL for the median warm check against this (s)")
    ap.add_argument("--want-cold", type=float, help="print PASS/FAIL for the median cold check against this (s)")
    a = ap.parse_args()

    base_env = dict(os.environ)
    base_env.pop("BWDOCTOR_NO_CACHE", None)
    # timed as installed: pip writes bytecode at install time (torch's .pyc are there); a shell with
    # PYTHONDONTWRITEBYTECODE=1 would otherwise compile every bwdoctor module from source on every run
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    scratch = tempfile.mkdtemp(prefix="bwdoctor-bench-")
    warm_dir = os.path.join(scratch, "warm")
    bw = [sys.executable, "-m", "bwdoctor"]
    check_args = ["check", "--format", "json", "--python", a.python] + (["--target", a.target] if a.target else [])
    warm_env = dict(base_env, BWDOCTOR_CACHE_DIR=warm_dir)
    # fill the warm cache (and write the bytecode) once, not timed
    _, rc, warm_out = run_once(bw + check_args, warm_env)
    nocache_env = dict(base_env, BWDOCTOR_NO_CACHE="1")
    _, _, nocache_out = run_once(bw + check_args, nocache_env)

    def cold_env(i: int) -> Dict[str, str]:
        return dict(base_env, BWDOCTOR_CACHE_DIR=os.path.join(scratch, f"cold{i}"))

    rows: List[Tuple[str, object]] = [
        ("python -c pass", lambda i: ([sys.executable, "-c", "pass"], base_env)),
        ("bwdoctor --version", lambda i: (bw + ["--version"], base_env)),
        ("check warm", lambda i: (bw + check_args, warm_env)),
        ("check cold", lambda i: (bw + check_args, cold_env(i))),
        ("check --no-cache", lambda i: (bw + check_args, nocache_env)),
    ]
    if a.drop_page_cache:
        rows.append(
            (
                "check cold+pagecache",
                lambda i: (bw + check_args, dict(base_env, BWDOCTOR_CACHE_DIR=os.path.join(scratch, f"dropped{i}"))),
            )
        )
    if a.reference:
        # the reference tree first on sys.path, and an editable install's finder of this tree out of the way
        ref = [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith('__editable__')]; "
            "from bwdoctor.cli import main; sys.exit(main())",
            os.path.abspath(a.reference),
        ]
        rows.append(
            ("reference check", lambda i: (ref + check_args, dict(base_env, BWDOCTOR_CACHE_DIR=f"{scratch}/r{i}")))
        )
    if not a.no_collect_env:
        rows.append(("torch collect_env", lambda i: ([a.python, "-m", "torch.utils.collect_env"], base_env)))

    times: Dict[str, List[float]] = {name: [] for name, _ in rows}
    rcs: Dict[str, object] = {}
    cold_probes: Dict[str, List[float]] = {}
    load_before = os.getloadavg()
    for i in range(a.runs):
        for name, make in rows:
            argv, env = make(i)  # type: ignore[operator]
            if name == "check cold+pagecache" and not drop_page_cache():
                print("could not drop the page cache (run as root)", file=sys.stderr)
            dt, rc, out = run_once(argv, env)
            times[name].append(dt)
            rcs[name] = rc
            if name == "check cold":
                for k, v in probe_times(out).items():
                    cold_probes.setdefault(k, []).append(v)
    load_after = os.getloadavg()
    _, _, warm_last = run_once(bw + check_args, warm_env)
    shutil.rmtree(scratch, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    probe_where = [sys.executable, "-c", "import bwdoctor; print(bwdoctor.__file__)"]
    where = subprocess.run(probe_where, capture_output=True, text=True, env=base_env, timeout=60).stdout.strip()
    print(
        f"cores {os.cpu_count()}, load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
        f"{a.runs} runs each, round-robin; inspected {a.python}; bwdoctor from {where}"
    )
    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'max s':>7} {'rc':>6}")
    for name in times:
        v = times[name]
        print(f"{name:<22} {med[name]:9.3f} {min(v):7.3f} {max(v):7.3f} {str(rcs.get(name)):>6}")
    print()
    print(f"--version / bare python        {med['bwdoctor --version'] / med['python -c pass']:6.2f}x  (want <= 3)")
    if "torch collect_env" in med:
        print(f"collect_env / check warm       {med['torch collect_env'] / med['check warm']:6.1f}x  (want >= 15)")
        print(f"collect_env / check cold       {med['torch collect_env'] / med['check cold']:6.1f}x")
    print(f"check cold / check warm        {med['check cold'] / med['check warm']:6.2f}x")
    if "reference check" in med:
        print(f"check cold / reference cold    {med['check cold'] / med['reference check']:6.2f}x  (want <= 1)")
    if "check cold+pagecache" in med:
        print(f"cold+pagecache / warm          {med['check cold+pagecache'] / med['check warm']:6.2f}x")
    for label, name, want in (("warm", "check warm", a.want_warm), ("cold", "check cold", a.want_cold)):
        if want is not None:
            verdict = "PASS" if med[name] <= want else "FAIL"
            print(f"{label} check median {med[name]:.3f} s, want <= {want:g} s: {verdict}")
    same = findings_of(warm_out) == findings_of(nocache_out) == findings_of(warm_last)
    print(f"findings identical warm / --no-cache / cold-filled: {same}")
    print()
    warm_probe = probe_times(warm_last)
    print(f"{'probe':<22} {'warm s':>8} {'cold s':>8}   (slowest 12, cold = median over the cold runs)")
    cold_med = {k: statistics.median(v) for k, v in cold_probes.items()}
    for name in sorted(set(warm_probe) | set(cold_med), key=lambda n: -cold_med.get(n, 0))[:12]:
        print(f"{name:<22} {warm_probe.get(name, float('nan')):8.3f} {cold_med.get(name, float('nan')):8.3f}")
    return 0 if rc in (0, 1, 3) else 1


if __name__ == "__main__":
    sys.exit(main())
