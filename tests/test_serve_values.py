"""Serve flag values vLLM refuses (BW613) and the --tp look-alike, on a real systemd unit (seed000) edited."""

from __future__ import annotations

from pathlib import Path

import pytest

from bwdoctor.serve.lint import Machine, lint
from bwdoctor.serve.readers import read_config
from bwdoctor.serve.releases import release_for

UNIT = Path(__file__).parent / "fixtures/serve/seed000/vllm.service.workaround"


def lints_of(text: str, tmp_path: Path, version: str = "0.15.1") -> list:
    path = tmp_path / "vllm.service"
    path.write_text(text)
    out = []
    for cfg in read_config(str(path), path.read_bytes(), read=lambda p: Path(p).read_bytes()):
        out += lint(cfg, release_for(version), Machine(("sm_120",), 8))
    return out


def edited(**subs: str) -> str:
    text = UNIT.read_text()
    for old, new in subs.items():
        assert old.replace("_", "-") in text or old in text
        text = text.replace(old.replace("_", "-"), new)
    return text


def test_the_unit_as_written_has_no_bad_value(tmp_path):
    assert [x for x in lints_of(UNIT.read_text(), tmp_path) if x.rule == "bad-flag-value"] == []


@pytest.mark.parametrize(
    "old, new, says",
    [
        ("--dtype float16", "--dtype bfloat17", "did you mean bfloat16"),
        ("--gpu-memory-utilization 0.85", "--gpu-memory-utilization 1.5", "(0, 1]"),
        ("--gpu-memory-utilization 0.85", "--gpu-memory-utilization=85", "(0, 1]"),
        ("--gpu-memory-utilization 0.85", "--gpu-memory-utilization nan", "(0, 1]"),
        ("--max-num-seqs 256", "--max-num-seqs 256 --tensor-parallel-size 0", "at least 1"),
        ("--max-num-seqs 256", "--max-num-seqs 256 -tp two", "at least 1"),
        ("--max-model-len 32768", "--max-model-len -5", "number of tokens"),
        ("--max-model-len 32768", "--max-model-len 32q", "number of tokens"),
        ("--max-num-seqs 256", "--max-num-seqs 256 --kv-cache-dtype fp9", "fp8_e4m3"),
    ],
)
def test_bad_values_are_errors_at_their_token(old, new, says, tmp_path):
    text = UNIT.read_text().replace(old, new)
    bad = [x for x in lints_of(text, tmp_path) if x.rule == "bad-flag-value"]
    assert len(bad) == 1 and says in bad[0].message and bad[0].severity == "error", [b.message for b in bad]
    line = next(i for i, t in enumerate(text.splitlines(), 1) if new in t)
    assert bad[0].line == line and bad[0].slug == "bad-serve-flag-value"


@pytest.mark.parametrize("value", ["32768", "32k", "128K", "-1", "auto"])
def test_max_model_len_spellings_vllm_takes(value, tmp_path):
    text = UNIT.read_text().replace("--max-model-len 32768", f"--max-model-len {value}")
    assert [x.message for x in lints_of(text, tmp_path) if x.rule == "bad-flag-value"] == []


def test_tp_look_alike_suggests_the_alias(tmp_path):
    text = UNIT.read_text().replace("--max-num-seqs 256", "--max-num-seqs 256 --tp 2")
    (unknown,) = [x for x in lints_of(text, tmp_path) if x.rule == "unknown-flag"]
    assert "did you mean -tp (--tensor-parallel-size)?" in unknown.message and "--dtype" not in unknown.message


def test_bw613_reports_through_the_check(tmp_path, cli):
    import json

    path = tmp_path / "vllm.service"
    path.write_text(UNIT.read_text().replace("--dtype float16", "--dtype bfloat17"))
    res = cli("check", "--config", str(path), "--vllm-version", "0.15.1", "--select", "BW613", "--format", "json")
    (f,) = json.loads(res.stdout)["findings"]
    assert res.returncode == 1 and f["id"] == "BW613" and f["status"] == "fail" and f["kb"] == "bad-serve-flag-value"
    assert f["location"]["line"] == 12 and "bfloat17" in f["message"]
