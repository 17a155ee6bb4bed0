"""Score `bwdoctor explain`'s matcher on the real-excerpt corpus of this folder.

Each line of <split>.jsonl is {"id", "url", "label", "also", "excerpt", ...}: `label` is the article slug that
explains the excerpt, or null for a real error that is not an environment problem (it must get no article);
`also` lists other slugs accepted as correct. The matcher sees only the excerpt.

Printed: top-1 accuracy (label or an `also` slug first), top-3, on positives the wrong articles (a wrong
slug first) and the silent misses (no article), on negatives the wrong articles (any article at all), the
tier split of correct answers, and every miss with its top-3.

With --tier2-only the exact signatures are not consulted: only the evidence-weighted tier answers. The
signatures were written against known excerpts; tier 2 is what answers a wording no signature knows, so its score
alone is the better guide to how the matcher does on threads it has never seen.

With --rotate the calibrated tier-2 thresholds (explain.CALIBRATED_MIN, explain.CALIBRATED_MARGIN) are chosen
on two of the three files (most right answers, then fewest wrong ones, then the shipped values) and the score is
read on the third, for each third in turn: an estimate of how the calibration does on text it was not set on.

Usage: python benchmarks/explain_eval/evaluate.py [--split SPLIT] [--file F.jsonl ...]
       [--json] [-q] [--tier2-only] [--rotate]
SPLIT: tune, holdout, holdout2, holdout3 (dev: the four first tuned on), holdout4, holdout5 (sealed: the first
sealed measure, tuned on since), holdout6 to holdout15 (later sealed measures, see README), all (default tune).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from bwdoctor import explain  # noqa: E402
from bwdoctor.explain import analyse_text  # noqa: E402
from bwdoctor.knowledge import load_all  # noqa: E402

SPLITS = {
    "tune": ["tune.jsonl"],
    "holdout": ["holdout.jsonl"],
    "holdout2": ["holdout2.jsonl"],
    "holdout3": ["holdout3.jsonl"],
    "holdout4": ["holdout4.jsonl"],
    "holdout5": ["holdout5.jsonl"],
    "holdout6": ["holdout6.jsonl"],
    "holdout7": ["holdout7.jsonl"],
    "holdout8": ["holdout8.jsonl"],
    "holdout9": ["holdout9.jsonl"],
    "holdout10": ["holdout10.jsonl"],
    "holdout11": ["holdout11.jsonl"],
    "holdout12": ["holdout12.jsonl"],
    "holdout13": ["holdout13.jsonl"],
    "holdout14": ["holdout14.jsonl"],
    "holdout15": ["holdout15.jsonl"],
    "sealed": ["holdout4.jsonl", "holdout5.jsonl"],
    "dev": ["tune.jsonl", "holdout.jsonl", "holdout2.jsonl", "holdout3.jsonl"],
    "all": [
        "tune.jsonl",
        "holdout.jsonl",
        "holdout2.jsonl",
        "holdout3.jsonl",
        "holdout4.jsonl",
        "holdout5.jsonl",
        "holdout6.jsonl",
        "holdout7.jsonl",
        "holdout8.jsonl",
        "holdout9.jsonl",
        "holdout10.jsonl",
        "holdout11.jsonl",
        "holdout12.jsonl",
        "holdout13.jsonl",
        "holdout14.jsonl",
        "holdout15.jsonl",
    ],
}


COUNT_KEYS = ("positives", "top1", "top3", "wrong", "silent", "negatives", "negatives_clean", "negatives_wrong")


def load(paths: List[Path]) -> List[dict]:
    """Items of the given .jsonl files (blank lines skipped)."""
    items = []
    for p in paths:
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                it = json.loads(line)
                it.setdefault("id", f"{p.name}:{n}")
                items.append(it)
    return items


def tier2_only(text: str, arts: Dict[str, Any]) -> dict:
    """What the evidence-weighted tier alone answers for the text (no exact signature consulted)."""
    scanner = explain._scan_text(text, arts)
    t2 = explain.rank_evidence(scanner.query.lines(), arts, lookalike=scanner.excluded)
    return {"matches": t2["likely"], "nearest": t2["nearest"]}


def evaluate(items: List[dict], articles: Optional[Dict[str, Any]] = None, only_tier2: bool = False) -> dict:
    """Counts and misses of the matcher (or of tier 2 alone) over the items."""
    arts = articles if articles is not None else load_all()
    r: Dict[str, Any] = collections.Counter()
    misses = []
    tiers: collections.Counter = collections.Counter()
    confusion: collections.Counter = collections.Counter()
    unknown_labels = set()
    t0 = time.perf_counter()
    for it in items:
        label = it.get("label")
        ok = {label, *(it.get("also") or [])} - {None}
        if label is not None and label not in arts:
            unknown_labels.add(label)
        text = it.get("excerpt") or ""
        found = tier2_only(text, arts) if only_tier2 else analyse_text(text, arts)
        got = [m["slug"] for m in found["matches"]]
        top = got[0] if got else None
        if label is None:
            r["negatives"] += 1
            if top is None:
                r["negatives_clean"] += 1
            else:
                r["negatives_wrong"] += 1
                misses.append((it, found))
            continue
        r["positives"] += 1
        if top in ok:
            r["top1"] += 1
            tiers[found["matches"][0]["tier"]] += 1
        else:
            misses.append((it, found))
            confusion[(label, top)] += 1
            if top is None:
                r["silent"] += 1
            else:
                r["wrong"] += 1
        if ok & set(got[:3]):
            r["top3"] += 1
    r["seconds"] = time.perf_counter() - t0
    return {"counts": r, "tiers": tiers, "misses": misses, "confusion": confusion, "unknown": unknown_labels}


GRID_MIN = (2.0, 3.0, 5.0, 8.0, 1e9)  # 1e9: the calibration off
GRID_MARGIN = (1.5, 2.0, 3.0)
GRID_EVIDENCE = (1, 2, 3)


def _objective(c: collections.Counter) -> tuple:
    """Right answers first (a wrong article on a negative or a positive costs three), then fewest wrong ones."""
    wrong = c["negatives_wrong"] + c["wrong"]
    return (c["top1"] + c["negatives_clean"] - 3 * wrong, -wrong)


def rotate(paths: List[Path], only_tier2: bool = False) -> List[dict]:
    """For each file: the calibration thresholds that do best on the other files, and the score they get on it."""
    arts = load_all()
    items = {p: load([p]) for p in paths}
    saved = (explain.CALIBRATED_MIN, explain.CALIBRATED_MARGIN, explain.CALIBRATED_EVIDENCE)
    counts: Dict[tuple, Dict[Path, collections.Counter]] = {}
    try:
        for setting in [(m, r, e) for m in GRID_MIN for r in GRID_MARGIN for e in GRID_EVIDENCE]:
            explain.CALIBRATED_MIN, explain.CALIBRATED_MARGIN, explain.CALIBRATED_EVIDENCE = setting
            counts[setting] = {p: evaluate(its, arts, only_tier2)["counts"] for p, its in items.items()}
    finally:
        explain.CALIBRATED_MIN, explain.CALIBRATED_MARGIN, explain.CALIBRATED_EVIDENCE = saved
    out = []

    def on_rest(setting: tuple, held: Path) -> tuple:
        total: collections.Counter = collections.Counter()
        for p in paths:
            if p != held:
                total.update(counts[setting][p])
        return (*_objective(total), setting == saved)

    for held in paths:
        best = max(counts, key=lambda setting: on_rest(setting, held))
        c = counts[best][held]
        out.append(
            {
                "file": held.name,
                "chosen": {"min": best[0], "margin": best[1], "evidence": best[2]},
                "top1": c["top1"],
                "positives": c["positives"],
                "negatives_wrong": c["negatives_wrong"],
                "negatives": c["negatives"],
                "wrong": c["wrong"],
                "shipped_top1": counts[saved][held]["top1"] if saved in counts else None,
            }
        )
    return out


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} = {a / b:.3f}" if b else f"{a}/0"


def report(res: dict, quiet: bool = False) -> None:
    """Print the summary and (unless quiet) the misses."""
    c = res["counts"]
    total = c["positives"] + c["negatives"]
    print(f"items: {total} ({c['positives']} with an article, {c['negatives']} negatives) in {c['seconds']:.2f} s")
    print(f"top-1 (all items, negatives right when silent): {_pct(c['top1'] + c['negatives_clean'], total)}")
    print(
        f"top-1 on positives: {_pct(c['top1'], c['positives'])}  (exact {res['tiers']['exact']}, "
        f"likely {res['tiers']['likely']})"
    )
    print(f"top-3 on positives: {_pct(c['top3'], c['positives'])}")
    print(f"positives: wrong article first {c['wrong']}, no article {c['silent']}")
    print(f"negatives: wrong articles {c['negatives_wrong']} of {c['negatives']}")
    if res["unknown"]:
        print(f"labels with no article: {sorted(res['unknown'])}")
    if quiet:
        return
    if res["confusion"]:
        print("confusion (label -> top-1: count):")
        for (exp, got), n in res["confusion"].most_common():
            print(f"  {exp} -> {got}: {n}")
    for it, found in res["misses"]:
        top3 = [(m["slug"], m["tier"], m.get("rank_score", m["score"])) for m in found["matches"][:3]]
        near = [n["slug"] for n in found.get("nearest", [])]
        print(f"  miss {it.get('id')} label={it.get('label')} got={top3 or '-'} nearest={near} {it.get('url', '')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=sorted(SPLITS), default="tune")
    ap.add_argument("--file", action="append", help="score this .jsonl instead of a split (repeatable)")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    ap.add_argument("-q", "--quiet", action="store_true", help="summary only")
    ap.add_argument("--tier2-only", action="store_true", help="score the evidence-weighted tier alone")
    ap.add_argument(
        "--rotate",
        action="store_true",
        help="choose the calibration on all files but one, score that one (each in turn)",
    )
    args = ap.parse_args()
    paths = [Path(f) for f in args.file] if args.file else [HERE / name for name in SPLITS[args.split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.rotate:
        if len(paths) < 2:
            print("--rotate needs two files or more (--split all, or --file given several times)", file=sys.stderr)
            return 2
        rows = rotate(paths, args.tier2_only)
        if args.json:
            print(json.dumps(rows, indent=2))
        for r in rows if not args.json else []:
            ch = r["chosen"]
            off = " (calibration off)" if ch["min"] >= 1e9 else ""
            print(
                f"{r['file']}: thresholds set on the others: min {ch['min']:g} margin {ch['margin']:g} evidence "
                f"{ch['evidence']}{off} -> top-1 on positives {_pct(r['top1'], r['positives'])}, wrong articles "
                f"{r['wrong']}, negatives wrong {r['negatives_wrong']} of {r['negatives']} (shipped thresholds: "
                f"top-1 {r['shipped_top1']})"
            )
        return 0
    res = evaluate(load(paths), only_tier2=args.tier2_only)
    if args.json:
        c = res["counts"]
        keys = sorted({*c, *COUNT_KEYS})
        print(json.dumps({**{k: c[k] for k in keys}, "tiers": dict(res["tiers"])}, indent=2, default=float))
    else:
        report(res, args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
