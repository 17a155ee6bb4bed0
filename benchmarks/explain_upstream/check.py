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
null message when explain names nothing (or an `also`).

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

from bwdoctor import explain_model  # noqa: E402
from bwdoctor.explain import analyse_text  # noqa: E402
from bwdoctor.knowledge import load_all  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules-only", action="store_true", help="switch the corpus model off")
    ap.add_argument("--misses", action="store_true", help="list the messages answered wrongly")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = ap.parse_args(argv)
    if args.rules_only:
        explain_model._MODEL["m"] = None
    arts = load_all()
    rows = [json.loads(line) for line in (HERE / "messages.jsonl").read_text(encoding="utf-8").splitlines() if line]
    c: collections.Counter = collections.Counter()
    by_repo: dict = collections.defaultdict(lambda: [0, 0])
    misses = []
    for r in rows:
        m = analyse_text(r["message"], arts)["matches"]
        top = m[0]["slug"] if m else None
        if r["slug"] is None:
            ok = top is None or top in r["also"]
            c["negatives"] += 1
            c["negatives_answered"] += not ok
        else:
            ok = top in {r["slug"], *r["also"]}
            c["positives"] += 1
            c["positives_right"] += ok
            c["positives_wrong"] += top is not None and not ok
            c["positives_silent"] += top is None
        c["rows"] += 1
        c["right"] += ok
        by_repo[r["repo"]][0] += ok
        by_repo[r["repo"]][1] += 1
        if not ok:
            misses.append((r["id"], r["repo"], r["slug"], top, (m[0]["tier"] if m else ""), r["message"]))
    if args.json:
        print(json.dumps(dict(c), sort_keys=True))
        return 0
    print(f"messages            {c['rows']} from {len(by_repo)} repositories")
    print(f"right               {c['right']}/{c['rows']} = {c['right'] / max(c['rows'], 1):.3f}")
    print(
        f"failures            {c['positives_right']}/{c['positives']} named rightly, "
        f"{c['positives_wrong']} another article, {c['positives_silent']} nothing"
    )
    print(f"not failures        {c['negatives_answered']} of {c['negatives']} given an article")
    worst = sorted(by_repo.items(), key=lambda kv: (kv[1][0] / kv[1][1], -kv[1][1]))[:8]
    print("lowest repositories " + ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in worst))
    if args.misses:
        for rid, repo, want, got, tier, msg in misses:
            one = " | ".join(msg.splitlines())[:160]
            print(f"  {rid} {repo}: want {want} got {got} {tier}\n      {one}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
