"""vLLM's GPU memory budget at startup (V1 engine): weights, overhead, KV-cache bytes and tokens.

Mirrors vllm/v1/worker/gpu_worker.py::determine_available_memory and
vllm/v1/core/kv_cache_utils.py (get_num_blocks, _report_kv_cache_config) of vLLM 0.15.1:
  requested = ceil(total × gpu_memory_utilization)
  available_kv = requested − (weights + torch activation peak + non-torch increase) [− CUDA graphs, newer]
  tokens = floor(available_kv / (page_size × layers)) × block_size
"""

from __future__ import annotations

import math

from bwdoctor.capacity.model import ModelFacts
from bwdoctor.domain.versions import version_key

from ..records import dataclass

GIB = 1 << 30
BLOCK_SIZE = 16

# Fitted overhead constants (see tests/fixtures/capacity/README.md for the logs they come from).
# Per-GPU memory vLLM V1 holds beyond weights and the activation peak: cuBLAS/attention/quant-kernel
# workspaces, torch.compile buffers, non-torch allocations. Fitted to seed 000 (0.15.1, TP=1):
# 81.25 − 38.77 − 39.31 − 1.76 (modelled activation peak) = 1.41 GiB. Uncertain ±0.6 GiB: the log
# does not print the total, and cudaMemGetInfo's total can be ~0.6 GiB below nvidia-smi's.
RUNTIME_BASE_GIB = 1.41
# V0 engine (< 0.8) measured non_torch_memory=0.35 GiB (vllm issue #10517, RTX 3090).
RUNTIME_BASE_GIB_V0 = 0.35
# NCCL / custom all-reduce buffers once TP or PP > 1 (vLLM's own docstring example: ~0.5 GiB).
NCCL_GIB = 0.5
# CUDA graph memory estimate deducted from the budget by releases that profile graphs.
CUDAGRAPH_GIB = 0.75
# Sampler warm-up: fp32 logits + sorted values + int64 indices per (request, vocab) element.
SAMPLER_PEAK_BYTES_PER_ELEM = 16
SAMPLER_ALLOC_BYTES_PER_ELEM = 12  # one allocation: "Tried to allocate 1.74 GiB" for 1024 × 151552
CUDA_CONTEXT_GIB = 0.5
# Memory MoE kernels take after profiling (lazy workspaces, JIT): seed 002 OOMed in sampler warm-up
# at 0.90 on 94.97 GiB with 9.5 GiB nominal headroom, so ≥ 6.3 GiB went unaccounted (one log; rough).
MOE_UNACCOUNTED_FRACTION = 0.07


# The release the constants above were fitted on: what an unknown vLLM version is taken to be.
DEFAULT_VLLM = "0.15.1"


def vllm_at_least(version: str | None, floor: str) -> bool:
    """Whether the vLLM release (DEFAULT_VLLM when not given) is `floor` or later, in release order."""
    return version_key(version or DEFAULT_VLLM) >= version_key(floor)


@dataclass
class PlanInput:
    """What the user will pass to `vllm serve`, plus the GPU they will run it on."""

    gpu_memory_gib: float
    gpu_count: int = 1
    tp: int = 1
    pp: int = 1
    utilization: float = 0.9
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    kv_cache_dtype: str = "auto"
    weights_gib: float | None = None  # per GPU, as "Model loading took X GiB" prints
    kv_cache_gib: float | None = None  # to reproduce a logged "Available KV cache memory"
    vllm_version: str = "0.15.1"
    block_size: int = BLOCK_SIZE


def kv_dtype_bytes(m: ModelFacts, kv_cache_dtype: str, vllm_version: str) -> tuple[int, str]:
    """Give (bytes per KV element, why) for --kv-cache-dtype and the checkpoint's KV scheme."""
    from bwdoctor.capacity.vllmdata import PlanInputError
    from bwdoctor.capacity.vllmdata import kv_dtype_bytes as known_bytes

    d = (kv_cache_dtype or "auto").lower()
    try:
        explicit = known_bytes(d)
    except PlanInputError:  # `bwdoctor plan` refuses it up front; a serve-config lint says so on its own line
        explicit = None
    if explicit is not None:
        return explicit, f"--kv-cache-dtype {d}"
    if m.quant.kv_cache_dtype == "fp8" and m.quant.kv_auto_resolves and vllm_at_least(vllm_version, "0.14.0"):
        return 1, (
            f"checkpoint declares an FP8 KV cache ({m.quant.source}); vLLM >= 0.14 resolves "
            "--kv-cache-dtype auto to fp8"
        )
    return m.dtype_bytes, f"model dtype {m.dtype}"


def kv_bytes_per_token(m: ModelFacts, tp: int = 1, pp: int = 1, dtype_bytes: int = 2) -> int:
    """Give KV-cache bytes one token takes on one rank (all of that rank's attention layers)."""
    layers = math.ceil(m.num_layers / max(1, pp))
    if m.is_mla:
        # one latent vector per layer, replicated on every TP rank (no factor 2, no TP split)
        return layers * ((m.kv_lora_rank or 0) + (m.qk_rope_head_dim or 0)) * dtype_bytes
    heads = max(1, m.num_kv_heads // max(1, tp))
    return 2 * layers * heads * m.head_dim * dtype_bytes


def weights_per_gpu_bytes(m: ModelFacts, tp: int, pp: int) -> int:
    """Give weight bytes on the busiest rank: everything (embeddings included) splits over TP×PP."""
    return int((m.weights_bytes or 0) / max(1, tp * pp))


def batch_defaults(gpu_memory_gib: float, vllm_version: str, max_model_len: int = 4096) -> tuple[int, int]:
    """Give vllm serve's default (max_num_batched_tokens, max_num_seqs) for this release, GPU size and length.

    The rows and their sources are in bwdoctor/data/vllm_plan.json: V0 releases (< 0.8) without chunked
    prefill batch max(max_model_len, 2048) tokens, which the profiling run must hold in activations."""
    from bwdoctor.capacity.vllmdata import batch_defaults as rows

    tokens, seqs, _ = rows(gpu_memory_gib, vllm_version or DEFAULT_VLLM, max_model_len)
    return tokens, seqs


def activation_peak_bytes(m: ModelFacts, tokens: int, tp: int) -> int:
    """Give the torch peak of one forward over `tokens` dummy tokens on one rank (modelled)."""
    H = m.hidden_size
    if m.moe:
        topk = m.moe.get("experts_per_token") or 8
        inter = (topk + m.moe.get("shared_experts", 0)) * m.moe["moe_intermediate_size"]
    else:
        inter = m.intermediate_size
    qkv = (m.num_heads + 2 * m.num_kv_heads) * m.head_dim
    # gate+up output, activation output, qkv output and two hidden-size buffers, in 16-bit
    per_token = 2 * (3 * inter // max(1, tp) + qkv // max(1, tp) + 2 * H)
    return tokens * per_token


def sampler_peak_bytes(m: ModelFacts, num_seqs: int) -> int:
    """Give the sampler warm-up peak for num_seqs dummy requests over the full vocabulary."""
    return num_seqs * m.vocab_size * SAMPLER_PEAK_BYTES_PER_ELEM


def overhead(m: ModelFacts, p: PlanInput, batched: int, seqs: int) -> dict:
    """Give the non-KV, non-weight memory vLLM budgets per rank, by component (GiB)."""
    act = activation_peak_bytes(m, batched, p.tp) / GIB
    samp = sampler_peak_bytes(m, seqs) / GIB
    parts = {
        "activation_peak_gib": round(max(act, samp), 3),
        "runtime_gib": RUNTIME_BASE_GIB if vllm_at_least(p.vllm_version, "0.8.0") else RUNTIME_BASE_GIB_V0,
        "nccl_gib": NCCL_GIB if p.tp * p.pp > 1 else 0.0,
        # graphs are budgeted from 0.21 ("CUDA graph memory profiling ... default since v0.21.0")
        "cudagraph_gib": CUDAGRAPH_GIB if vllm_at_least(p.vllm_version, "0.21.0") else 0.0,
    }
    parts["total_gib"] = round(sum(parts.values()), 3)
    return parts


def kv_tokens(avail_bytes: float, bpt: int, block_size: int = BLOCK_SIZE) -> int:
    """Give "GPU KV cache size" tokens: whole blocks of block_size tokens."""
    if avail_bytes <= 0 or bpt <= 0:
        return 0
    return int(avail_bytes // (bpt * block_size)) * block_size


def max_concurrency(m: ModelFacts, tokens: int, max_model_len: int, batched: int) -> float:
    """Give how many max-model-len requests fit, as vLLM reports it (sliding layers need less)."""
    if max_model_len <= 0:
        return 0.0
    kinds = m.attention_layer_kinds()
    total = kinds["full"] + kinds["sliding"]
    if not kinds["sliding"] or not m.sliding_window:
        return tokens / max_model_len
    # SlidingWindowSpec.max_memory_usage_bytes: min(window − 1 + batched, max_len) tokens (+1 block)
    sw_tokens = min(m.sliding_window - 1 + batched, max_model_len) + BLOCK_SIZE
    per_request = (kinds["full"] * max_model_len + kinds["sliding"] * sw_tokens) / total
    return tokens / per_request
