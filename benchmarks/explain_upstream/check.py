"""How many of the messages that upstream programs print for a known failure `bwdoctor explain` names rightly.

messages.jsonl holds messages read from the source code of the programs around vLLM (vLLM, SGLang, FlashInfer,
torch, Triton, flash-attention, xformers, DeepSpeed, bitsandbytes, TransformerEngine, NCCL, the NVIDIA driver and
container toolkit, DCGM, llama.cpp, Ollama, LMDeploy, TensorRT-LLM, CTranslate2, XLA, ONNX Runtime, CuPy, Numba,
transformers, accelerate, torchao, SageAttention, DeepGEMM and others): the literal words of the raise, log or
print call, with its format fields filled with realistic values (a library name, an arch, a version), each with the
repository and file it comes from. `slug` is the article whose root cause the message means, as read from the
source around it; null marks a message of the same code for a failure that is not an environment one (a bad
argument, a context too long), which must get no article.

These are not pasted reports (benchmarks/explain_eval is), so the figure is coverage of upstream wordings, not a
top-1 on user text. A message is answered rightly when explain's first article is its slug or one in `also`; a
null message when explain names nothing (scored by benchmarks/explain_eval/evaluate.py's evaluate()).

Usage: python benchmarks/explain_upstream/check.py [--rules-only] [--misses] [--json]
  --rules-only  switch the corpus model off (the rules alone)
  --misses      list every message answered wrongly, with what explain said
  --json        print the counts as one JSON object
Exit status 0; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent / "explain_eval"))

from evaluate import evaluate  # noqa: E402

from bwdoctor import explain_model  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules-only", action="store_true", help="switch the corpus model off")
    ap.add_argument("--misses", action="store_true", help="list the messages answered wrongly")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = ap.parse_args(argv)
    if args.rules_only:
        explain_model._MODEL["m"] = None
    rows = [json.loads(line) for line in (HERE / "messages.jsonl").read_text(encoding="utf-8").splitlines() if line]
    # scored as the evaluation corpus is (evaluate.py): the message is the excerpt, the slug the label
    items = [{"id": r["id"], "label": r["slug"], "also": r["also"], "excerpt": r["message"], "row": r} for r in rows]
    res = evaluate(items)
    c = res["counts"]
    counts = {
        "rows": len(rows),
        "right": c["top1"] + c["negatives_clean"],
        "positives": c["positives"],
        "positives_right": c["top1"],
        "positives_wrong": c["wrong"],
        "positives_silent": c["silent"],
        "negatives": c["negatives"],
        "negatives_answered": c["negatives_wrong"],
    }
    if args.json:
        print(json.dumps(counts, sort_keys=True))
        return 0
    missed = collections.Counter(it["row"]["repo"] for it, _ in res["misses"])
    total = collections.Counter(r["repo"] for r in rows)
    print(f"messages            {counts['rows']} from {len(total)} repositories")
    print(f"right               {counts['right']}/{counts['rows']} = {counts['right'] / max(counts['rows'], 1):.3f}")
    print(
        f"failures            {counts['positives_right']}/{counts['positives']} named rightly, "
        f"{counts['positives_wrong']} another article, {counts['positives_silent']} nothing"
    )
    print(f"not failures        {counts['negatives_answered']} of {counts['negatives']} given an article")
    worst = sorted(total, key=lambda k: ((total[k] - missed[k]) / total[k], -total[k], k))[:8]
    print("lowest repositories " + ", ".join(f"{k} {total[k] - missed[k]}/{total[k]}" for k in worst))
    if args.misses:
        for it, found in res["misses"]:
            r = it["row"]
            m = found["matches"]
            got, tier = (m[0]["slug"], m[0]["tier"]) if m else (None, "")
            one = " | ".join(r["message"].splitlines())[:160]
            print(f"  {r['id']} {r['repo']}: want {r['slug']} got {got} {tier}\n      {one}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
