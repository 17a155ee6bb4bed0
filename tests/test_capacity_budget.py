"""Acceptance: predictions against real vLLM startup figures (tests/fixtures/capacity/logs.json)."""

import json
from pathlib import Path

import pytest

from bwdoctor.capacity.budget import PlanInput, kv_tokens
from bwdoctor.capacity.logparse import compare, parse_startup_log
from bwdoctor.capacity.model import load_model
from bwdoctor.capacity.planner import plan

FIX = Path(__file__).parent / "fixtures" / "capacity"
LOGS = json.loads((FIX / "logs.json").read_text())


def run_case(name, **over):
    c = LOGS[name]
    m = load_model(FIX / c["model"])
    args = dict(
        gpu_memory_gib=c.get("gpu_memory_gib", 80.0),
        gpu_count=c.get("gpu_count", c.get("tp", 1)),
        tp=c.get("tp", 1),
        utilization=c.get("utilization", 0.9),
        max_model_len=c.get("max_model_len"),
        max_num_seqs=c.get("max_num_seqs"),
        max_num_batched_tokens=c.get("max_num_batched_tokens"),
        vllm_version=c.get("vllm_version", "0.15.1"),
    )
    args.update(over)
    return plan(m, PlanInput(**args)), c["logged"]


def test_seed000_from_logged_weights_within_half_percent():
    r, real = run_case("seed000-qwen72b-awq", weights_gib=38.77)
    assert r["kv_tokens"] == pytest.approx(real["kv_tokens"], rel=0.005)
    assert r["kv_bytes_per_token"] == 327680
    assert r["fits"] and r["findings"] == []


def test_seed000_from_config_and_quantization_alone_within_3_percent():
    r, real = run_case("seed000-qwen72b-awq")
    assert r["weights_source"] == "config-estimate"
    assert r["weights_gib_per_gpu"] == pytest.approx(real["weights_gib"], rel=0.02)
    assert r["kv_tokens"] == pytest.approx(real["kv_tokens"], rel=0.03)
    assert r["max_concurrency"] == pytest.approx(real["kv_tokens"] / 32768, rel=0.03)


def test_seed002_glm47_tokens_from_logged_kv_memory_need_fp8():
    r, real = run_case(
        "seed002-glm47-nvfp4", weights_gib=47.11, kv_cache_gib=real_kv("seed002-glm47-nvfp4"), kv_cache_dtype="fp8"
    )
    assert r["kv_bytes_per_token"] == 47104  # 2 × 92 layers × (8/4) heads × 128 × 1 B
    assert r["kv_tokens"] == pytest.approx(real["kv_tokens"], rel=0.01)
    # with a 16-bit cache the same memory holds half: the log's figure proves an FP8 KV cache
    r16, _ = run_case("seed002-glm47-nvfp4", weights_gib=47.11, kv_cache_gib=real_kv("seed002-glm47-nvfp4"))
    assert r16["kv_tokens"] * 2 == pytest.approx(real["kv_tokens"], rel=0.01)
    log = parse_startup_log((FIX / "logs" / "seed002-glm47-nvfp4.log").read_text())
    notes = compare(log, r16)["notes"]
    assert any("FP8" in n for n in notes)
    assert any("exceed utilization × total" in n for n in notes)


def test_modelopt_kv_fp8_resolves_auto_from_014(tmp_path):
    (tmp_path / "config.json").write_text((FIX / "glm-4.7-nvfp4" / "config.json").read_text())
    (tmp_path / "hf_quant_config.json").write_text(
        json.dumps(
            {
                "producer": {"name": "modelopt"},
                "quantization": {
                    "quant_algo": "NVFP4",
                    "kv_cache_quant_algo": "FP8",
                    "group_size": 16,
                    "exclude_modules": ["lm_head"],
                },
            }
        )
    )
    m = load_model(tmp_path)
    p = dict(gpu_memory_gib=94.97, gpu_count=4, tp=4, utilization=0.8, weights_gib=47.11, kv_cache_gib=31.99)
    assert plan(m, PlanInput(**p, vllm_version="0.15.1"))["kv_bytes_per_token"] == 47104
    assert plan(m, PlanInput(**p, vllm_version="0.13.0"))["kv_bytes_per_token"] == 94208


def real_kv(name):
    return LOGS[name]["logged"]["kv_cache_gib"]


def test_seed001_bf16_32b_does_not_fit_two_5090s_awq_does():
    base = FIX / "deepseek-r1-distill-qwen-32b"
    p = PlanInput(gpu_memory_gib=31.84, gpu_count=2, tp=2, utilization=0.9, max_model_len=32768)
    r = plan(load_model(base), p)
    assert not r["fits"]
    slugs = [f["slug"] for f in r["findings"]]
    assert slugs[0] == "weights-do-not-fit"
    assert any(f["slug"] == "suggestion" and "AWQ" in f["message"] for f in r["findings"])
    awq = plan(load_model(FIX / "deepseek-r1-distill-qwen-32b-awq"), p)
    assert awq["fits"]
    assert 8.5 < awq["weights_gib_per_gpu"] < 10.5  # the report: "~10GB weights/GPU"
    assert awq["kv_bytes_per_token"] == 2 * 64 * 4 * 128 * 2
    assert awq["kv_tokens"] > 32768 and awq["kv_tokens"] % 16 == 0


def test_lmcache1739_qwen3_14b_tokens_and_concurrency():
    r, real = run_case("lmcache1739-qwen3-14b", kv_cache_gib=real_kv("lmcache1739-qwen3-14b"))
    assert r["kv_tokens"] == pytest.approx(real["kv_tokens"], rel=0.001)
    assert r["max_concurrency"] == pytest.approx(real["max_concurrency"], abs=0.01)


@pytest.mark.parametrize("name", ["vllm10517-llama8b-20k", "vllm10517-llama8b-29k"])
def test_vllm10517_llama8b_v0_budget(name):
    r, real = run_case(name, weights_gib=14.9888)
    # activation peak modelled from the architecture vs the logged torch peak increase
    assert r["overhead_gib"]["activation_peak_gib"] == pytest.approx(real["activation_peak_gib"], rel=0.08)
    assert r["kv_tokens"] == pytest.approx(real["kv_tokens"], rel=0.05)
    r2, _ = run_case(name, weights_gib=14.9888, kv_cache_gib=real["kv_cache_gib"])
    assert r2["kv_tokens"] == pytest.approx(real["kv_tokens"], rel=0.002)


def test_vllm10517_29k_is_refused_like_vllm_did():
    r, real = run_case("vllm10517-llama8b-29k", weights_gib=14.9888)
    assert not r["fits"]
    f = [f for f in r["findings"] if f["slug"] == "kv-cache-too-small"]
    assert f and f[0]["severity"] == "error"
    sugg = [f for f in r["findings"] if f["slug"] == "suggestion"]
    assert any("--kv-cache-dtype" in f["evidence"]["flags"] for f in sugg)
    assert any(
        "--max-model-len" in f["evidence"]["flags"] and f["evidence"]["flags"]["--max-model-len"] <= real["kv_tokens"]
        for f in sugg
    )


def test_sampler_warmup_risk_seed002_at_090_not_080():
    hot, _ = run_case("seed002-glm47-nvfp4", weights_gib=47.11, utilization=0.90, max_num_seqs=1024)
    cool, _ = run_case("seed002-glm47-nvfp4", weights_gib=47.11, utilization=0.80, max_num_seqs=1024)
    assert any(f["slug"] == "sampler-warmup-oom" for f in hot["findings"])
    assert not any(f["slug"] == "sampler-warmup-oom" for f in cool["findings"])


def test_kv_tokens_rounds_to_blocks():
    assert kv_tokens(16 * 100 * 10 + 5, 100) == 160
    assert kv_tokens(-1, 100) == 0
