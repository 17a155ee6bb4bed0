"""Model facts from config.json, quantization configs and safetensors headers (no weights loaded)."""

import json
import struct
from pathlib import Path

import pytest

from bwdoctor.capacity.budget import kv_bytes_per_token
from bwdoctor.capacity.model import ModelError, facts_from_config, load_model
from bwdoctor.capacity.quant import parse_quant
from bwdoctor.capacity.safetensors_header import HeaderError, file_tensor_bytes, read_header

FIX = Path(__file__).parent / "fixtures" / "capacity"


def write_safetensors(path: Path, tensors: dict) -> int:
    """Write a real safetensors file (8-byte LE length + JSON header + zero data); give data bytes."""
    sizes = {"BF16": 2, "F16": 2, "F32": 4, "I32": 4, "U8": 1, "F8_E4M3": 1}
    header, off = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * off)
    return off


def test_header_bytes_exact(tmp_path):
    p = tmp_path / "model.safetensors"
    n = write_safetensors(p, {"a": ("BF16", [3, 5]), "b": ("I32", [7]), "c": ("U8", [2, 2, 2])})
    total, per = file_tensor_bytes(p)
    assert total == n == 3 * 5 * 2 + 7 * 4 + 8
    assert per["b"] == 28


def test_model_dir_sums_all_shards(tmp_path):
    (tmp_path / "config.json").write_text((FIX / "llama-3.1-8b-instruct" / "config.json").read_text())
    a = write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {"x": ("BF16", [64, 64])})
    b = write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"y": ("F32", [10, 3])})
    m = load_model(tmp_path)
    assert m.weights_bytes == a + b
    assert m.weights_source.startswith("safetensors-headers")


@pytest.mark.parametrize(
    "blob,needle",
    [
        (b"\x01\x02", "shorter than the 8-byte"),
        (struct.pack("<Q", 10**15) + b"{}", "not plausible"),
        (struct.pack("<Q", 100) + b'{"a": 1', "truncated header"),
        (struct.pack("<Q", 5) + b"nope!", "not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
)
def test_bad_headers_give_clear_errors(tmp_path, blob, needle):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(blob)
    with pytest.raises(HeaderError, match=needle):
        read_header(p)


def test_truncated_data_is_detected(tmp_path):
    p = tmp_path / "t.safetensors"
    write_safetensors(p, {"x": ("F32", [1000])})
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(HeaderError, match="truncated"):
        file_tensor_bytes(p)


def test_bad_shard_in_model_dir_is_model_error(tmp_path):
    (tmp_path / "config.json").write_text((FIX / "qwen3-14b" / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"garbage-not-safetensors")
    with pytest.raises(ModelError, match="not plausible|not valid JSON|truncated"):
        load_model(tmp_path)


def test_garbage_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(tmp_path)


def test_missing_dir_and_missing_fields(tmp_path):
    with pytest.raises(ModelError, match="not a directory"):
        load_model(tmp_path / "nope")
    with pytest.raises(ModelError, match="num_hidden_layers"):
        facts_from_config({"hidden_size": 8})


def test_index_total_size_used_without_shards(tmp_path):
    (tmp_path / "config.json").write_text((FIX / "qwen3-14b" / "config.json").read_text())
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 29536614400}}))
    m = load_model(tmp_path)
    assert m.weights_bytes == 29536614400 and m.weights_source == "index-total-size"


def test_multimodal_text_config_is_used():
    cfg = {
        "architectures": ["X"],
        "torch_dtype": "bfloat16",
        "vision_config": {"hidden_size": 1152},
        "text_config": json.loads((FIX / "qwen3-14b" / "config.json").read_text()),
    }
    m = facts_from_config(cfg)
    assert (m.num_layers, m.num_kv_heads, m.head_dim) == (40, 8, 128)


def test_head_dim_falls_back_to_hidden_over_heads():
    m = facts_from_config(json.loads((FIX / "llama-3.1-8b-instruct" / "config.json").read_text()))
    assert m.head_dim == 128
    # Llama-3.1-8B: 2 × 32 layers × 8 heads × 128 × 2 B = 128 KiB per token
    assert kv_bytes_per_token(m, 1, 1, 2) == 131072


def test_mla_kv_bytes_one_latent_no_tp_split():
    # DeepSeek-V3/R1 attention fields (huggingface.co/deepseek-ai/DeepSeek-R1 config.json)
    cfg = {
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "hidden_size": 7168,
        "kv_lora_rank": 512,
        "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
        "vocab_size": 129280,
        "torch_dtype": "bfloat16",
    }
    m = facts_from_config(cfg)
    assert m.is_mla
    assert kv_bytes_per_token(m, 1, 1, 2) == 61 * 576 * 2
    assert kv_bytes_per_token(m, 8, 1, 2) == 61 * 576 * 2


def test_kv_heads_replicate_when_tp_exceeds_them():
    m = facts_from_config(json.loads((FIX / "qwen3-14b" / "config.json").read_text()))
    assert kv_bytes_per_token(m, 16, 1, 2) == kv_bytes_per_token(m, 8, 1, 2)
    assert kv_bytes_per_token(m, 2, 1, 2) * 2 == kv_bytes_per_token(m, 1, 1, 2)


def test_sliding_layer_types_counted():
    cfg = {
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "hidden_size": 512,
        "vocab_size": 10,
        "sliding_window": 128,
        "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
    }
    m = facts_from_config(cfg)
    assert m.attention_layer_kinds() == {"full": 1, "sliding": 3}


def test_quant_configs():
    awq = parse_quant(json.loads((FIX / "qwen2.5-72b-instruct-awq" / "config.json").read_text()))
    assert (awq.method, awq.weight_bits, awq.group_size) == ("awq", 4, 128)
    # ModelOpt hf_quant_config.json layout (as in vLLM's modelopt docstring / NVIDIA exports)
    mo = parse_quant(
        {},
        {
            "producer": {"name": "modelopt", "version": "0.19.0"},
            "quantization": {
                "quant_algo": "NVFP4",
                "kv_cache_quant_algo": "FP8",
                "group_size": 16,
                "exclude_modules": ["lm_head"],
            },
        },
    )
    assert (mo.method, mo.kv_cache_dtype, mo.kv_auto_resolves) == ("modelopt_fp4", "fp8", True)
    assert mo.bytes_per_weight() == pytest.approx(0.5625)
    ct = parse_quant(
        {
            "quantization_config": {
                "quant_method": "compressed-tensors",
                "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}},
                "kv_cache_scheme": {"num_bits": 8, "type": "float", "dynamic": False},
            }
        }
    )
    assert (ct.weight_bits, ct.kv_cache_dtype, ct.kv_auto_resolves) == (8, "fp8", False)
    assert parse_quant({"quantization_config": {"quant_method": "fp8"}}).weight_bits == 8
