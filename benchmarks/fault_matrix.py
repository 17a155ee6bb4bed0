#!/usr/bin/env python3
"""Print the fault matrix as a table: case, exit code, seconds, first failing finding (or message).

Then the huge inputs (pasted text, logs through a pipe and /dev/stdin, a zip-bomb wheel) with seconds and the
peak RSS of the bwdoctor process: python benchmarks/fault_matrix.py [--huge-only] [--bomb-gib 3]
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import faults  # noqa: E402


def huge_inputs(work: Path, bomb_gib: int = 3) -> None:
    """Seconds and peak RSS of bwdoctor on huge inputs: each bounded by a read limit, not by its size."""
    import zipfile

    line = "(APIServer pid=1) INFO 02-20 10:00:00 [loggers.py:236] Engine 000: Avg prompt throughput: 1.0 tokens/s\n"
    error = "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory\n"
    paste = work / "paste-50MB.txt"
    with open(paste, "w") as fh:  # written in blocks: this process stays small (a child's peak RSS counts its fork)
        block = line * 1000
        for _ in range(50_000_000 // len(block)):
            fh.write(block)
        fh.write(error)
    sparse = work / "sparse-1GiB.log"
    with open(sparse, "wb") as fh:
        fh.truncate(1 << 30)
    elf = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cuda" / "sm120.so"
    whl = work / "bomb-1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb/_C.so", "w", force_zip64=True) as out:
            out.write(elf.read_bytes()[:64])
            for _ in range(bomb_gib << 10):
                out.write(b"\0" * (1 << 20))
        zf.write(elf, "bomb/real.so")
    tmp = work / "tmp"
    tmp.mkdir()
    rows = [
        ("50 MB pasted: explain - < file", ["explain", "--no-machine", "-"], paste, False),
        ("50 MB through a pipe: cat | explain -", ["explain", "--no-machine", "-"], paste, True),
        ("50 MB: cat | explain --log /dev/stdin", ["explain", "--no-machine", "--log", "/dev/stdin"], paste, True),
        ("1 GiB sparse log: explain --log", ["explain", "--no-machine", "--log", str(sparse)], None, False),
        (
            f"{whl.stat().st_size >> 20} MB wheel holding {bomb_gib} GiB of zeros: verify-build",
            ["verify-build", "--target", "sm_120", str(whl)],
            None,
            False,
        ),
    ]
    print("\n| huge input | exit | s | peak RSS MiB | temp dir after | stderr |\n|---|---|---|---|---|---|")
    env = dict(os.environ, TMPDIR=str(tmp), NO_COLOR="1")
    for name, argv, stdin_file, piped in rows:
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "bwdoctor", *argv]
        feeder = None
        if stdin_file is not None and piped:
            feeder = subprocess.Popen(["cat", str(stdin_file)], stdout=subprocess.PIPE)
            stdin = feeder.stdout
        elif stdin_file is not None:
            stdin = open(stdin_file, "rb")
        else:
            stdin = subprocess.DEVNULL
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - t0
        if feeder is not None:
            feeder.wait()
        elif hasattr(stdin, "close"):
            stdin.close()
        left = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        print(
            f"| {name} | {os.waitstatus_to_exitcode(status)} | {secs:.2f} | {usage.ru_maxrss / 1024:.0f} | "
            f"{left} B | {' '.join(err.split())[:110]} |"
        )


def main() -> None:
    huge_only = "--huge-only" in sys.argv
    bomb_gib = int(sys.argv[sys.argv.index("--bomb-gib") + 1]) if "--bomb-gib" in sys.argv else 3
    with tempfile.TemporaryDirectory() as d:
        if not huge_only:
            fault_table(Path(d))
            native_library_faults()
        big = Path(d) / "huge"
        big.mkdir()
        huge_inputs(big, bomb_gib)


def fault_table(work: Path) -> None:
    """The fault matrix of tests/faults.py: one row per case."""
    d = str(work)
    print("| case | exit | s | first finding / message | holds |\n|---|---|---|---|---|")
    for case in faults.cases(Path(d)):
        r = faults.run_case(case)
        print(
            f"| {r['name']} | {r['rc']} | {r['seconds']} | {r['first']} | "
            f"{'yes' if not r['problems'] else '; '.join(r['problems'])} |"
        )
    r = faults.run_case(
        ("as a plain user (nobody)", ["check"], {"HOME": "/nonexistent"}, {0, 1}, 15, "json"), as_user=65534
    )
    print(
        f"| {r['name']} | {r['rc']} | {r['seconds']} | {r['first']} | "
        f"{'yes' if not r['problems'] else '; '.join(r['problems'])} |"
    )


def native_library_faults() -> None:
    """libnvidia-ml.so.1 that segfaults, calls exit(0) or hangs in nvmlInit (tests/nativefaults.py): NVML is asked
    in a child process, so each run still prints a valid report; the checks that need NVML could not run, so the
    exit code is 3 (no verdict), or 1 when a finding fails anyway."""
    import nativefaults

    with tempfile.TemporaryDirectory() as work:
        print("\n| native fault in nvmlInit | exit | s | first finding / message | holds |\n|---|---|---|---|---|")
        for mode in ("segfault", "exit", "hang"):
            lib = nativefaults.build(Path(work), mode)
            if lib is None:
                print(f"| {mode} | - | - | gcc not found | skipped |")
                continue
            r = faults.run_case(
                (f"libnvidia-ml.so.1: {mode}", ["check"], {"LD_LIBRARY_PATH": str(lib)}, {1, 3}, 10, "json")
            )
            print(
                f"| {r['name']} | {r['rc']} | {r['seconds']} | {r['first']} | "
                f"{'yes' if not r['problems'] else '; '.join(r['problems'])} |"
            )


if __name__ == "__main__":
    main()
