"""Check a later holdout split (holdout2.jsonl, holdout3.jsonl, ...) of the explain evaluation corpus.

Usage: python benchmarks/explain_eval/validate2.py [PATH]
PATH defaults to holdout2.jsonl next to this file. Checks that every line parses with the row keys, ids follow
the file name (h2001..., h3001...) and are unique and sorted, labels and `also` are known slugs (kb/*.md), and
that no thread (URL) is shared with another file of this folder or tests/corpus/*.jsonl. Prints counts per
label; exits 1 if any problem is found (all problems are listed).
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from validate import check, known_slugs  # noqa: E402


def urls_of(path: Path) -> set[str]:
    """Thread URLs of a JSON Lines file: the `url` field, else `source` (tests/corpus uses `source`)."""
    urls = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            url = row.get("url") or row.get("source") or ""
            if url.startswith("http"):
                urls.add(url.rstrip("/"))
    return urls


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else HERE / "holdout2.jsonl"
    slugs = known_slugs()
    problems: list[str] = []
    name = path.stem  # holdout2, holdout3, ...: ids are h2001..., h3001...
    prefix = "h" + name[len("holdout") :] if name.startswith("holdout") and name[len("holdout") :].isdigit() else "h2"
    rows = check(path, prefix, slugs, problems)  # the same row rules as tune and holdout
    urls = [r["url"].rstrip("/") for r in rows]
    dupes = sorted(u for u, c in collections.Counter(urls).items() if c > 1)
    if dupes:
        problems.append(f"threads used twice: {dupes}")
    others = [p for p in sorted(HERE.glob("*.jsonl")) if p.resolve() != path.resolve()]
    others += sorted((ROOT / "tests" / "corpus").glob("*.jsonl"))
    for other in others:
        if other.exists():
            shared = set(urls) & urls_of(other)
            if shared:
                problems.append(f"threads shared with {other.relative_to(ROOT)}: {sorted(shared)}")
    neg = sum(1 for r in rows if r["label"] is None)
    repos = len({r["source"].split("#")[0] for r in rows})
    print(f"{name}: {len(rows)} excerpts, {len(set(urls))} threads, {repos} repositories, {neg} negatives")
    counts = collections.Counter(r["label"] or "null" for r in rows)
    for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {label:30s} {n:3d}")
    print(f"  {len(counts) - (1 if neg else 0)} distinct positive labels")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
