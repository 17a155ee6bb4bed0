"""The corpus model: explain's last tier, for error text that no signature and no evidence rule answers.

A linear model (multinomial logistic regression) over the words, two-word phrases and evidence keys of the error
lines, fitted on the real excerpts of `benchmarks/explain_eval/` and `tests/corpus/` (each labelled with its
article, or with none for an error that is not the environment's) by `benchmarks/explain_eval/train_model.py`.
Its weights ship in `bwdoctor/data/explain_model.json`; reading them here needs nothing but the standard library.

It answers only where the rule tiers are silent and the text is not vetoed as the model's, the request's or the
code's error; its answer is "likely", with the probability as the score and the features that drove it as the
evidence. "None of the articles" is one of its classes: the negatives it was fitted on teach it to stay silent.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional

NONE_CLASS = "-"  # the class of an error that is not the environment's
FEATURES_MAX = 20000  # features read from one text: bounded work on a huge paste
ANSWER_MIN = 0.5  # the probability below which the model's best article is not given: half its answers
# below it were wrong on excerpts it had not seen (holdout8-10, README)


def features(text: str, keys: Optional[List[str]] = None) -> List[str]:
    """Words, two-word phrases of one line, and evidence keys ("k:signal:SIGILL") of error text, in text order.
    `keys`: evidence_keys(extract_evidence(text)) where the caller has them already."""
    from bwdoctor.explain import evidence_keys, extract_evidence, tokens

    out: List[str] = []
    for line in text.split("\n"):
        tk = tokens(line)
        out.extend(tk)
        out.extend(f"{x} {y}" for x, y in zip(tk, tk[1:], strict=False))
        if len(out) >= FEATURES_MAX:
            break
    out = out[:FEATURES_MAX]
    out.extend("k:" + k for k in (keys if keys is not None else evidence_keys(extract_evidence(text))))
    return out


_MODEL: Dict[str, Any] = {}


def load() -> Optional[dict]:
    """The shipped model, read once; None when it is absent or unreadable (the tier is then silent)."""
    if "m" not in _MODEL:
        from importlib import resources

        try:
            m: Optional[dict] = parse(
                resources.files("bwdoctor.data").joinpath("explain_model.json").read_text(encoding="utf-8")
            )
        except (OSError, UnicodeDecodeError):
            m = None
        _MODEL["m"] = m
    return _MODEL["m"]


def parse(raw: str) -> Optional[dict]:
    """A model read from its JSON text, or None when it is not one this reader knows (a damaged install): every
    weight names a class that exists and every number is finite."""
    try:
        m = json.loads(raw, parse_constant=_no_constant)
        if not isinstance(m, dict) or m.get("format") != 1:
            return None
        n = len(m["classes"])
        ok = (
            n > 0
            and isinstance(m["classes"], list)
            and all(isinstance(c, str) for c in m["classes"])
            and isinstance(m["intercept"], list)
            and len(m["intercept"]) == n
            and all(isinstance(b, (int, float)) for b in m["intercept"])
            and all(isinstance(v, (int, float)) and v > 0 for v in m["idf"].values())
            and all(
                isinstance(c, int) and 0 <= c < n and isinstance(w, (int, float))
                for ws in m["weights"].values()
                for c, w in ws
            )
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return m if ok else None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a weight")


def predict(text: str, model: Optional[dict] = None, keys: Optional[List[str]] = None) -> Optional[dict]:
    """{"slug": article or NONE_CLASS, "p": probability, "ranked": [(slug, p)...], "drivers": [(feature, w)...]}.

    TF-IDF as the model was fitted (1 + log tf, smoothed idf, unit length), then one score per class; None when
    no model ships or the text holds no feature the model knows. `keys` as for features()."""
    m = model if model is not None else load()
    if m is None:
        return None
    idf: Dict[str, float] = m["idf"]
    counts: Dict[str, int] = {}
    for f in features(text, keys):
        if f in idf:
            counts[f] = counts.get(f, 0) + 1
    if not counts:
        return None
    vec = {f: (1.0 + math.log(c)) * idf[f] for f, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    classes: List[str] = m["classes"]
    scores = list(m["intercept"])
    weights: Dict[str, List[List[float]]] = m["weights"]
    contrib: Dict[int, List[tuple]] = {}
    for f, v in vec.items():
        for ci, w in weights.get(f, ()):
            c = int(ci)
            x = v / norm * w
            scores[c] += x
            contrib.setdefault(c, []).append((f, x))
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    probs = [e / total for e in exps]
    order = sorted(range(len(classes)), key=lambda i: (-probs[i], classes[i]))
    best = order[0]
    drivers = sorted(contrib.get(best, []), key=lambda x: -x[1])
    return {
        "slug": classes[best],
        "p": probs[best],
        "ranked": [(classes[i], probs[i]) for i in order[:5]],
        "drivers": [(f, round(x, 3)) for f, x in drivers if x > 0][:6],
    }
