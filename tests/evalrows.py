"""The rows of benchmarks/explain_eval/*.jsonl by id: real excerpts that class tests name by their row."""

from __future__ import annotations

import json
from pathlib import Path

EVAL = Path(__file__).resolve().parents[1] / "benchmarks" / "explain_eval"
ROWS = {
    r["id"]: r
    for f in sorted(EVAL.glob("*.jsonl"))
    for r in (json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip())
}
