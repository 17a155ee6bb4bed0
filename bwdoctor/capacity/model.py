"""Model facts that drive GPU memory, read from a model directory without loading any weights."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from bwdoctor import fileio
from bwdoctor.capacity.quant import QuantInfo, parse_quant
from bwdoctor.capacity.safetensors_header import HeaderError, file_tensor_bytes

from ..records import dataclass, field

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


# Bounds of the figures plan reads from config.json: far beyond any real model, small enough that nothing
# computed from them runs long or overflows. A value outside them is refused with its name (never planned).
MAX_LAYERS = 2048
MAX_PATTERNS = 4096  # quantization exclude lists
LIMITS = {
    "layers": (1, MAX_LAYERS),
    "heads": (1, 65536),
    "hidden": (1, 1 << 20),
    "head_dim": (1, 65536),
    "intermediate": (0, 1 << 24),
    "vocab": (0, 1 << 27),
    "rank": (0, 1 << 20),
    "length": (1, 1 << 40),
    "experts": (1, 1 << 17),
    "count": (0, 1 << 17),
}


def _int(cfg: dict, *keys: str, default=None, limit: str = "count"):
    """The first of `keys` set in cfg, as an integer within LIMITS[limit]; default when none is set.

    A value of the wrong type (a string, 1e30, NaN, a list) or out of range raises ModelError naming the key:
    a config that says 1e30 layers is refused, never silently dropped or looped over."""
    lo, hi = LIMITS[limit]
    for k in keys:
        v = cfg.get(k)
        if v is None or v is False:
            continue
        if isinstance(v, float) and v.is_integer() and lo <= v <= hi:
            v = int(v)  # 32.0 is a whole number a JSON writer may emit
        if not isinstance(v, int) or isinstance(v, bool):
            raise ModelError(f"config.json: {k} is {_show(v)}, expected a whole number from {lo} to {hi:,}")
        if not lo <= v <= hi:
            raise ModelError(f"config.json: {k} is {_show(v)}, out of range ({lo} to {hi:,})")
        return v
    return default


def _show(v) -> str:
    """A config value for a message, cut short (a 10,000-digit integer is not repeated back)."""
    text = json.dumps(v) if not isinstance(v, int) or abs(v) < 10**30 else f"an integer of {len(str(abs(v)))} digits"
    return text if len(text) <= 40 else text[:39] + "…"


def facts_from_config(cfg: dict, name: str = "model", hf_quant_config: dict | None = None) -> ModelFacts:
    """Give ModelFacts from a parsed config.json (and ModelOpt hf_quant_config.json if any)."""
    top = cfg
    cfg = _text_config(cfg)
    layers = _int(cfg, "num_hidden_layers", "n_layer", "num_layers", limit="layers")
    heads = _int(cfg, "num_attention_heads", "n_head", limit="heads")
    hidden = _int(cfg, "hidden_size", "d_model", "n_embd", limit="hidden")
    if not layers or not heads or not hidden:  # absent (0 is refused by the range above)
        missing = [
            k
            for k, v in (("num_hidden_layers", layers), ("num_attention_heads", heads), ("hidden_size", hidden))
            if not v
        ]
        raise ModelError(f"config.json of {name} lacks {', '.join(missing)}; cannot size the KV cache")
    kv_heads = _int(cfg, "num_key_value_heads", "multi_query_group_num", default=heads, limit="heads")
    if kv_heads > heads:
        raise ModelError(f"config.json: {kv_heads} KV heads is more than its {heads} attention heads")
    head_dim = _int(cfg, "head_dim", limit="head_dim") or max(1, hidden // heads)
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or top.get("torch_dtype") or "bfloat16")
    dtype = dtype.replace("torch.", "")
    layer_types = cfg.get("layer_types") if isinstance(cfg.get("layer_types"), list) else None
    sw = _int(cfg, "sliding_window", limit="length")
    if layer_types is None and sw and cfg.get("use_sliding_window") is False:
        sw = None  # Qwen2 configs carry a window they do not use
    moe = {}
    n_exp = _int(cfg, "n_routed_experts", "num_experts", "num_local_experts", limit="experts")
    if n_exp:
        moe = {
            "experts": n_exp,
            "shared_experts": _int(cfg, "n_shared_experts", "num_shared_experts", default=0),
            "moe_intermediate_size": _int(
                cfg,
                "moe_intermediate_size",
                "expert_intermediate_size",
                default=_int(cfg, "intermediate_size", default=0, limit="intermediate"),
                limit="intermediate",
            ),
            "first_dense_layers": _int(cfg, "first_k_dense_replace", default=0),
            "experts_per_token": _int(cfg, "num_experts_per_tok", "moe_topk", default=8, limit="experts"),
        }
    return ModelFacts(
        name=name,
        architectures=list(top.get("architectures") or cfg.get("architectures") or []),
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        intermediate_size=_int(cfg, "intermediate_size", "ffn_dim", default=4 * hidden, limit="intermediate"),
        vocab_size=_int(cfg, "vocab_size", "padded_vocab_size", default=0, limit="vocab"),
        dtype=dtype,
        dtype_bytes=DTYPE_BYTES.get(dtype, 2),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", top.get("tie_word_embeddings", False))),
        kv_lora_rank=_int(cfg, "kv_lora_rank", limit="rank"),
        qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", limit="rank"),
        sliding_window=sw,
        layer_types=layer_types,
        moe=moe,
        max_position_embeddings=_int(cfg, "max_position_embeddings", "seq_length", limit="length"),
        quant=_quant(cfg if cfg.get("quantization_config") else top, hf_quant_config),
    )


def _quant(config: dict, hf_quant_config: dict | None) -> QuantInfo:
    """parse_quant, its figures checked: bits a number in (0, 32], group size a whole number, bounded lists."""
    try:
        q = parse_quant(config, hf_quant_config)
    except (TypeError, AttributeError, ValueError) as exc:
        raise ModelError(f"quantization config not understood: {exc}") from None
    bits = q.weight_bits
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, (int, float)) or not 0 < bits <= 32):
        raise ModelError(f"quantization config: bits is {_show(bits)}, expected a number from 1 to 32")
    g = q.group_size
    if g is not None and (isinstance(g, bool) or not isinstance(g, int) or not -1 <= g <= 1 << 20):
        raise ModelError(f"quantization config: group_size is {_show(g)}, expected a whole number (-1 per channel)")
    if not isinstance(q.excluded, list) or len(q.excluded) > MAX_PATTERNS:
        raise ModelError(f"quantization config: more than {MAX_PATTERNS} excluded module patterns")
    q.excluded = [str(p) for p in q.excluded]
    return q


def _excluded(module: str, patterns: list[str]) -> bool:
    """Whether a module matches an exclude pattern: a glob (`*`) matching it whole, or a plain name inside it."""
    plain, globs = _compiled(tuple(patterns))
    return any(p in module for p in plain) or bool(globs and globs.match(module))


@lru_cache(maxsize=8)
def _compiled(patterns: tuple) -> tuple:
    """(plain names, one compiled regex of every glob or None): compiled once per exclude list, not per layer."""
    plain = [p for p in patterns if "*" not in p]
    globs = [re.escape(p).replace(r"\*", ".*") for p in patterns if "*" in p]
    return plain, (re.compile("^(?:" + "|".join(globs) + ")$") if globs else None)


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
        if isinstance(size, (int, float)) and not isinstance(size, bool) and 0 < size < 1 << 52:
            facts.weights_bytes = int(size)
            facts.weights_source = "index-total-size"
            return facts
    facts.weights_bytes = estimate_weight_bytes(facts)
    facts.weights_source = "config-estimate"
    return facts
