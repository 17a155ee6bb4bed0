"""What a quantized checkpoint holds (FP8 KV-cache scale tensors, ModelOpt NVFP4 MoE) and what vLLM releases do with
it. Release facts were read from vLLM's PyPI wheels (vllm/model_executor/...) and are data, with their sources."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

from .. import lazyre
from .versions import compare, parse_version

# ModelOpt exports a layer's FP8 KV scales on the projections (self_attn.k_proj.k_scale / v_proj.v_scale); other
# exporters put them on the attention module (self_attn.attn.k_scale) or ship one kv_scale (deprecated in vLLM).
SCALE_FORMS = {
    "proj": lazyre.compile(r"\.self_attn\.([kv])_proj\.\1_scale$"),
    "qkv_proj": lazyre.compile(r"\.self_attn\.qkv_proj\.[kv]_scale$"),
    "attn": lazyre.compile(r"\.attn\.[kv]_scale$"),
    "kv_scale": lazyre.compile(r"\.kv_scale$"),
}
KV_SCALE_RE = lazyre.compile(r"\.(?:k_scale|v_scale|kv_scale)$")

# Model loaders that raise KeyError on ModelOpt-form scales: their stacked-parameter branch renames
# self_attn.k_proj.k_scale to self_attn.qkv_proj.k_scale and looks it up in params_dict before
# maybe_remap_kv_scale_name maps it to self_attn.attn.k_scale (vllm/model_executor/models/glm4_moe.py,
# Glm4MoeModel.load_weights). Read in the wheels: 0.14.0, 0.15.0, 0.15.1, 0.16.0, 0.17.0, 0.18.0, 0.19.0,
# 0.20.0, 0.20.1, 0.20.2 raise; 0.21.0, 0.22.0 and 0.24.0 remap in that branch too; 0.26.0+ load through
# AutoWeightsLoader. Releases before 0.14.0 were not read, so they are not judged.
KEYERROR_LOADERS: Dict[str, Dict[str, str]] = {
    "Glm4MoeForCausalLM": {"file": "vllm/model_executor/models/glm4_moe.py", "first": "0.14.0", "fixed": "0.21.0"},
}

# NVFP4 MoE backend choice (vllm/model_executor/layers/fused_moe/oracle/nvfp4.py, select_nvfp4_moe_backend):
# from 0.15.0 to 0.33.0 (every release read: 0.15.0, 0.15.1, 0.16.0, 0.17.0, 0.18.0, 0.19.0, 0.20.0, 0.22.0,
# 0.24.0, 0.26.0, 0.28.0, 0.29.0 ... 0.33.0) the order is FLASHINFER_TRTLLM, FLASHINFER_CUTEDSL(_BATCHED),
# FLASHINFER_CUTLASS, VLLM_CUTLASS, MARLIN...; TRTLLM and CUTEDSL take only the SM100 family, while
# FlashInferExperts._supports_current_device accepts the SM120 family and has_device_capability(100) holds on
# 12.x, so with FlashInfer installed an sm_12x GPU gets FLASHINFER_CUTLASS (prioritize_humming, 0.32+, only
# moves HUMMING ahead of MARLIN). Ways out: VLLM_USE_FLASHINFER_MOE_FP4=0 drops the FlashInfer backends
# (read up to 0.23.0, per the release table), --moe-backend cutlass (0.17.0+) picks VLLM_CUTLASS.
NVFP4_SELECTION = {"first": "0.15.0", "last_read": "0.33.0", "env_until": "0.23.0", "flag_from": "0.17.0"}
# FlashInfer releases with the SM120 grouped-GEMM bug (flashinfer-ai/flashinfer#2577, #2723), as the
# flashinfer-nvfp4-moe-sm120 article bounds them.
FLASHINFER_BAD_UNTIL = "0.6.12"

MOE_EXPERT_KEYS = ("n_routed_experts", "num_experts", "num_local_experts", "moe_num_experts", "n_experts")


def scale_forms(names: Iterable[str]) -> Dict[str, int]:
    """How many KV-scale tensors of each form a checkpoint names ({"proj": 184, "attn": 0, ...})."""
    out = dict.fromkeys(SCALE_FORMS, 0)
    for n in names:
        for form, rx in SCALE_FORMS.items():
            if rx.search(n):
                out[form] += 1
                break
    return out


def in_range(version: str, first: str, before: Optional[str] = None, last: Optional[str] = None) -> Optional[bool]:
    """Whether a version lies in [first, before) / [first, last]; None when it is not a version."""
    if parse_version(version) is None:
        return None
    if compare(version, first) < 0:
        return False
    if before is not None and compare(version, before) >= 0:
        return False
    if last is not None and compare(version, last) > 0:
        return False
    return True


def num_experts(config: Dict[str, Any]) -> Optional[int]:
    """Routed experts of an MoE model's config.json (also under text_config); None for a dense model."""
    for cfg in (config, config.get("text_config") if isinstance(config.get("text_config"), dict) else None):
        if not isinstance(cfg, dict):
            continue
        for k in MOE_EXPERT_KEYS:
            v = cfg.get(k)
            if isinstance(v, int) and not isinstance(v, bool) and v > 1:
                return v
    return None


def quant_summary(config: Dict[str, Any], hf_quant: Optional[Dict[str, Any]]) -> Dict[str, Optional[str]]:
    """{"method", "algo", "kv_algo"} of config.json quantization_config, else ModelOpt's hf_quant_config.json."""
    qc = config.get("quantization_config") if isinstance(config.get("quantization_config"), dict) else None
    if qc is None and isinstance(hf_quant, dict):
        qc = hf_quant
    if not isinstance(qc, dict):
        return {"method": None, "algo": None, "kv_algo": None}
    inner: Dict[str, Any] = qc["quantization"] if isinstance(qc.get("quantization"), dict) else qc
    method = str(qc.get("quant_method") or ("modelopt" if "producer" in qc else "") or "").lower() or None
    algo = inner.get("quant_algo")
    kv = inner.get("kv_cache_quant_algo") or qc.get("kv_cache_quant_algo") or inner.get("kv_cache_scheme")
    if isinstance(kv, dict):
        kv = "FP8" if kv.get("num_bits") == 8 and kv.get("type") == "float" else str(kv.get("type"))
    return {
        "method": method,
        "algo": str(algo).upper() if algo else None,
        "kv_algo": str(kv).upper() if kv else None,
    }


def is_nvfp4(quant: Dict[str, Any]) -> bool:
    """A ModelOpt NVFP4 checkpoint (quant_algo NVFP4, or quant_method modelopt_fp4)."""
    return (quant.get("algo") or "") == "NVFP4" or (quant.get("method") or "") in ("modelopt_fp4",)
