"""Hostile numbers in a model's config.json and in plan's arguments: each is refused by name with exit 2, quickly,
and never as an internal error or a loop as long as a number read from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from bwdoctor.capacity import vllmdata
from bwdoctor.capacity.model import ModelError, facts_from_config

FIX = Path(__file__).parent / "fixtures/capacity"
LLAMA = json.loads((FIX / "llama-3.1-8b-instruct" / "config.json").read_text())


def model_dir(tmp_path: Path, text: str) -> str:
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(text)
    return str(d)


def plan(*args: str, timeout: float = 30):
    # the timeout is a guard against a hang, not a speed claim: a loop over 1e30 layers never ends
    return run_cli("plan", "--gpu-memory", "80", "--gpu-count", "8", *args, timeout=timeout)


def with_(**over) -> str:
    cfg = dict(LLAMA)
    cfg.update(over)
    return json.dumps(cfg)


HOSTILE_CONFIGS = {
    "1e30 layers": ('{"num_hidden_layers": 1e30, "num_attention_heads": 32, "hidden_size": 4096}', "num_hidden_layers"),
    "31-digit layers": (with_(num_hidden_layers=10**30), "num_hidden_layers is an integer of 31 digits"),
    "NaN layers": (with_(num_hidden_layers="NaN").replace('"NaN"', "NaN"), "num_hidden_layers is NaN"),
    "Infinity hidden": (with_(hidden_size="X").replace('"X"', "Infinity"), "hidden_size is Infinity"),
    "negative layers": (with_(num_hidden_layers=-4), "num_hidden_layers is -4, out of range"),
    "zero heads": (with_(num_attention_heads=0), "num_attention_heads is 0, out of range"),
    "string heads": (with_(num_attention_heads="32"), 'num_attention_heads is "32"'),
    "list hidden": (with_(hidden_size=[4096]), "hidden_size is [4096]"),
    "bool layers": (with_(num_hidden_layers=True), "num_hidden_layers is true"),
    "fractional layers": (with_(num_hidden_layers=31.5), "num_hidden_layers is 31.5"),
    "more KV heads than heads": (with_(num_key_value_heads=64), "64 KV heads is more than its 32"),
    "huge vocab": (with_(vocab_size=10**12), "vocab_size is 1000000000000, out of range"),
    "huge experts": (with_(num_local_experts=10**9), "num_local_experts"),
    "string bits": (
        with_(quantization_config={"quant_method": "awq", "bits": "four", "group_size": 128}),
        'bits is "four"',
    ),
    "NaN bits": (
        with_(quantization_config={"quant_method": "gptq", "bits": "X", "group_size": 128}).replace('"X"', "NaN"),
        "bits is NaN",
    ),
    "1e30 group": (with_(quantization_config={"quant_method": "awq", "bits": 4, "group_size": 1e30}), "group_size"),
}


@pytest.mark.parametrize("name", HOSTILE_CONFIGS)
def test_hostile_model_config_is_exit_2_with_its_name(tmp_path, name):
    text, needle = HOSTILE_CONFIGS[name]
    res = plan("--model", model_dir(tmp_path, text))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert needle in res.stderr and "internal error" not in res.stderr and "Traceback" not in res.stderr
    assert res.stdout == ""


def test_huge_index_total_size_is_not_an_overflow(tmp_path):
    d = model_dir(tmp_path, with_())
    (Path(d) / "model.safetensors.index.json").write_text('{"metadata": {"total_size": 1e308}}')
    res = plan("--model", d)
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert "config-estimate" in res.stdout  # an impossible total is not believed


def test_many_exclude_patterns_are_refused(tmp_path):
    qc = {"quant_method": "fp8", "ignored_layers": [f"model.layers.{i}.x" for i in range(5000)]}
    res = plan("--model", model_dir(tmp_path, with_(quantization_config=qc)))
    assert res.returncode == 2 and "excluded module patterns" in res.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--tp", "0"], "--tp 0 is out of range"),
        (["--tp", "-2"], "--tp -2 is out of range"),
        (["--tp", "99999999999999999999"], "--tp 99999999999999999999 is out of range"),
        (["--pp", "0"], "--pp 0 is out of range"),
        (["--max-model-len", "-5"], "--max-model-len -5 is out of range"),
        (["--max-model-len", "0"], "--max-model-len 0 is out of range"),
        (["--max-num-seqs", "-1"], "--max-num-seqs -1 is out of range"),
        (["--max-num-batched-tokens", "-8192"], "--max-num-batched-tokens -8192 is out of range"),
        (["--max-model-len", "1" + "0" * 40], "is out of range"),
        (["--gpu-memory-utilization", "nan"], "--gpu-memory-utilization nan is out of range"),
        (["--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization 1.5 is out of range"),
        (["--gpu-memory-utilization", "0"], "--gpu-memory-utilization 0.0 is out of range"),
        (["--gpu-memory", "inf"], "--gpu-memory inf is out of range"),
        (["--gpu-memory", "-80"], "--gpu-memory -80.0 is out of range"),
        (["--gpu-count", "0"], "--gpu-count 0 is out of range"),
        (["--weights-gib", "nan"], "--weights-gib nan is out of range"),
        (["--max-model-len", "forty"], "invalid int value"),
        (["--kv-cache-dtype", "fp9"], "'fp9' is not a KV-cache dtype"),
        (["--kv-cache-dtype", "nvfp4"], "'nvfp4' is not a KV-cache dtype"),
        (["--vllm-version", "9.9.9"], "unknown vLLM release"),
        (["--vllm-version", "0.1.0"], "unknown vLLM release"),
        (["--vllm-version", "latest"], "is not a version"),
        (["--tp", "3"], "32 attention heads do not divide by 3"),
    ],
)
def test_hostile_plan_argument_is_exit_2(args, needle):
    res = plan("--model", str(FIX / "llama-3.1-8b-instruct"), *args)
    assert res.returncode == 2 and needle in res.stderr, res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr


def test_tp_must_divide_kv_heads_or_be_a_multiple_of_them(tmp_path):
    # 48 heads divide by 3 and by 16, but 8 KV heads neither divide by 3 nor divide 12 evenly
    d = model_dir(tmp_path, with_(num_attention_heads=48, num_key_value_heads=8, head_dim=128))
    res = plan("--model", d, "--tp", "3")
    assert res.returncode == 2 and "8 KV heads do not divide by 3" in res.stderr
    res = plan("--model", d, "--tp", "12")
    assert res.returncode == 2 and "8 KV heads cannot be replicated evenly over 12 ranks" in res.stderr
    res = plan("--model", d, "--tp", "16")  # 16 = 2 × 8: vLLM replicates each KV head twice
    assert res.returncode in (0, 1), res.stderr


def test_tp_rule_follows_vllm():
    vllmdata.check_tensor_parallel(8, 64, 8, mla=False)
    vllmdata.check_tensor_parallel(16, 64, 8, mla=False)
    vllmdata.check_tensor_parallel(3, 48, 48, mla=True)  # MLA: one latent per layer, no KV heads to split
    for tp, heads, kv in ((3, 32, 8), (2, 48, 3), (12, 48, 8)):
        with pytest.raises(vllmdata.PlanInputError):
            vllmdata.check_tensor_parallel(tp, heads, kv, mla=False)


def test_model_facts_refuse_hostile_numbers_in_process():
    with pytest.raises(ModelError, match="num_hidden_layers"):
        facts_from_config({"num_hidden_layers": 10**400, "num_attention_heads": 32, "hidden_size": 4096})
    with pytest.raises(ModelError, match="sliding_window"):
        facts_from_config(dict(LLAMA, sliding_window=-1))
    m = facts_from_config(dict(LLAMA, num_hidden_layers=32.0, sliding_window=None))
    assert m.num_layers == 32 and m.sliding_window is None


def test_every_release_in_the_table_is_known_and_defaults_have_sources():
    import json as _json
    from importlib import resources

    raw = _json.loads(resources.files("bwdoctor.data").joinpath("vllm_releases.json").read_text())
    for r in raw["releases"]:
        assert vllmdata.check_version(r["version"]) == r["version"]
    assert all(row.get("source") for row in vllmdata.table()["batch_defaults"])


@pytest.mark.parametrize(
    "version, gib, length, want",
    [
        ("0.6.4", 23.58, 29000, (29000, 256)),  # V0 without chunked prefill: max(max_model_len, 2048)
        ("0.6.4", 23.58, 1024, (2048, 256)),
        ("0.6.4", 80, 65536, (512, 256)),  # V0 long context: chunked prefill on, 512 tokens
        ("0.7.3", 80, 65536, (2048, 256)),
        ("0.15.1", 95.59, 32768, (8192, 1024)),  # V1 vllm serve on a >= 70 GiB GPU
        ("0.15.1", 23.58, 32768, (2048, 256)),
        ("0.28.0", 180, 32768, (16384, 1024)),  # the 160 GiB tier from 0.28.0
        ("0.27.0", 180, 32768, (8192, 1024)),
    ],
)
def test_batch_defaults_per_release(version, gib, length, want):
    tokens, seqs, source = vllmdata.batch_defaults(gib, version, length)
    assert (tokens, seqs) == want and source


def test_plan_agrees_with_the_refused_29k_log_without_batch_flags():
    """Issue 10517: vLLM 0.6.4 refused --max-model-len 29000 on a 24 GB RTX 3090 (the fixture log). Without
    --max-num-batched-tokens, plan must take the release's default (29000 tokens in one profiling prefill)."""
    logs = json.loads((FIX / "logs.json").read_text())["vllm10517-llama8b-29k"]
    args = [
        "plan",
        "--model",
        str(FIX / "llama-3.1-8b-instruct"),
        "--gpu-memory",
        str(logs["gpu_memory_gib"]),
        "--gpu-count",
        "1",
        "--gpu-memory-utilization",
        str(logs["utilization"]),
        "--max-model-len",
        str(logs["max_model_len"]),
        "--vllm-version",
        logs["vllm_version"],
        "--format",
        "json",
    ]
    res = run_cli(*args)
    doc = json.loads(res.stdout)
    assert res.returncode == 1 and doc["fits"] is False and doc["max_num_batched_tokens"] == 29000
    assert abs(doc["kv_tokens"] - logs["logged"]["kv_tokens"]) / logs["logged"]["kv_tokens"] < 0.1
    # and the 20k run of the same log, which started, still fits
    twenty = json.loads((FIX / "logs.json").read_text())["vllm10517-llama8b-20k"]
    res = run_cli(*args[:-6], "--max-model-len", str(twenty["max_model_len"]), "--vllm-version", "0.6.4")
    assert res.returncode == 0, res.stdout
