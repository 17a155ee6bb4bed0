"""Memory rules of a serve config: sampler warm-up OOM and a KV cache too small for --max-model-len.

Uses bwdoctor.capacity (vLLM's own startup budget, vllm-knowledge §6) when the model's config.json
was readable locally (cfg.model, filled by the probe); without it these rules say nothing.
"""

from __future__ import annotations

from bwdoctor.capacity import budget as B
from bwdoctor.capacity.model import ModelFacts
from bwdoctor.capacity.planner import plan
from bwdoctor.capacity.quant import QuantInfo
from bwdoctor.serve.config import ServeConfig, Token
from bwdoctor.serve.lint import ARTICLE, Lint, Machine, option_value, options
from bwdoctor.serve.releases import Release

from .. import records

GIB = 1 << 30


def model_to_json(m: ModelFacts) -> dict:
    """JSON form of ModelFacts (for the serve_configs fact)."""
    return records.asdict(m)


def model_from_json(data: dict) -> ModelFacts:
    """ModelFacts from its JSON form (unknown keys ignored)."""
    names = {f.name for f in records.fields(ModelFacts)}
    kw = {k: v for k, v in data.items() if k in names}
    q = kw.get("quant") or {}
    qnames = {f.name for f in records.fields(QuantInfo)}
    kw["quant"] = QuantInfo(**{k: v for k, v in q.items() if k in qnames})
    return ModelFacts(**kw)


def _num(tok, cast):
    try:
        return cast(tok.text) if tok is not None else None
    except ValueError:
        return None


def check_memory(cfg: ServeConfig, release: Release, machine: Machine) -> list:
    """sampler-warmup-oom and kv-cache-too-small Lints, when the model and GPU memory are known."""
    if not cfg.model or not machine.gpu_mem_bytes or not cfg.launcher:
        return []
    m = model_from_json(cfg.model)
    opts, _ = options(cfg, release)

    def val(*names):
        o = option_value(opts, *names)
        return o.value if o else None

    util_tok = val("--gpu-memory-utilization", "--device-memory-utilization")
    util = _num(util_tok, float) or 0.9
    p = B.PlanInput(
        gpu_memory_gib=machine.gpu_mem_bytes / GIB,
        gpu_count=machine.gpu_count or 1,
        tp=_num(val("--tensor-parallel-size", "-tp"), int) or 1,
        pp=_num(val("--pipeline-parallel-size", "-pp"), int) or 1,
        utilization=util,
        max_model_len=_num(val("--max-model-len"), int),
        max_num_seqs=_num(val("--max-num-seqs"), int),
        max_num_batched_tokens=_num(val("--max-num-batched-tokens"), int),
        kv_cache_dtype=(val("--kv-cache-dtype").text if val("--kv-cache-dtype") else "auto"),
        vllm_version=release.version,
    )
    result = plan(m, p)
    out = []
    anchor = util_tok or cfg.launcher_token or (cfg.argv[0] if cfg.argv else Token("", cfg.path, 1, 1))
    where = anchor.origin or (anchor.path, anchor.line, anchor.column)
    for f in result["findings"]:
        if "warming up sampler" in f["message"] or "sampler warm-up" in f["message"]:
            seqs_tok = val("--max-num-seqs")
            at = (
                (seqs_tok.origin or (seqs_tok.path, seqs_tok.line, seqs_tok.column))
                if seqs_tok and not util_tok
                else where
            )
            out.append(
                Lint(
                    "sampler-warmup-oom",
                    ARTICLE["sampler-warmup-oom"],
                    "warning",
                    f["message"],
                    at[0],
                    at[1],
                    at[2],
                    evidence={**f["evidence"], "gpu_memory_utilization": util, "max_num_seqs": result["max_num_seqs"]},
                )
            )
        elif f["slug"] in ("kv-cache-too-small",):
            len_tok = val("--max-model-len") or anchor
            at = len_tok.origin or (len_tok.path, len_tok.line, len_tok.column)
            out.append(
                Lint(
                    "kv-cache-too-small",
                    ARTICLE["kv-cache-too-small"],
                    "error",
                    f["message"],
                    at[0],
                    at[1],
                    at[2],
                    evidence={**f["evidence"], "kv_tokens": result["kv_tokens"]},
                )
            )
    return out
