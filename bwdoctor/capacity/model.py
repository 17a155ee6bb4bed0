"""Model facts that drive GPU memory, read from a model directory without loading any weights."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from bwdoctor import fileio
from bwdoctor.capacity.quant import QuantInfo, parse_quant
from bwdoctor.capacity.safetensors_header import HeaderError, file_tensor_bytes

CONFIG_LIMIT = 16 << 20  # config.json and the safetensors index are KBs to a few MB; more is not one
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4}


class ModelError(ValueError):
    """A model directory that cannot be planned; the message says what to fix."""


@dataclass
class ModelFacts:
    """Architecture, dtype, quantization and weight bytes of one checkpoint."""

    name: str
    architectures: list[str]
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    dtype: str
    dtype_bytes: int
    tie_word_embeddings: bool = False
    kv_lora_rank: int | None = None  # MLA (DeepSeek-style): one latent "head" per layer
    qk_rope_head_dim: int | None = None
    sliding_window: int | None = None
    layer_types: list[str] | None = None  # "full_attention" / "sliding_attention" per layer
    moe: dict = field(default_factory=dict)
    quant: QuantInfo = field(default_factory=QuantInfo)
    weights_bytes: int | None = None
    weights_source: str = "none"  # safetensors-headers | index-total-size | config-estimate
    max_position_embeddings: int | None = None

    @property
    def is_mla(self) -> bool:
        return bool(self.kv_lora_rank)

    def attention_layer_kinds(self) -> dict[str, int]:
        """Give how many layers are full vs sliding-window attention."""
        if self.layer_types:
            full = sum(1 for t in self.layer_types if "sliding" not in str(t))
            return {"full": full, "sliding": len(self.layer_types) - full}
        return {"full": self.num_layers, "sliding": 0}


def _load_json(path: Path, what: str) -> dict:
    """Give a JSON object from a file, or raise ModelError saying what is wrong with it."""
    try:
        raw = fileio.read_bytes(path, CONFIG_LIMIT, strict=True)
    except OSError as e:
        raise ModelError(f"cannot read {what} {path}: {fileio.describe(e)}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"{what} {path} is not UTF-8 text (byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelError(f"{what} {path} is not valid JSON (line {e.lineno}: {e.msg})") from None
    except RecursionError:
        raise ModelError(f"{what} {path} is nested too deeply to be a model config") from None
    if not isinstance(data, dict):
        raise ModelError(f"{what} {path} is not a JSON object")
    return data


def _text_config(cfg: dict) -> dict:
    """Give the language-model part of a (possibly multimodal) config."""
    for key in ("text_config", "language_config", "llm_config"):
        sub = cfg.get(key)
        if isinstance(sub, dict) and sub.get("num_hidden_layers"):
            merged = dict(sub)
            for k in ("quantization_config", "torch_dtype", "dtype"):
                merged.setdefault(k, cfg.get(k))
            return merged
    return cfg


def _int(cfg: dict, *keys: str, default=None):
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return default


def facts_from_config(cfg: dict, name: str = "model", hf_quant_config: dict | None = None) -> ModelFacts:
    """Give ModelFacts from a parsed config.json (and ModelOpt hf_quant_config.json if any)."""
    top = cfg
    cfg = _text_config(cfg)
    layers = _int(cfg, "num_hidden_layers", "n_layer", "num_layers")
    heads = _int(cfg, "num_attention_heads", "n_head")
    hidden = _int(cfg, "hidden_size", "d_model", "n_embd")
    if not layers or not heads or not hidden:
        missing = [
            k
            for k, v in (("num_hidden_layers", layers), ("num_attention_heads", heads), ("hidden_size", hidden))
            if not v
        ]
        raise ModelError(f"config.json of {name} lacks {', '.join(missing)}; cannot size the KV cache")
    kv_heads = _int(cfg, "num_key_value_heads", "multi_query_group_num", default=heads)
    head_dim = _int(cfg, "head_dim") or hidden // heads
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or top.get("torch_dtype") or "bfloat16")
    dtype = dtype.replace("torch.", "")
    layer_types = cfg.get("layer_types") if isinstance(cfg.get("layer_types"), list) else None
    sw = _int(cfg, "sliding_window")
    if layer_types is None and sw and cfg.get("use_sliding_window") is False:
        sw = None  # Qwen2 configs carry a window they do not use
    moe = {}
    n_exp = _int(cfg, "n_routed_experts", "num_experts", "num_local_experts")
    if n_exp:
        moe = {
            "experts": n_exp,
            "shared_experts": _int(cfg, "n_shared_experts", "num_shared_experts", default=0),
            "moe_intermediate_size": _int(
                cfg,
                "moe_intermediate_size",
                "expert_intermediate_size",
                default=_int(cfg, "intermediate_size", default=0),
            ),
            "first_dense_layers": _int(cfg, "first_k_dense_replace", default=0),
            "experts_per_token": _int(cfg, "num_experts_per_tok", "moe_topk", default=8),
        }
    return ModelFacts(
        name=name,
        architectures=list(top.get("architectures") or cfg.get("architectures") or []),
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        intermediate_size=_int(cfg, "intermediate_size", "ffn_dim", default=4 * hidden),
        vocab_size=_int(cfg, "vocab_size", "padded_vocab_size", default=0),
        dtype=dtype,
        dtype_bytes=DTYPE_BYTES.get(dtype, 2),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", top.get("tie_word_embeddings", False))),
        kv_lora_rank=_int(cfg, "kv_lora_rank"),
        qk_rope_head_dim=_int(cfg, "qk_rope_head_dim"),
        sliding_window=sw,
        layer_types=layer_types,
        moe=moe,
        max_position_embeddings=_int(cfg, "max_position_embeddings", "seq_length"),
        quant=parse_quant(cfg if cfg.get("quantization_config") else top, hf_quant_config),
    )


def _excluded(module: str, patterns: list[str]) -> bool:
    for p in patterns:
        rx = "^" + re.escape(p).replace(r"\*", ".*") + "$"
        if re.match(rx, module) or (("*" not in p) and p in module):
            return True
    return False


def estimate_weight_bytes(m: ModelFacts) -> int:
    """Give checkpoint bytes estimated from the architecture and quantization (no files)."""
    H, D = m.hidden_size, m.head_dim
    q = m.quant
    qb = q.bytes_per_weight() if q.weight_bits else float(m.dtype_bytes)
    full = float(m.dtype_bytes)

    def linear(name: str, n: int) -> float:
        return n * (full if (not q.weight_bits or _excluded(name, q.excluded)) else qb)

    total = 0.0
    emb = m.vocab_size * H
    # embeddings and lm_head stay in the model dtype in AWQ/GPTQ/ModelOpt/FP8 exports
    total += emb * full * (1 if m.tie_word_embeddings else 2)
    if m.is_mla:
        lora = m.kv_lora_rank or 0
        attn = (
            H * m.num_heads * (D + (m.qk_rope_head_dim or 0))
            + H * (lora + (m.qk_rope_head_dim or 0))
            + lora * m.num_heads * 2 * D
            + m.num_heads * D * H
        )
    else:
        attn = H * m.num_heads * D * 2 + H * m.num_kv_heads * D * 2
    for i in range(m.num_layers):
        total += linear(f"model.layers.{i}.self_attn", attn)
        if m.moe and i >= m.moe.get("first_dense_layers", 0):
            e_int = m.moe["moe_intermediate_size"]
            n = (m.moe["experts"] + m.moe["shared_experts"]) * 3 * H * e_int
            total += linear(f"model.layers.{i}.mlp.experts", n) + H * m.moe["experts"] * 4  # router (fp32)
        else:
            total += linear(f"model.layers.{i}.mlp", 3 * H * m.intermediate_size)
        total += 2 * H * full  # norms
    return int(total)


def _shards(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.glob("*.safetensors") if p.is_file())


def load_model(model_dir: Path | str) -> ModelFacts:
    """Give ModelFacts for a local model directory: config + exact weight bytes from headers."""
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelError(f"{d} is not a directory; pass the local model directory (with config.json)")
    cfg = _load_json(d / "config.json", "config")
    hq = d / "hf_quant_config.json"
    hf_quant = _load_json(hq, "ModelOpt quant config") if hq.is_file() else None
    facts = facts_from_config(cfg, name=d.name, hf_quant_config=hf_quant)
    shards = _shards(d)
    if shards:
        try:
            facts.weights_bytes = sum(file_tensor_bytes(p)[0] for p in shards)
            facts.weights_source = f"safetensors-headers ({len(shards)} files)"
            return facts
        except HeaderError as e:
            raise ModelError(str(e)) from e
    index = d / "model.safetensors.index.json"
    if index.is_file():
        meta = _load_json(index, "safetensors index").get("metadata") or {}
        size = meta.get("total_size")
        if isinstance(size, (int, float)) and size > 0:
            facts.weights_bytes = int(size)
            facts.weights_source = "index-total-size"
            return facts
    facts.weights_bytes = estimate_weight_bytes(facts)
    facts.weights_source = "config-estimate"
    return facts
