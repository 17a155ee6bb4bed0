"""`bwdoctor plan` end to end through its argparse registration."""
import argparse
import json
from pathlib import Path

import pytest

from bwdoctor.commands import COMMANDS
from bwdoctor.commands import plan as plan_cmd

FIX = Path(__file__).parent / "fixtures" / "capacity"


def run(argv):
    parser = argparse.ArgumentParser(prog="bwdoctor")
    parser.add_argument("-o", "--output", default=None)
    plan_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["plan", *argv])
    return args.func(args)


def run_cli(argv):
    from bwdoctor.cli import build_parser
    args = build_parser().parse_args(["plan", *argv])
    return args.func(args)


def test_registered_in_the_cli(tmp_path):
    from bwdoctor.cli import build_parser
    out = tmp_path / "p.json"
    args = build_parser().parse_args(["plan", "--model", str(FIX / "qwen3-14b"), "--gpu-memory", "80",
                                      "--format", "json", "-o", str(out)])
    assert args.func(args) == 0
    assert json.loads(out.read_text())["schema"] == "bwdoctor.plan/1"


def test_listed():
    assert "bwdoctor.commands.plan" in COMMANDS


def test_json_contract(tmp_path, capsys):
    out = tmp_path / "plan.json"
    rc = run_cli(["-o", str(out), "--model", str(FIX / "qwen2.5-72b-instruct-awq"), "--gpu-memory", "95.59", "--gpu-count", "1",
              "--gpu-memory-utilization", "0.85", "--max-model-len", "32768", "--max-num-seqs", "256",
              "--weights-gib", "38.77", "--format", "json"])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["schema"] == "bwdoctor.plan/1"
    types = {"weights_gib_per_gpu": float, "kv_cache_gib": float, "kv_bytes_per_token": int, "kv_tokens": int,
             "max_concurrency": float, "fits": bool, "findings": list}
    for k, t in types.items():
        assert isinstance(r[k], t), k
    assert abs(r["kv_tokens"] - 128816) / 128816 < 0.005


def test_does_not_fit_exit_1_and_rich_text(capsys):
    rc = run(["--model", str(FIX / "deepseek-r1-distill-qwen-32b"), "--tp", "2", "--gpu-memory", "31.84",
              "--gpu-count", "2", "--max-model-len", "32768"])
    assert rc == 1
    text = capsys.readouterr().out
    assert "DOES NOT FIT" in text and "weights-do-not-fit" in text


def test_no_nvml_requires_gpu_memory(monkeypatch, capsys):
    monkeypatch.setattr(plan_cmd, "nvml_gpus", lambda timeout=3.0: (None, "NVMLError_LibraryNotFound"))
    rc = run(["--model", str(FIX / "qwen3-14b")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--gpu-memory" in err and "NVMLError_LibraryNotFound" in err


def test_nvml_hang_times_out(monkeypatch):
    import sys
    import threading
    import types
    gate = threading.Event()
    fake = types.SimpleNamespace(nvmlInit=lambda: gate.wait(5))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    mem, why = plan_cmd.nvml_gpus(timeout=0.2)
    gate.set()
    assert mem is None and "did not answer" in why


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
    res = run_cli("plan", "--model", str(fx / "llama-3.1-8b-instruct"), "--gpu-memory", "23.58", "--gpu-count", "1",
                  "--gpu-memory-utilization", "0.9", "--max-model-len", "20000", "--max-num-batched-tokens", "20000",
                  "--vllm-version", "0.6.4", "--weights-gib", "14.9888", "--format", "json",
                  "--log", str(fx / "logs" / "vllm10517-llama8b-20k.log"))
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
