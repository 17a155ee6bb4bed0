"""Fit explain's corpus model (bwdoctor/explain_model.py) and write bwdoctor/data/explain_model.json.

Needs numpy and scikit-learn (for fitting only; bwdoctor reads the weights with the standard library):
    pip install numpy scikit-learn && python benchmarks/explain_eval/train_model.py [--cv] [--check]

Training rows: every *.jsonl of this folder (label = the article, null = no article) and tests/corpus/*.jsonl
(slug = the article). Features: bwdoctor.explain_model.features() of the error lines explain reads
(bwdoctor.explain.error_lines). TF-IDF (1 + log tf, smoothed idf, unit length; features seen in at least MIN_DF
rows), multinomial logistic regression with L2 (C), then per class only the KEEP largest weights.

--cv     leave one file of this folder out at a time: fit on the rest, print the model's top-1 on the file left
         out, alone and after the rule tiers (the model answering only where they are silent), and the negatives
         it answers. That is the estimate of how the model does on excerpts it has not seen.
--check  fit, and fail (exit 1) when the shipped model differs from the fitted one (a corpus edit not refitted).

The written file records the corpus digest (tests/test_explain_model.py compares it with the files) and a few
rows' probabilities computed here (the test recomputes them with the standard-library reader).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from bwdoctor import explain, explain_model  # noqa: E402
from bwdoctor.knowledge import load_all  # noqa: E402

C = 30.0
MIN_DF = 2
KEEP = 500
OUT = ROOT / "bwdoctor" / "data" / "explain_model.json"


def corpus_files() -> list:
    return sorted(HERE.glob("*.jsonl")) + sorted((ROOT / "tests" / "corpus").glob("*.jsonl"))


def corpus_digest(files: list) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def load_rows(files: list) -> list:
    arts = load_all()
    rows = []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            text = r.get("excerpt", r.get("text", ""))
            label = r["label"] if "label" in r else r.get("slug")  # benchmark rows / tests/corpus rows
            if label is not None and label not in arts:
                raise SystemExit(f"{f.name}: {label!r} is not an article")
            oks = {label or explain_model.NONE_CLASS, *r.get("also", [])}
            rows.append(
                {
                    "file": f.name,
                    "id": r.get("id", ""),
                    "y": label or explain_model.NONE_CLASS,
                    "ok": oks,
                    "query": explain.error_lines(text, arts),
                    "text": text,
                }
            )
    return rows


def fit(rows: list):
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer=lambda x: x, min_df=MIN_DF, sublinear_tf=True)
    X = vec.fit_transform([explain_model.features(r["query"]) for r in rows])
    clf = LogisticRegression(C=C, max_iter=5000).fit(X, [r["y"] for r in rows])
    W = clf.coef_.copy()
    for c in range(W.shape[0]):
        drop = np.argsort(-np.abs(W[c]))[KEEP:]
        W[c, drop] = 0.0
    vocab = vec.get_feature_names_out()
    weights: dict = {}
    for c, f in zip(*np.nonzero(W), strict=True):
        weights.setdefault(str(vocab[f]), []).append([int(c), round(float(W[c, f]), 4)])
    return {
        "format": 1,
        "classes": [str(c) for c in clf.classes_],
        "intercept": [round(float(b), 4) for b in clf.intercept_],
        "idf": {str(f): round(float(v), 6) for f, v in zip(vocab, vec.idf_, strict=True)},
        "weights": dict(sorted(weights.items())),
    }


def cv(rows: list, arts: dict) -> int:
    files = sorted({r["file"] for r in rows if not r["file"].startswith(("errors", "heldout"))})
    tot = {"n": 0, "alone": 0, "rules": 0, "both": 0, "neg": 0, "neg_answered": 0}
    for hold in files:
        model = fit([r for r in rows if r["file"] != hold])
        t = dict.fromkeys(tot, 0)
        explain_model._MODEL["m"] = model  # explain's own last tier, with the model fitted without this file
        for r in (r for r in rows if r["file"] == hold):
            got = explain_model.predict(r["query"], model)
            alone = got["slug"] if got and got["p"] >= explain_model.ANSWER_MIN else explain_model.NONE_CLASS
            res = explain.analyse_text(r["text"], arts)
            ruled = [m for m in res["matches"] if not (m.get("evidence") or [""])[0].startswith("corpus model:")]
            first = ruled[0]["slug"] if ruled else None
            both = res["matches"][0]["slug"] if res["matches"] else explain_model.NONE_CLASS
            t["n"] += 1
            t["alone"] += alone in r["ok"]
            t["rules"] += (first or explain_model.NONE_CLASS) in r["ok"]
            t["both"] += both in r["ok"]
            if r["y"] == explain_model.NONE_CLASS:
                t["neg"] += 1
                t["neg_answered"] += both != explain_model.NONE_CLASS
        for k in tot:
            tot[k] += t[k]
        print(
            f"{hold:16} {t['n']:4} rows  model alone {t['alone']:4}  rules {t['rules']:4}  rules then model "
            f"{t['both']:4} = {t['both'] / t['n']:.3f}  negatives answered {t['neg_answered']}/{t['neg']}",
            flush=True,
        )
    print(
        f"{'all':16} {tot['n']:4} rows  model alone {tot['alone']:4}  rules {tot['rules']:4}  rules then model "
        f"{tot['both']:4} = {tot['both'] / tot['n']:.3f}  negatives answered {tot['neg_answered']}/{tot['neg']}"
    )
    print("(the rules were written with every file in view: their figure is not a fresh one; the model's is)")
    explain_model._MODEL.clear()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cv", action="store_true", help="leave-one-file-out estimate instead of writing the model")
    ap.add_argument("--check", action="store_true", help="fail when the shipped model is not the fitted one")
    a = ap.parse_args()
    files = corpus_files()
    arts = load_all()
    rows = load_rows(files)
    if a.cv:
        return cv(rows, arts)
    model = fit(rows)
    model["corpus_sha256"] = corpus_digest(files)
    model["trained_on"] = [f.relative_to(ROOT).as_posix() for f in files]
    model["params"] = {"C": C, "min_df": MIN_DF, "keep": KEEP, "rows": len(rows)}
    model["check"] = []
    for r in rows[:: max(1, len(rows) // 24)][:24]:
        got = explain_model.predict(r["query"], model)
        if got is not None:
            model["check"].append({"query": r["query"][:4000], "slug": got["slug"], "p": round(got["p"], 6)})
    text = json.dumps(model, separators=(",", ":"), sort_keys=False) + "\n"
    if a.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("shipped model is the fitted one" if same else "shipped model differs from the fitted one")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(
        f"wrote {OUT.relative_to(ROOT)}: {len(rows)} rows, {len(model['classes'])} classes, "
        f"{len(model['idf'])} features, {sum(len(v) for v in model['weights'].values())} weights, "
        f"{len(text) // 1024} KiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
