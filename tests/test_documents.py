"""Every command returns ONE document: its JSON validates against the shipped schema it names, and `-o FILE`
writes exactly what stdout shows, for every command and every format the command offers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import H100_ROOT, validate_document

from bwdoctor import schemas
from bwdoctor.render import KIND_FORMATS

HERE = Path(__file__).parent
CUDA = HERE / "fixtures" / "cuda"
CAP = HERE / "fixtures" / "capacity"


def run_cli(*argv):
    """The CLI in this process (parse → view → render → write), as a subprocess result would read."""
    import contextlib
    import io
    import subprocess

    from bwdoctor.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["--no-plugins", *argv])
    return subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _plain(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="module")
def facts_json(tmp_path_factory):
    """Facts of the captured H100 host, so that check/fleet replay the same machine deterministically."""
    path = tmp_path_factory.mktemp("facts") / "h100.json"
    res = run_cli("facts", "--root", str(H100_ROOT), "--format", "json", "-o", str(path))
    assert res.returncode == 0, res.stderr
    return path


def commands(facts):
    """(label, kind, argv) for every command, on real fixtures."""
    return [
        ("check", "report", ["check", "--facts", str(facts), "--target", "sm_120"]),
        ("prebuild", "report", ["prebuild", "--facts", str(facts), "--target", "sm_120"]),
        ("facts", "facts", ["facts", "kernel_release", "nvidia_driver", "kernel_modules", "--root", str(H100_ROOT)]),
        ("list-checks", "list", ["list", "checks"]),
        ("list-probes", "list", ["list", "probes"]),
        ("list-kb", "list", ["list", "kb"]),
        ("explain-topic", "explain", ["explain", "open-kernel-module", "--no-machine"]),
        (
            "explain-text",
            "explain",
            ["explain", "--no-machine", "RuntimeError: CUDA error: no kernel image is available for execution"],
        ),
        ("explain-log", "explain", ["explain", "--no-machine", "--log", str(CAP / "logs" / "seed002-glm47-nvfp4.log")]),
        ("cubins", "cubins", ["cubins", str(CUDA / "sm120.so"), str(CUDA / "rdc80.so"), "--target", "sm_120"]),
        ("kernels", "kernels", ["kernels", str(CUDA / "units_80_120.so"), "--target", "sm_120", "--names"]),
        ("verify-build", "verify-build", ["verify-build", str(CUDA / "sm120.so"), "--target", "sm_120"]),
        ("symbols", "symbols", ["symbols", str(CUDA / "sm120.so")]),
        ("plan", "plan", ["plan", "--model", str(CAP / "qwen3-14b"), "--gpu-memory", "80"]),
        ("fleet", "fleet", ["fleet", "--facts", str(facts), str(facts)]),
    ]


LABELS = [c[0] for c in commands(Path("x"))]
TIMING = re.compile(
    r'("probes": \{[^}]*\})|(\d+\.\d+ s of probes)|(\(\d+ ms\))'
    r"|((?<=\nbwdoctor_last_run_timestamp_seconds )[\d.e+]+)|((?<=\nbwdoctor_probe_duration_seconds\{)[^\n]*)"
)


def _stable(text: str) -> str:
    """The output with probe timings (and the Prometheus run time) masked: they differ between two runs, nothing
    else may."""
    return TIMING.sub("<timing>", text)


@pytest.mark.parametrize("label", LABELS)
def test_json_validates_against_its_schema(label, facts_json):
    _, kind, argv = next(c for c in commands(facts_json) if c[0] == label)
    res = run_cli(*argv, "--format", "json")
    assert res.returncode in (0, 1, 3), res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == f"bwdoctor.{kind}/1"
    validate_document(doc)


def test_every_kind_has_a_schema_and_every_schema_a_kind():
    assert set(KIND_FORMATS) == set(schemas.KINDS)
    for kind in schemas.KINDS:
        assert schemas.load(kind)["$id"].endswith(f"/{kind}.schema.json")


@pytest.mark.parametrize("label", LABELS)
def test_output_file_equals_stdout_in_every_format(label, facts_json, tmp_path):
    _, kind, argv = next(c for c in commands(facts_json) if c[0] == label)
    for fmt in KIND_FORMATS[kind]:
        shown = run_cli(*argv, "--format", fmt)
        out = tmp_path / f"out.{fmt}"
        written = run_cli(*argv, "--format", fmt, "-o", str(out))
        assert written.returncode == shown.returncode, (fmt, written.stderr)
        assert written.stdout == ""
        assert shown.stdout or fmt == "github", fmt  # no annotation when nothing failed
        assert _stable(out.read_text(encoding="utf-8")) == _stable(shown.stdout), fmt


def test_a_format_a_document_lacks_is_a_usage_error():
    res = run_cli("cubins", str(CUDA / "sm120.so"), "--format", "sarif")
    assert res.returncode == 2 and "invalid choice: 'sarif'" in res.stderr


def test_rich_is_the_text_format_everywhere():
    a = run_cli("list", "kb", "--format", "rich")
    b = run_cli("list", "kb", "--format", "text")
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


def test_explain_log_output_file_keeps_the_startup_figures(tmp_path):
    """-o holds the whole document: before, each write replaced the last and the start-up figures were lost."""
    out = tmp_path / "explain.txt"
    log = CAP / "logs" / "seed002-glm47-nvfp4.log"
    shown = run_cli("explain", "--no-machine", "--log", str(log))
    run_cli("explain", "--no-machine", "--log", str(log), "-o", str(out))
    text = out.read_text(encoding="utf-8")
    assert "vLLM start-up figures from the log" in text and "KV cache tokens" in text
    assert text == shown.stdout


def test_explain_without_a_match_is_a_valid_document_and_exit_3():
    res = run_cli("explain", "--no-machine", "--format", "json", "everything is fine\nINFO started server")
    doc = json.loads(res.stdout)
    assert res.returncode == 3 and doc["matches"] == [] and doc["article"] is None
    validate_document(doc)
