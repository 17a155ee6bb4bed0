"""`bwdoctor plan` end to end through its argparse registration."""

import json
from pathlib import Path

import pytest

from bwdoctor.cli import main
from bwdoctor.commands import COMMANDS

FIX = Path(__file__).parent / "fixtures" / "capacity"


def run(argv):
    """The plan command in this process, through the CLI's parse → view → render."""
    return main(["plan", *argv])


run_cli = run


def test_registered_in_the_cli(tmp_path):
    out = tmp_path / "p.json"
    assert (
        main(["plan", "--model", str(FIX / "qwen3-14b"), "--gpu-memory", "80", "--format", "json", "-o", str(out)]) == 0
    )
    assert json.loads(out.read_text())["schema"] == "bwdoctor.plan/1"


def test_listed():
    assert "bwdoctor.commands.plan" in COMMANDS


def test_json_contract(tmp_path, capsys):
    out = tmp_path / "plan.json"
    rc = run_cli(
        [
            "-o",
            str(out),
            "--model",
            str(FIX / "qwen2.5-72b-instruct-awq"),
            "--gpu-memory",
            "95.59",
            "--gpu-count",
            "1",
            "--gpu-memory-utilization",
            "0.85",
            "--max-model-len",
            "32768",
            "--max-num-seqs",
            "256",
            "--weights-gib",
            "38.77",
            "--format",
            "json",
        ]
    )
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["schema"] == "bwdoctor.plan/1"
    types = {
        "weights_gib_per_gpu": float,
        "kv_cache_gib": float,
        "kv_bytes_per_token": int,
        "kv_tokens": int,
        "max_concurrency": float,
        "fits": bool,
        "findings": list,
    }
    for k, t in types.items():
        assert isinstance(r[k], t), k
    assert abs(r["kv_tokens"] - 128816) / 128816 < 0.005


def test_does_not_fit_exit_1_and_rich_text(capsys):
    rc = run(
        [
            "--model",
            str(FIX / "deepseek-r1-distill-qwen-32b"),
            "--tp",
            "2",
            "--gpu-memory",
            "31.84",
            "--gpu-count",
            "2",
            "--max-model-len",
            "32768",
        ]
    )
    assert rc == 1
    text = capsys.readouterr().out
    assert "DOES NOT FIT" in text and "weights-do-not-fit" in text


def test_no_gpu_requires_gpu_memory(tmp_path, capsys):
    """A machine without GPUs (an empty --root tree): the gpus fact says why, plan asks for --gpu-memory."""
    rc = run(["--model", str(FIX / "qwen3-14b"), "--root", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--gpu-memory" in err and "no NVIDIA GPU found" in err


def test_nvml_hang_times_out(monkeypatch, capsys):
    """GPU memory comes from the gpus fact: a hung NVML is cut by its probe's budget, never hangs plan."""
    import threading
    import time

    from bwdoctor import records, registry
    from bwdoctor.probes import nvidia, nvml_query

    gate = threading.Event()
    monkeypatch.setattr(nvml_query, "isolated", lambda: gate.wait(5))
    monkeypatch.setattr(nvidia, "_no_driver_here", lambda ctx, pci: None)  # ask NVML on this driverless machine
    load = registry.load

    def short_nvml_budget(*args, **kwargs):  # the registry's spec (from its index) is what the engine runs
        reg = load(*args, **kwargs)
        reg.probes["nvml"] = records.replace(reg.probes["nvml"], budget=0.3)
        return reg

    monkeypatch.setattr(registry, "load", short_nvml_budget)
    start = time.monotonic()
    rc = run(["--model", str(FIX / "qwen3-14b")])
    gate.set()
    assert rc == 2 and time.monotonic() - start < 4
    assert "timed out after 0.3 s" in capsys.readouterr().err


def test_bad_model_dir_message(tmp_path, capsys):
    (tmp_path / "config.json").write_text("garbage{")
    assert run(["--model", str(tmp_path), "--gpu-memory", "80"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("util", ["0", "1.5"])
def test_bad_utilization(util, capsys):
    assert run(["--model", str(FIX / "qwen3-14b"), "--gpu-memory", "80", "--gpu-memory-utilization", util]) == 2


def test_plan_beside_a_real_log():
    """plan --log: the issue-10517 start-up log (RTX 3090, Llama-3.1-8B, 20k) beside the prediction."""
    import json as _json
    from pathlib import Path as _P

    from conftest import run_cli

    fx = _P(__file__).parent / "fixtures" / "capacity"
    res = run_cli(
        "plan",
        "--model",
        str(fx / "llama-3.1-8b-instruct"),
        "--gpu-memory",
        "23.58",
        "--gpu-count",
        "1",
        "--gpu-memory-utilization",
        "0.9",
        "--max-model-len",
        "20000",
        "--max-num-batched-tokens",
        "20000",
        "--vllm-version",
        "0.6.4",
        "--weights-gib",
        "14.9888",
        "--format",
        "json",
        "--log",
        str(fx / "logs" / "vllm10517-llama8b-20k.log"),
    )
    doc = _json.loads(res.stdout)
    tok = doc["log"]["figures"]["kv_tokens"]
    assert tok["logged"] == 31232 and abs(tok["rel_error"]) < 0.03


def test_explain_log_extracts_startup_figures():
    import json as _json
    from pathlib import Path as _P

    from conftest import run_cli

    log = _P(__file__).parent / "fixtures" / "capacity" / "logs" / "seed002-glm47-nvfp4.log"
    doc = _json.loads(run_cli("explain", "--log", str(log), "--format", "json").stdout)
    assert doc["startup"]["figures"]["kv_tokens"] == 729248 and doc["startup"]["figures"]["weights_gib"] == 47.11
