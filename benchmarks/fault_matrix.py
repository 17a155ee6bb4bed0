#!/usr/bin/env python3
"""Print the fault matrix as a table: case, exit code, seconds, first failing finding (or message)."""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import faults  # noqa: E402

with tempfile.TemporaryDirectory() as d:
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
    in a child process, so each run still prints a valid report with the exit code of a machine without NVML."""
    import nativefaults

    with tempfile.TemporaryDirectory() as work:
        print("\n| native fault in nvmlInit | exit | s | first finding / message | holds |\n|---|---|---|---|---|")
        for mode in ("segfault", "exit", "hang"):
            lib = nativefaults.build(Path(work), mode)
            if lib is None:
                print(f"| {mode} | - | - | gcc not found | skipped |")
                continue
            r = faults.run_case(
                (f"libnvidia-ml.so.1: {mode}", ["check"], {"LD_LIBRARY_PATH": str(lib)}, {0, 1}, 10, "json")
            )
            print(
                f"| {r['name']} | {r['rc']} | {r['seconds']} | {r['first']} | "
                f"{'yes' if not r['problems'] else '; '.join(r['problems'])} |"
            )


native_library_faults()
