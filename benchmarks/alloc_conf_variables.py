#!/usr/bin/env python3
"""On a GPU box: which allocator variable the installed torch's CUDA allocator really reads, and whether a mistyped
option stops it, next to what bwdoctor's BW801 says from libc10*.so alone (torch never imported by bwdoctor).

    python benchmarks/alloc_conf_variables.py [--python /path/to/venv/bin/python]

For each case a child process of that interpreter imports torch with ONLY the case's variables set, allocates one
CUDA tensor and prints torch.cuda.memory._snapshot()["allocator_settings"]["expandable_segments"] (or the error).
Then `bwdoctor check --select BW801` runs on the same interpreter with the same variables. Proof that the static
reading agrees: on torch <= 2.9.x "PYTORCH_ALLOC_CONF=expandable_segments:True" prints False and BW801 says
"is ignored"; on torch >= 2.10 it prints True and BW801 passes; "expandable_segment:True" raises RuntimeError on
every release and BW801 fails with "is not one torch ... knows".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

PROBE = r"""
import json, torch
try:
    torch.zeros(1, device="cuda")
    s = torch.cuda.memory._snapshot()["allocator_settings"]
    print(json.dumps({"torch": torch.__version__, "expandable_segments": s.get("expandable_segments")}))
except Exception as exc:
    print(json.dumps({"torch": torch.__version__, "error": f"{type(exc).__name__}: {exc}"[:300]}))
"""

CASES = [
    {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"},
    {"PYTORCH_ALLOC_CONF": "expandable_segments:True"},
    {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segment:True"},
    {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:true"},
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.endswith("ALLOC_CONF")}
    for case in CASES:
        env = dict(base, **case)
        run = subprocess.run([args.python, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
        torch_says = (run.stdout.strip().splitlines() or [run.stderr.strip()[-300:]])[-1]
        cmd = [sys.executable, "-m", "bwdoctor", "check", "--python", args.python, "--select", "BW801"]
        check = subprocess.run(
            [*cmd, "--format", "json"],
            env=env,
            cwd="/",  # the installed bwdoctor, never the source tree beside this script
            capture_output=True,
            text=True,
            timeout=300,
        )
        try:
            found = [f for f in json.loads(check.stdout)["findings"] if f["id"] == "BW801"]
            bw = "; ".join(f"{f['status']}: {f['message'][:160]}" for f in found)
        except (ValueError, KeyError):
            bw = check.stderr.strip()[-300:]
        print(f"{case}\n  torch:    {torch_says}\n  bwdoctor: {bw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
