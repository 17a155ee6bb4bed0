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
