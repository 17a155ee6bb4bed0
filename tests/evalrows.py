"""The rows of benchmarks/explain_eval/*.jsonl by id: real excerpts that class tests name by their row; and what
those tests share: the articles and the answer's slugs (the `rules_only` fixture of conftest.py switches the corpus
model off, so that the rule is what is tested)."""

from __future__ import annotations

import json
from pathlib import Path

from bwdoctor.explain import analyse_text
from bwdoctor.knowledge import load_all

EVAL = Path(__file__).resolve().parents[1] / "benchmarks" / "explain_eval"
ROWS = {
    r["id"]: r
    for f in sorted(EVAL.glob("*.jsonl"))
    for r in (json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip())
}
ARTS = load_all()


def slugs(text: str) -> list:
    """The slugs explain answers for the text, in order."""
    return [m["slug"] for m in analyse_text(text, ARTS)["matches"]]
