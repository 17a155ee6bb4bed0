"""Top-1 accuracy of `match_text` over the corpora of real error excerpts, with the confusion pairs.

errors.jsonl is the corpus the signatures were written against; heldout.jsonl holds excerpts collected
afterwards and never used to tune a signature.
Usage: python benchmarks/explain_corpus.py [--corpus FILE ...] [-v]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bwdoctor.explain import match_text  # noqa: E402
from bwdoctor.knowledge import load_all  # noqa: E402


def load_corpus(path: Path) -> list:
    """Corpus items ({source, slug, text}) from a .jsonl file or a folder of .json files."""
    if path.is_dir():
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(path.glob("*.json"))]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(items: list, articles: dict) -> dict:
    """Accuracy, per-slug counts and confusion pairs (expected, got) of the top-1 match."""
    per_slug = collections.Counter(i["slug"] for i in items)
    confusion = collections.Counter()
    correct = 0
    misses = []
    for it in items:
        res = match_text(it["text"], articles)
        top = res[0]["slug"] if res else None
        if top == it["slug"]:
            correct += 1
        else:
            confusion[(it["slug"], top)] += 1
            misses.append((it, res[:3]))
    return {
        "n": len(items),
        "correct": correct,
        "accuracy": correct / len(items) if items else 0.0,
        "per_slug": dict(sorted(per_slug.items())),
        "confusion": confusion,
        "misses": misses,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--corpus", action="append", help="corpus file or folder (repeatable); default: errors.jsonl and heldout.jsonl"
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    articles = load_all()
    paths = args.corpus or [
        str(ROOT / "tests" / "corpus" / "errors.jsonl"),
        str(ROOT / "tests" / "corpus" / "heldout.jsonl"),
    ]
    for path in paths:
        report(Path(path), articles, args.verbose)
    return 0


def report(path: Path, articles: dict, verbose: bool) -> None:
    """Print accuracy and confusion pairs for one corpus file."""
    r = evaluate(load_corpus(path), articles)
    print(f"== {path.name}")
    print(f"corpus: {r['n']} items over {len(r['per_slug'])} slugs; articles: {len(articles)}")
    print(f"top-1 accuracy: {r['correct']}/{r['n']} = {r['accuracy']:.3f}")
    if verbose:
        for slug, n in r["per_slug"].items():
            print(f"  {slug}: {n}")
    if r["confusion"]:
        print("confusion pairs (expected -> got: count):")
        for (exp, got), n in r["confusion"].most_common():
            print(f"  {exp} -> {got}: {n}")
        for it, top3 in r["misses"]:
            print(f"  miss {it['source']}: {[(m['slug'], m['score']) for m in top3]}")
    else:
        print("confusion pairs: none")


if __name__ == "__main__":
    raise SystemExit(main())
