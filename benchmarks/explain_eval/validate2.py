"""Check the second holdout split (holdout2.jsonl) of the explain evaluation corpus.

Usage: python benchmarks/explain_eval/validate2.py [PATH]
PATH defaults to holdout2.jsonl next to this file. Checks that every line parses with the row keys, ids are
h2001... unique and sorted, labels and `also` are known slugs (kb/*.md or the new slugs of issue #20), and that
no thread (URL) is shared with tune.jsonl, holdout.jsonl or tests/corpus/*.jsonl. Prints counts per label;
exits 1 if any problem is found (all problems are listed).
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from validate import KEYS, known_slugs  # noqa: E402


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
    rows: list[dict] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.name}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc})")
            continue
        if list(row) != KEYS:
            problems.append(f"{where}: keys {list(row)} != {KEYS}")
            continue
        if not re.fullmatch(r"h2\d{3}", row["id"]):
            problems.append(f"{where}: bad id {row['id']!r}")
        if not row["url"].startswith("https://"):
            problems.append(f"{where}: url is not https")
        if row["label"] is not None and row["label"] not in slugs:
            problems.append(f"{where}: unknown label {row['label']!r}")
        if not isinstance(row["also"], list) or any(a not in slugs for a in row["also"]):
            problems.append(f"{where}: bad also {row['also']!r}")
        if row["label"] is None and row["also"]:
            problems.append(f"{where}: a negative has alternatives")
        if row["label"] in row["also"]:
            problems.append(f"{where}: label repeated in also")
        if not row["excerpt"].strip() or not row["source"] or not row["note"]:
            problems.append(f"{where}: empty excerpt, source or note")
        rows.append(row)
    ids = [r["id"] for r in rows]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        problems.append(f"{path.name}: ids not sorted and unique")
    urls = [r["url"].rstrip("/") for r in rows]
    dupes = sorted(u for u, c in collections.Counter(urls).items() if c > 1)
    if dupes:
        problems.append(f"threads used twice: {dupes}")
    others = [HERE / "tune.jsonl", HERE / "holdout.jsonl", *sorted((ROOT / "tests" / "corpus").glob("*.jsonl"))]
    for other in others:
        if other.exists():
            shared = set(urls) & urls_of(other)
            if shared:
                problems.append(f"threads shared with {other.relative_to(ROOT)}: {sorted(shared)}")
    neg = sum(1 for r in rows if r["label"] is None)
    repos = len({r["source"].split("#")[0] for r in rows})
    print(f"holdout2: {len(rows)} excerpts, {len(set(urls))} threads, {repos} repositories, {neg} negatives")
    counts = collections.Counter(r["label"] or "null" for r in rows)
    for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {label:30s} {n:3d}")
    print(f"  {len(counts) - (1 if neg else 0)} distinct positive labels")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
