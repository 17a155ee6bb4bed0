#!/usr/bin/env python3
"""NVML asked in a child process (what the nvml probe does) against the same query in this process, on a real GPU.

Prints the time of each, the isolated result, and whether both answers are the same facts (mem_used, which
changes between the two calls, is left out of the comparison). Run on a machine with an NVIDIA driver:
    python benchmarks/nvml_isolation.py
It proves the isolation keeps the facts whole ("same facts: True") at a cost of about one interpreter start."""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bwdoctor.model import Unavailable  # noqa: E402
from bwdoctor.probes import nvml_query  # noqa: E402


def _stable(value):
    if isinstance(value, Unavailable):
        return {"$unavailable": value.reason}
    value = json.loads(json.dumps(value))
    for g in value.get("gpus", []):
        g.pop("mem_used", None)
    return value


t0 = time.perf_counter()
isolated = nvml_query.isolated()
t1 = time.perf_counter()
inproc = nvml_query.query()
t2 = time.perf_counter()
print(json.dumps(_stable(isolated), indent=2))
ratio = (t1 - t0) / max(t2 - t1, 1e-9)
print(f"isolated (child process): {t1 - t0:.3f} s; in-process: {t2 - t1:.3f} s; ratio {ratio:.1f}")
print(f"same facts: {_stable(isolated) == _stable(inproc)}")
