"""What a checkpoint's quantization config says: method, weight bits, and the KV-cache dtype it implies."""

from __future__ import annotations

from ..records import dataclass, field


@dataclass
class QuantInfo:
    """Quantization facts of a checkpoint that change memory: bytes per weight and KV dtype."""

    method: str | None = None  # vLLM name: awq, gptq, modelopt_fp4, modelopt, fp8, compressed-tensors
    weight_bits: float | None = None  # bits per quantized weight element
    group_size: int | None = None  # elements sharing one scale (-1/None = per channel)
    kv_cache_dtype: str | None = None  # "fp8" when the checkpoint declares an 8-bit float KV cache
    kv_auto_resolves: bool = False  # vLLM's --kv-cache-dtype auto picks kv_cache_dtype (ModelOpt, vLLM >= 0.14)
    excluded: list[str] = field(default_factory=list)  # module patterns left unquantized
    source: str = ""  # file the facts came from

    def bytes_per_weight(self) -> float:
        """Give stored bytes per quantized linear weight element, scales and zeros included."""
        if not self.weight_bits:
            return 2.0
        b = self.weight_bits / 8.0
        g = self.group_size if self.group_size and self.group_size > 0 else None
        if self.method in ("awq", "gptq", "awq_marlin", "gptq_marlin"):
            # fp16 scale per group (+ packed zero point per group)
            g = g or 128
            return b + 2.0 / g + (self.weight_bits / 8.0) / g
        if self.method == "modelopt_fp4" or (self.weight_bits == 4 and g == 16):
            return b + 1.0 / (g or 16)  # one FP8 (E4M3) block scale per 16 values
        if g:
            return b + 2.0 / g
        return b  # per-channel/per-tensor scales are negligible


def _kv_from_scheme(scheme) -> str | None:
    """Give "fp8" for an 8-bit float KV scheme (string or compressed-tensors dict)."""
    if isinstance(scheme, str):
        s = scheme.lower()
        return "fp8" if s.startswith("fp8") or s == "float8" else None
    if isinstance(scheme, dict) and scheme.get("num_bits") == 8 and scheme.get("type") == "float":
        return "fp8"
    return None


def parse_quant(config: dict, hf_quant_config: dict | None = None) -> QuantInfo:
    """Give QuantInfo from config.json's quantization_config and/or ModelOpt's hf_quant_config.json."""
    qc = config.get("quantization_config") if isinstance(config, dict) else None
    src = "config.json:quantization_config"
    if not isinstance(qc, dict) and isinstance(hf_quant_config, dict):
        qc, src = hf_quant_config, "hf_quant_config.json"
    if not isinstance(qc, dict):
        return QuantInfo()
    info = QuantInfo(source=src)
    method = str(qc.get("quant_method", "") or "").lower()
    inner: dict = qc["quantization"] if isinstance(qc.get("quantization"), dict) else qc
    algo = str(inner.get("quant_algo", "") or "").upper()
    if method.startswith("modelopt") or algo:
        info.method = "modelopt_fp4" if "FP4" in algo else "modelopt"
        info.weight_bits = 4 if "FP4" in algo else 8
        info.group_size = inner.get("group_size") or (16 if "FP4" in algo else None)
        info.excluded = list(inner.get("exclude_modules") or qc.get("exclude_modules") or [])
        kv = (
            inner.get("kv_cache_scheme")
            or qc.get("kv_cache_scheme")
            or inner.get("kv_cache_quant_algo")
            or qc.get("kv_cache_quant_algo")
        )
        info.kv_cache_dtype = _kv_from_scheme(kv)
        info.kv_auto_resolves = info.kv_cache_dtype is not None
    elif method in ("awq", "gptq", "awq_marlin", "gptq_marlin"):
        info.method = method.replace("_marlin", "")
        info.weight_bits = qc.get("bits") or qc.get("w_bit") or 4
        info.group_size = qc.get("group_size") or qc.get("q_group_size") or 128
        info.excluded = list(qc.get("modules_to_not_convert") or [])
    elif method == "fp8":
        info.method, info.weight_bits = "fp8", 8
        info.group_size = None
        info.excluded = list(qc.get("ignored_layers") or qc.get("modules_to_not_convert") or [])
    elif method == "compressed-tensors":
        info.method = "compressed-tensors"
        for group in (qc.get("config_groups") or {}).values():
            w = (group or {}).get("weights") or {}
            if w.get("num_bits"):
                info.weight_bits = w["num_bits"]
                info.group_size = w.get("group_size")
                break
        info.excluded = list(qc.get("ignore") or [])
        # vLLM reads this scheme but (0.15) keeps --kv-cache-dtype auto at the model dtype
        info.kv_cache_dtype = _kv_from_scheme(qc.get("kv_cache_scheme"))
    elif method == "bitsandbytes":
        info.method = "bitsandbytes"
        info.weight_bits = 4 if qc.get("load_in_4bit") else 8
        info.group_size = 64 if qc.get("load_in_4bit") else None
    else:
        info.method = method or None
        info.weight_bits = qc.get("bits")
        info.group_size = qc.get("group_size")
    return info
