"""Startup-log figures (real vLLM lines) and their comparison with a plan."""

from pathlib import Path

from bwdoctor.capacity.logparse import compare, parse_startup_log

LOGS = Path(__file__).parent / "fixtures" / "capacity" / "logs"


def test_v1_log_figures():
    f = parse_startup_log((LOGS / "seed002-glm47-nvfp4.log").read_text())
    assert f["weights_gib"] == 47.11 and f["kv_cache_gib"] == 31.99 and f["kv_tokens"] == 729248
    assert f["utilization"] == 0.8 and f["tensor_parallel_size"] == 4 and f["vllm_version"] == "0.15.1"
    assert f["gpu_total_gib"] == 94.97


def test_concurrency_line():
    f = parse_startup_log((LOGS / "lmcache1739-qwen3-14b.log").read_text())
    assert (f["kv_tokens"], f["max_model_len"], f["max_concurrency"]) == (42656, 32768, 1.30)


def test_v0_log_blocks_to_tokens_and_refusal():
    f = parse_startup_log((LOGS / "vllm10517-llama8b-29k.log").read_text())
    assert f["gpu_blocks"] == 1478 and f["kv_tokens"] == 1478 * 16
    assert f["estimated_max_model_len"] == 23648 and f["max_model_len_required"] == 29000


def test_garbage_log_gives_empty_figures():
    assert parse_startup_log("\x00\x01 nothing here GiB tokens") == {}
    assert parse_startup_log("") == {}


def test_compare_rows_and_errors():
    figs = {
        "weights_gib": 38.77,
        "kv_cache_gib": 39.31,
        "kv_tokens": 128816,
        "utilization": 0.85,
        "gpu_total_gib": 95.59,
    }
    c = compare(
        figs, {"weights_gib_per_gpu": 38.77, "kv_cache_gib": 39.306, "kv_tokens": 128784, "max_concurrency": 3.93}
    )
    assert c["schema"] == "bwdoctor.plan-compare/1"
    assert c["figures"]["kv_tokens"]["rel_error"] == round((128784 - 128816) / 128816, 4)
    assert c["figures"]["max_concurrency"]["logged"] is None
    assert any("overhead implied by the log: 3.17" in n for n in c["notes"])
