"""Check the explain evaluation corpus: every line parses, labels are known slugs or null, the split is by thread.

Usage: python benchmarks/explain_eval/validate.py
Prints counts per split and per label; exits 1 on the first class of problem found (all problems are listed).
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Articles the explain work adds (see issue #20); they may not exist under kb/ yet.
NEW_SLUGS = {
    "glibc-too-old",
    "nvcc-dropped-arch",
    "flash-attn-arch-gate",
    "driver-older-than-gpu",
    "cuda-toolkit-missing",
    "quant-needs-newer-gpu",
    "runtime-oom",
    "gsp-init-failure",
    "system-library-missing",
    "flashinfer-trtllm-gen-sm120",
    "vllm-no-fa2-sm12x",
    "consumer-p2p-hang",
}
KEYS = ["id", "url", "source", "label", "also", "note", "excerpt"]


def known_slugs() -> set[str]:
    return {p.stem for p in (ROOT / "kb").glob("*.md")} | NEW_SLUGS


def existing_corpus_urls() -> set[str]:
    urls = set()
    for name in ("errors.jsonl", "heldout.jsonl"):
        path = ROOT / "tests" / "corpus" / name
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    urls.add(json.loads(line)["source"].rstrip("/"))
    return urls


def check(path: Path, prefix: str, slugs: set[str], problems: list[str]) -> list[dict]:
    rows = []
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
        if not re.fullmatch(prefix + r"\d{3}", row["id"]):
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
    return rows


def main() -> int:
    slugs = known_slugs()
    problems: list[str] = []
    tune = check(HERE / "tune.jsonl", "t", slugs, problems)
    holdout_path = HERE / "holdout.jsonl"
    holdout = check(holdout_path, "h", slugs, problems) if holdout_path.exists() else []
    both = {r["url"] for r in tune} & {r["url"] for r in holdout}
    if both:
        problems.append(f"threads in both splits: {sorted(both)}")
    reused = {r["url"].rstrip("/") for r in tune + holdout} & existing_corpus_urls()
    if reused:
        problems.append(f"threads already in tests/corpus: {sorted(reused)}")
    for name, rows in (("tune", tune), ("holdout", holdout), ("all", tune + holdout)):
        neg = sum(1 for r in rows if r["label"] is None)
        threads = len({r["url"] for r in rows})
        print(f"{name}: {len(rows)} excerpts, {threads} threads, {neg} negatives")
    counts = collections.Counter(r["label"] or "null" for r in tune + holdout)
    for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        t = sum(1 for r in tune if (r["label"] or "null") == label)
        print(f"  {label:30s} {n:3d}  (tune {t}, holdout {n - t})")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
