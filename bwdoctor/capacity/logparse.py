"""Real memory figures from a vLLM startup log, and how they compare with a plan's prediction."""

from __future__ import annotations

import re

_NUM = r"([0-9][0-9,]*(?:\.[0-9]+)?)"
_PATTERNS = {
    # V1: "Model loading took 38.77 GiB memory and 14.96 seconds"; V0: "Loading model weights took 14.9888 GB"
    "weights_gib": [rf"Model loading took {_NUM} ?GiB", rf"Loading model weights took {_NUM} ?GB"],
    "kv_cache_gib": [rf"Available KV cache memory: {_NUM} ?GiB", rf"kv_cache_size={_NUM} ?GiB"],
    "kv_tokens": [rf"GPU KV cache size: {_NUM} tokens"],
    "gpu_blocks": [rf"#? ?GPU blocks: {_NUM}"],
    "max_concurrency": [rf"Maximum concurrency for {_NUM} tokens per request: {_NUM}x"],
    "utilization": [rf"gpu[_-]memory[_-]utilization[= ]+{_NUM}", rf"GPU mem:\s+{_NUM}"],
    "tensor_parallel_size": [
        rf"tensor_parallel_size={_NUM}",
        rf"--tensor-parallel-size[= ]{_NUM}",
        rf"\bTP[:=]\s*{_NUM}",
    ],
    "vllm_version": [
        r"vLLM API server version ([0-9][\w.+-]*)",
        r"vLLM:\s+([0-9][\w.+-]*)",
        r"Initializing a V1 LLM engine \(v([0-9][\w.+-]*)\)",
        r"vLLM v([0-9][\w.+-]*)",
    ],
    "gpu_total_gib": [
        rf"total_gpu_memory={_NUM} ?GiB",
        rf"total capacity of {_NUM} GiB",
        rf"Free memory on device \S* \({_NUM}/{_NUM} GiB\)",
    ],
    "graph_gib": [rf"Graph capturing finished in {_NUM} secs?, took {_NUM} GiB"],
    "max_model_len_required": [rf"max seq len \({_NUM}\)"],
    "max_model_len": [rf"max_seq_len={_NUM}", rf"max_model_len={_NUM}", rf"--max-model-len[= ]{_NUM}"],
    "max_num_batched_tokens": [rf"max_num_batched_tokens={_NUM}", rf"--max-num-batched-tokens[= ]{_NUM}"],
    "estimated_max_model_len": [
        rf"estimated maximum model length is {_NUM}",
        rf"maximum number of tokens that can be stored in KV cache \({_NUM}\)",
    ],
}
_INTS = {
    "kv_tokens",
    "gpu_blocks",
    "tensor_parallel_size",
    "max_model_len_required",
    "estimated_max_model_len",
    "max_model_len",
    "max_num_batched_tokens",
}


def _num(s: str):
    return float(s.replace(",", ""))


def parse_startup_log(text: str) -> dict:
    """Give the figures a vLLM startup log states (first occurrence each; rank 0 wins)."""
    out: dict = {}
    for key, pats in _PATTERNS.items():
        for pat in pats:
            m = re.search(pat, text, re.IGNORECASE if key in ("utilization",) else 0)
            if not m:
                continue
            if key == "vllm_version":
                out[key] = m.group(1).rstrip(".")
            elif key == "max_concurrency":
                out["max_model_len"] = int(_num(m.group(1)))
                out[key] = _num(m.group(2))
            elif key == "gpu_total_gib":
                out[key] = _num(m.group(m.lastindex or 0))
            elif key == "graph_gib":
                out[key] = _num(m.group(2))
            else:
                v = _num(m.group(1))
                out[key] = int(v) if key in _INTS else v
            break
    if "kv_tokens" not in out and "gpu_blocks" in out:
        out["kv_tokens"] = out["gpu_blocks"] * 16  # V0 logs blocks of 16 tokens
    return out


def _rel(pred, real):
    if pred is None or real in (None, 0):
        return None
    return round((pred - real) / real, 4)


def compare(log_figures: dict, plan_result: dict) -> dict:
    """Give logged vs predicted figures side by side with relative errors (for explain --log)."""
    rows = {}
    for key, plan_key in (
        ("weights_gib", "weights_gib_per_gpu"),
        ("kv_cache_gib", "kv_cache_gib"),
        ("kv_tokens", "kv_tokens"),
        ("max_concurrency", "max_concurrency"),
    ):
        real, pred = log_figures.get(key), plan_result.get(plan_key)
        if real is None and pred is None:
            continue
        rows[key] = {"logged": real, "predicted": pred, "rel_error": _rel(pred, real)}
    notes = []
    kv_tok = rows.get("kv_tokens", {})
    if kv_tok.get("rel_error") is not None and abs(kv_tok["rel_error"]) > 0.4:
        ratio = kv_tok["logged"] / kv_tok["predicted"] if kv_tok["predicted"] else None
        if ratio and abs(ratio - 2) < 0.1:
            notes.append("logged tokens are 2× the prediction: the run used a 1-byte (FP8) KV cache")
        elif ratio and abs(ratio - 0.5) < 0.05:
            notes.append("logged tokens are half the prediction: the run used a 16-bit KV cache")
    util, total = log_figures.get("utilization"), log_figures.get("gpu_total_gib")
    w, kv = log_figures.get("weights_gib"), log_figures.get("kv_cache_gib")
    if util and total and w is not None and kv is not None:
        implied = w + kv
        if implied > util * total:
            notes.append(
                f"weights + KV = {implied:.2f} GiB exceed utilization × total = {util * total:.2f} GiB: "
                "the logged utilization or GPU total is not what this run used, or profiling "
                "under-counted memory (expect an OOM later, e.g. in sampler warm-up)"
            )
        else:
            notes.append(f"overhead implied by the log: {util * total - implied:.2f} GiB")
    return {"schema": "bwdoctor.plan-compare/1", "figures": rows, "notes": notes}
