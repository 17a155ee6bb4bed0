"""Plan a vLLM start: predicted weights, KV cache and tokens per GPU, verdicts and fixes that fit."""

from __future__ import annotations

import math

from bwdoctor.capacity import budget as B
from bwdoctor.capacity.model import ModelFacts

from .. import records

SCHEMA = "bwdoctor.plan/1"
GIB = B.GIB


def _finding(slug: str, severity: str, message: str, kb: str | None = None, **evidence) -> dict:
    return {"slug": slug, "severity": severity, "message": message, "kb": kb or slug, "evidence": evidence}


def _core(m: ModelFacts, p: B.PlanInput) -> dict:
    """Give the budget figures for one configuration (no findings)."""
    max_len = p.max_model_len or m.max_position_embeddings or 4096
    batched_default, seqs_default = B.batch_defaults(p.gpu_memory_gib, p.vllm_version, max_len)
    seqs = p.max_num_seqs or seqs_default
    batched = p.max_num_batched_tokens or batched_default
    kv_b, kv_why = B.kv_dtype_bytes(m, p.kv_cache_dtype, p.vllm_version)
    bpt = B.kv_bytes_per_token(m, p.tp, p.pp, kv_b)
    requested = math.ceil(p.gpu_memory_gib * GIB * p.utilization)
    weights = p.weights_gib * GIB if p.weights_gib is not None else B.weights_per_gpu_bytes(m, p.tp, p.pp)
    over = B.overhead(m, p, batched, seqs)
    if p.kv_cache_gib is not None:
        avail = p.kv_cache_gib * GIB
    else:
        avail = requested - weights - over["total_gib"] * GIB
    tokens = B.kv_tokens(avail, bpt, p.block_size)
    return {
        "requested_gib": requested / GIB,
        "weights": weights,
        "avail": avail,
        "bpt": bpt,
        "kv_dtype_bytes": kv_b,
        "kv_dtype_reason": kv_why,
        "tokens": tokens,
        "overhead": over,
        "max_model_len": max_len,
        "max_num_seqs": seqs,
        "max_num_batched_tokens": batched,
    }


def _fits(c: dict, p: B.PlanInput) -> bool:
    return c["weights"] < c["requested_gib"] * GIB and c["tokens"] >= c["max_model_len"]


def _suggest(m: ModelFacts, p: B.PlanInput, c: dict) -> list[dict]:
    """Give configurations near the requested one that fit, each as flags with its KV tokens."""
    out: list[dict] = []

    def attempt(label: str, flags: dict, **changes):
        q = records.replace(p, **changes)
        cc = _core(m, q)
        if _fits(cc, q):
            out.append(
                _finding(
                    "suggestion",
                    "info",
                    f"{label}: {' '.join(f'{k} {v}' for k, v in flags.items())} "
                    f"→ {cc['tokens']:,} KV tokens, "
                    f"{B.max_concurrency(m, cc['tokens'], cc['max_model_len'], cc['max_num_batched_tokens']):.2f}× "
                    f"concurrency at {cc['max_model_len']:,}",
                    kb="kv-cache-too-small",
                    flags=flags,
                    kv_tokens=cc["tokens"],
                )
            )
            return True
        return False

    for u in (0.85, 0.9, 0.92, 0.95):
        if u > p.utilization and attempt("raise utilization", {"--gpu-memory-utilization": u}, utilization=u):
            break
    if c["kv_dtype_bytes"] > 1:
        attempt("FP8 KV cache (halves bytes per token)", {"--kv-cache-dtype": "fp8"}, kv_cache_dtype="fp8")
    for tp in (2, 4, 8):
        if tp > p.tp and tp * p.pp <= p.gpu_count and m.num_heads % tp == 0:
            if attempt("more tensor parallelism", {"--tensor-parallel-size": tp}, tp=tp):
                break
    if c["weights"] < c["requested_gib"] * GIB and c["avail"] > 0 and c["tokens"] < c["max_model_len"]:
        fit_len = (c["tokens"] // 1024) * 1024 or c["tokens"]
        if fit_len >= 1024:
            attempt("shorter context", {"--max-model-len": fit_len}, max_model_len=fit_len)
    if not m.quant.weight_bits and p.weights_gib is None:
        # a 4-bit AWQ/GPTQ export of the same architecture
        q4 = records.replace(
            m, quant=records.replace(m.quant, method="awq", weight_bits=4, group_size=128, source="hypothetical")
        )
        from bwdoctor.capacity.model import estimate_weight_bytes

        q4.weights_bytes = estimate_weight_bytes(q4)
        cc = _core(q4, p)
        if _fits(cc, p):
            out.append(
                _finding(
                    "suggestion",
                    "info",
                    f"a 4-bit AWQ/GPTQ variant (~{q4.weights_bytes / GIB:.1f} GiB) fits: "
                    f"{cc['weights'] / GIB:.2f} GiB weights per GPU → {cc['tokens']:,} KV tokens",
                    kb="weights-do-not-fit",
                    flags={"--quantization": "awq_marlin"},
                    kv_tokens=cc["tokens"],
                )
            )
    return out


def plan(m: ModelFacts, p: B.PlanInput) -> dict:
    """Give the bwdoctor.plan/1 result: figures, fits, findings (verdicts then suggestions)."""
    c = _core(m, p)
    findings: list[dict] = []
    conc = B.max_concurrency(m, c["tokens"], c["max_model_len"], c["max_num_batched_tokens"])
    w_gib, r_gib = c["weights"] / GIB, c["requested_gib"]
    if p.tp * p.pp > p.gpu_count:
        findings.append(
            _finding(
                "not-enough-gpus",
                "error",
                f"TP×PP = {p.tp * p.pp} needs that many GPUs; {p.gpu_count} available",
                kb="weights-do-not-fit",
                tp=p.tp,
                pp=p.pp,
                gpu_count=p.gpu_count,
            )
        )
    if c["weights"] >= c["requested_gib"] * GIB:
        findings.append(
            _finding(
                "weights-do-not-fit",
                "error",
                f"weights need {w_gib:.2f} GiB per GPU but --gpu-memory-utilization {p.utilization} of "
                f"{p.gpu_memory_gib:.2f} GiB allows {r_gib:.2f} GiB: vLLM fails loading the model "
                '("Failed to load model - not enough GPU memory") before any KV cache exists',
                weights_gib_per_gpu=round(w_gib, 2),
                requested_gib=round(r_gib, 2),
            )
        )
    elif c["tokens"] <= 0:
        findings.append(
            _finding(
                "kv-cache-too-small",
                "error",
                f"no memory left for KV cache: {r_gib:.2f} GiB requested − {w_gib:.2f} GiB weights − "
                f'{c["overhead"]["total_gib"]:.2f} GiB overhead ≤ 0 ("No available memory for the cache blocks")',
                available_kv_gib=round(c["avail"] / GIB, 2),
            )
        )
    elif c["tokens"] < c["max_model_len"]:
        findings.append(
            _finding(
                "kv-cache-too-small",
                "error",
                f"KV cache holds {c['tokens']:,} tokens, less than one --max-model-len {c['max_model_len']:,} "
                f"sequence: vLLM refuses to start (estimated maximum model length ≈ {c['tokens']:,})",
                kv_tokens=c["tokens"],
                max_model_len=c["max_model_len"],
            )
        )
    findings += _sampler_risk(m, p, c)
    fits = not any(f["severity"] == "error" for f in findings)
    if not fits:
        findings += _suggest(m, p, c)
    return {
        "schema": SCHEMA,
        "model": m.name,
        "weights_gib_per_gpu": round(w_gib, 3),
        "weights_source": "--weights-gib" if p.weights_gib is not None else m.weights_source,
        "requested_gib": round(r_gib, 3),
        "overhead_gib": c["overhead"],
        "kv_cache_gib": round(max(c["avail"], 0) / GIB, 3),
        "kv_bytes_per_token": c["bpt"],
        "kv_cache_dtype_bytes": c["kv_dtype_bytes"],
        "kv_cache_dtype_reason": c["kv_dtype_reason"],
        "kv_tokens": c["tokens"],
        "max_model_len": c["max_model_len"],
        "max_num_seqs": c["max_num_seqs"],
        "max_num_batched_tokens": c["max_num_batched_tokens"],
        "max_concurrency": round(conc, 2),
        "fits": fits,
        "inputs": {
            "gpu_memory_gib": p.gpu_memory_gib,
            "gpu_count": p.gpu_count,
            "tp": p.tp,
            "pp": p.pp,
            "gpu_memory_utilization": p.utilization,
            "kv_cache_dtype": p.kv_cache_dtype,
            "vllm_version": p.vllm_version,
        },
        "findings": findings,
    }


def _sampler_risk(m: ModelFacts, p: B.PlanInput, c: dict) -> list[dict]:
    """Give a warning when the sampler warm-up (after KV + CUDA graphs) may not find its memory."""
    if not m.vocab_size:
        return []
    alloc = c["max_num_seqs"] * m.vocab_size * B.SAMPLER_ALLOC_BYTES_PER_ELEM / GIB
    headroom = p.gpu_memory_gib * (1 - p.utilization) - B.CUDA_CONTEXT_GIB
    if not B.vllm_at_least(p.vllm_version, "0.21.0"):
        headroom -= B.CUDAGRAPH_GIB  # graphs come out of the headroom when not budgeted
    unaccounted = B.MOE_UNACCOUNTED_FRACTION * p.gpu_memory_gib if m.moe else 0.0
    if alloc <= headroom - unaccounted:
        return []
    return [
        _finding(
            "sampler-warmup-oom",
            "warning",
            f"sampler warm-up allocates ~{alloc:.2f} GiB for {c['max_num_seqs']} dummy requests × "
            f"{m.vocab_size:,} vocab after the KV cache is allocated; only ~{max(headroom - unaccounted, 0):.2f} GiB "
            f"is expected free outside --gpu-memory-utilization {p.utilization}"
            + (" (MoE kernels take extra workspace after profiling)" if m.moe else "")
            + ": lower --max-num-seqs or --gpu-memory-utilization",
            kb="startup-oom",
            sampler_alloc_gib=round(alloc, 2),
            headroom_gib=round(headroom - unaccounted, 2),
        )
    ]
