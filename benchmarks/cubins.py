#!/usr/bin/env python3
"""bwdoctor's fatbin reader against cuobjdump on the same files: speed and whether the arch sets agree.

    python benchmarks/cubins.py DIR|FILE... [--cuobjdump PATH] [--warm 5] [--json out.json]

For every ELF file under the arguments: time bwdoctor.elf.fatbin.scan_file (first call = cold-ish,
then the best of --warm calls), time `cuobjdump -all --list-elf` + `cuobjdump -all --list-ptx`,
and compare the cubin sets (with the `f` suffix dropped, as cuobjdump --list-elf does), the PTX
sets and the entry counts. Prints one line per file with GPU code, every disagreement, and totals.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bwdoctor.elf.distfiles import is_elf, iter_elf_files  # noqa: E402
from bwdoctor.elf.fatbin import scan_file  # noqa: E402

LINE = re.compile(r"^(ELF|PTX) file\s+\d+: .*\.(sm_\d+[af]?)\.(cubin|ptx)$")


def find_cuobjdump(explicit):
    if explicit:
        return explicit
    here = Path(__file__).resolve().parent.parent
    found = sorted(glob.glob(str(here / ".venv/lib/python3*/site-packages/nvidia/cu*/bin/cuobjdump")))
    return found[0] if found else shutil.which("cuobjdump")


def cuobjdump_list(tool, path, what, timeout):
    """(names, seconds, error) from `cuobjdump -all --list-<what> path`."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [tool, "-all", f"--list-{what}", path], capture_output=True, text=True, timeout=timeout, errors="replace"
        )
    except subprocess.TimeoutExpired:
        return [], time.perf_counter() - t0, f"timed out after {timeout} s"
    dt = time.perf_counter() - t0
    names, err = [], None
    for line in proc.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            names.append(m.group(2))
    text = proc.stderr.strip()
    # "does not contain device code" / "No ELF file found": an answer (nothing), not a failure
    if proc.returncode != 0 and "No " not in text and "does not contain device code" not in text:
        err = (text.splitlines() or [f"exit {proc.returncode}"])[-1]
    return names, dt, err


def drop_f(names):
    return {n[:-1] if n.endswith("f") else n for n in names}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--cuobjdump")
    ap.add_argument("--warm", type=int, default=5, help="warm bwdoctor runs per file (best is kept)")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    tool = find_cuobjdump(args.cuobjdump)
    if not tool:
        print("cuobjdump not found (pip install nvidia-cuda-cuobjdump, or --cuobjdump PATH)", file=sys.stderr)
        return 2
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    files = []
    for p in args.paths:
        files += list(iter_elf_files(p)) if os.path.isdir(p) else ([p] if is_elf(p) else [])
    print(f"cuobjdump: {tool} ({version}); {len(files)} ELF files")
    rows, tot_bw, tot_cu = [], 0.0, 0.0
    for path in files:
        t0 = time.perf_counter()
        item = scan_file(path)
        cold = time.perf_counter() - t0
        warm = min(_timed(scan_file, path) for _ in range(max(1, args.warm)))
        elf, t_elf, e1 = cuobjdump_list(tool, path, "elf", args.timeout)
        ptx, t_ptx, e2 = cuobjdump_list(tool, path, "ptx", args.timeout)
        ours_elf = drop_f(item["fatbin"]["elf"]) | drop_f(item["relfatbin"]["elf"])
        ours_ptx = {n.replace("compute_", "sm_", 1) for n in item["fatbin"]["ptx"] + item["relfatbin"]["ptx"]}
        cu_err = e1 or e2
        problems = []
        if not cu_err and not item["error"]:
            if ours_elf != set(elf):
                problems.append(
                    f"cubins differ: bwdoctor-only {sorted(ours_elf - set(elf))}, "
                    f"cuobjdump-only {sorted(set(elf) - ours_elf)}"
                )
            if ours_ptx != set(ptx):
                problems.append(
                    f"PTX differ: bwdoctor-only {sorted(ours_ptx - set(ptx))}, "
                    f"cuobjdump-only {sorted(set(ptx) - ours_ptx)}"
                )
            if item["entries"] != len(elf) + len(ptx):
                problems.append(f"entry count {item['entries']} vs cuobjdump {len(elf) + len(ptx)}")
        row = {
            "path": path,
            "bwdoctor_cold_s": cold,
            "bwdoctor_warm_s": warm,
            "cuobjdump_s": t_elf + t_ptx,
            "entries": item["entries"],
            "cuobjdump_entries": len(elf) + len(ptx),
            "cuobjdump_error": cu_err,
            "agree": not problems and not cu_err and not item["error"],
            "problems": problems,
            "bwdoctor_error": item["error"],
            "elf": sorted(item["fatbin"]["elf"]),
            "ptx": sorted(item["fatbin"]["ptx"]),
            "rel_elf": item["relfatbin"]["elf"],
            "rel_ptx": item["relfatbin"]["ptx"],
        }
        rows.append(row)
        tot_bw += warm
        tot_cu += t_elf + t_ptx
        if item["entries"] or problems or cu_err or len(elf) + len(ptx):
            status = (
                "agree"
                if row["agree"]
                else "MISMATCH"
                if problems
                else "CUOBJDUMP FAILED: " + cu_err
                if cu_err
                else f"bwdoctor error: {item['error']}"
            )
            print(
                f"{_rel(path):70} {item['entries']:6} entries  bw {warm * 1000:8.2f} ms (cold {cold * 1000:8.2f})"
                f"  cuobjdump {(t_elf + t_ptx) * 1000:9.1f} ms  x{(t_elf + t_ptx) / max(warm, 1e-9):8.0f}  {status}"
            )
            for pr in problems:
                print(f"    {pr}")
    with_code = [r for r in rows if r["entries"] or r["cuobjdump_entries"]]
    compared = [r for r in rows if not r["cuobjdump_error"] and not r["bwdoctor_error"]]
    agree = [r for r in compared if r["agree"]]
    cu_failed = [r for r in rows if r["cuobjdump_error"]]
    bw_failed = [r for r in rows if r["bwdoctor_error"]]
    both = [r for r in rows if r["cuobjdump_error"] and r["bwdoctor_error"]]
    print(
        f"\n{len(rows)} ELF files, {len(with_code)} with GPU code; compared {len(compared)}: agree "
        f"{len(agree)}, mismatch {len(compared) - len(agree)}. Not compared: cuobjdump failed on "
        f"{len(cu_failed)}, bwdoctor reported an error on {len(bw_failed)} (both on {len(both)})"
    )
    for r in bw_failed:
        if not r["cuobjdump_error"]:
            print(
                f"  bwdoctor error where cuobjdump answered ({r['cuobjdump_entries']} entries): "
                f"{_rel(r['path'])}: {r['bwdoctor_error']}"
            )
    print(f"total: bwdoctor warm {tot_bw:.3f} s, cuobjdump {tot_cu:.1f} s, ratio x{tot_cu / max(tot_bw, 1e-9):.0f}")
    for r in rows:
        if os.path.basename(r["path"]) == "libtorch_cuda.so":
            print(
                f"libtorch_cuda.so: bwdoctor warm {r['bwdoctor_warm_s'] * 1000:.1f} ms, cold "
                f"{r['bwdoctor_cold_s'] * 1000:.1f} ms, cuobjdump {r['cuobjdump_s']:.2f} s, "
                f"x{r['cuobjdump_s'] / r['bwdoctor_warm_s']:.0f}; {r['entries']} entries; "
                f"{'agree' if r['agree'] else 'DISAGREE'}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"cuobjdump": version, "rows": rows}, indent=1))
    return 0 if len(agree) == len(compared) else 1


def _timed(fn, arg):
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0


def _rel(path):
    return path if len(path) <= 70 else "…" + path[-69:]


if __name__ == "__main__":
    sys.exit(main())
