"""benchmarks/explain_upstream/messages.jsonl: upstream programs' own messages, each with where it comes from and
an article that exists (or null for a message that is not an environment failure)."""

from __future__ import annotations

import json
from pathlib import Path

from evalrows import ARTS

FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "explain_upstream" / "messages.jsonl"


def test_every_upstream_message_names_its_source_and_an_article_that_exists():
    rows = [json.loads(line) for line in FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 500
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert list(r) == ["id", "repo", "path", "slug", "also", "message", "note"], r["id"]
        assert "/" in r["repo"] and r["path"] and r["message"].strip(), r["id"]
        assert r["slug"] is None or r["slug"] in ARTS, r["id"]
        assert all(s in ARTS for s in r["also"]), r["id"]
