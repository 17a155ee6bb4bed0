"""Strict output: JSON without NaN/Infinity, JUnit that is XML 1.0, and no control character from an inspected
machine (ESC, NUL, BEL, CR, DEL, C1 such as CSI 0x9b, undecodable bytes) in any format or on stderr."""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import H100_ROOT
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bwdoctor.cli import main
from bwdoctor.model import Finding, Location, Outcome, Report
from bwdoctor.render import FINDING_FORMATS, KIND_FORMATS, RenderOptions, render
from bwdoctor.render.safe import clean_text, dump_json, strip_controls

# what must never reach a terminal, a Markdown/GitHub annotation or an XML 1.0 document
BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
HOSTILE = "ESC\x1b[2J\x1b]0;pwned\x07 NUL\x00 BEL\x07 CR\r DEL\x7f CSI\x9b31m NEL\x85 FFFE\ufffe BYTE\udcff end"


def _no_constants(name: str):
    raise AssertionError(f"{name} in JSON output")


def strict_json(text: str):
    return json.loads(text, parse_constant=_no_constants)


def assert_clean_output(fmt: str, text: str) -> None:
    assert not BAD.search(text), (fmt, BAD.search(text), text[max(0, BAD.search(text).start() - 80) :][:160])
    if fmt == "json" and text.strip():
        strict_json(text)
    if fmt == "sarif":
        strict_json(text)
    if fmt == "junit":
        ET.fromstring(text.encode("utf-8"))
    if fmt == "prometheus":
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        assert list(text_string_to_metric_families(text))


def test_strip_controls_makes_each_one_visible():
    out = strip_controls(HOSTILE)
    assert not BAD.search(out)
    for shown in ("\\x1b[2J", "\\x00", "\\x07", "\\x0d", "\\x7f", "\\x9b31m", "\\x85", "\\ufffe", "BYTE\\xff"):
        assert shown in out, shown
    assert strip_controls("tab\tand\nnewline stay, ü and ✓ too") == "tab\tand\nnewline stay, ü and ✓ too"
    assert clean_text("HF_TOKEN=abcdef\x1b[0m") == "HF_TOKEN=***"


def test_dump_json_turns_non_finite_numbers_into_null():
    doc = {"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": {"d": float("nan")}, "e": (1, 2)}
    out = strict_json(dump_json(doc))
    assert out == {"a": None, "b": [None, None, 1.5], "c": {"d": None}, "e": [1, 2]}


def _hostile_report() -> Report:
    findings = [
        Finding(
            "BW101",
            "driver-too-old",
            "driver",
            "fail",
            "error",
            f"driver {HOSTILE} is too old",
            "driver-too-old",
            evidence={"ratio": float("nan"), "limit": float("inf"), "fix": f"upgrade {HOSTILE}"},
            location=Location(f"/etc/vllm{HOSTILE}.service", 3, 1),
        ),
        Finding("BW102", "x", "driver", "pass", "warning", f"fine {HOSTILE}", "driver-too-old"),
        Finding("BW103", "y", "driver", "skip", "warning", f"skipped {HOSTILE}", "driver-too-old"),
        Finding("BW104", "z", "driver", "error", "error", f"crashed {HOSTILE}", "driver-too-old"),
        Finding("BW105", "w", "driver", "fail", "info", f"note {HOSTILE}", "driver-too-old"),
    ]
    facts = {"kernel_release": f"6.8{HOSTILE}", "numbers": {"nan": float("nan"), "inf": float("-inf")}}
    return Report("0.1.0", ["sm_120"], facts, findings, {"kernel_release": float("nan")}, notes=[f"note {HOSTILE}"])


@pytest.mark.parametrize("fmt", FINDING_FORMATS)
@pytest.mark.parametrize("verbose", [False, True])
def test_every_finding_format_is_strict_with_hostile_strings_and_numbers(fmt, verbose):
    report = _hostile_report()
    out = render(Outcome(report.to_json(), 1, [], report), fmt, RenderOptions(verbose=verbose))
    assert_clean_output(fmt, out)
    # shown, not swallowed (the metrics and the feature file carry no message text)
    assert "\\x1b[2J" in out or fmt == "github" and not out or fmt in ("prometheus", "nfd")


def test_document_formats_are_strict():
    doc = {
        "schema": "bwdoctor.facts/1",
        "version": "0.1.0",
        "facts": {"gpus": [{"name": f"GPU{HOSTILE}", "mem": float("nan")}], "ratio": float("inf")},
    }
    for fmt in KIND_FORMATS["facts"]:
        assert_clean_output(fmt, render(Outcome(doc), fmt))


def test_junit_stays_xml_with_every_illegal_character():
    report = _hostile_report()
    text = render(Outcome(report.to_json(), 1, [], report), "junit")
    root = ET.fromstring(text.encode("utf-8"))
    failures = [el.get("message") for el in root.iter("failure")]
    assert failures and "\\x1b[2J" in failures[0]


def hostile_tree(tmp: Path) -> Path:
    """The captured H100 host with control characters in its files and in a file name."""
    tree = tmp / "box"
    shutil.copytree(H100_ROOT, tree, symlinks=True)
    (tree / "proc" / "sys" / "kernel" / "osrelease").write_text("6.8.0\x1b]0;pwned\x07\x1b[2J\x9b\n")
    os_release = tree / "etc" / "os-release"
    os_release.write_text(os_release.read_text().replace("PRETTY_NAME=", 'PRETTY_NAME="\x1b[31mRed\x00\x07" #', 1))
    (tree / "proc" / "1").mkdir(parents=True, exist_ok=True)
    (tree / "proc" / "1" / "environ").write_bytes(b"VLLM_LOGGING_LEVEL=\x1b[2J\x07\0CUDA_VISIBLE_DEVICES=0\x9b1\0")
    units = tree / "etc" / "systemd" / "system"
    units.mkdir(parents=True, exist_ok=True)
    unit = (
        b"[Service]\nEnvironment=VLLM_ATTENTION_BACKEND=\x1b[2JFLASH\x07\n"
        b"ExecStart=/usr/bin/vllm serve m --bogus-flag\x1b[5m 1\n"
    )
    (units / "vllm-\x1b[2J.service").write_bytes(unit)
    (units / os.fsdecode(b"vllm-\xff.service")).write_bytes(unit)  # a name that is not UTF-8
    return tree


def hostile_facts(tmp: Path, tree: Path, capsys) -> Path:
    path = tmp / "facts.json"
    assert main(["facts", "--root", str(tree), "--format", "json", "-o", str(path)]) == 0
    capsys.readouterr()
    doc = json.loads(path.read_text())
    doc["facts"]["kernel_release"] = "6.8\x1b[2J\x00\x07\x9b"
    doc["facts"]["environment"]["NCCL_DEBUG"] = "INFO\x1b]0;title\x07"
    path.write_text(json.dumps(doc))
    return path


def _run_all(argv: list, kind: str, tmp: Path, capsys) -> None:
    for fmt in KIND_FORMATS[kind]:
        for to_file in (False, True):
            out = tmp / f"o.{fmt}"
            code = main([*argv, "--format", fmt, *(["-o", str(out)] if to_file else [])])
            got = capsys.readouterr()
            assert code in (0, 1, 2, 3), (argv, fmt)
            assert not BAD.search(got.err), (argv, fmt, got.err)
            text = out.read_text(encoding="utf-8") if to_file else got.out
            assert_clean_output(fmt, text)


def test_control_characters_from_a_root_tree_and_a_facts_file_reach_no_output(tmp_path, capsys):
    tree = hostile_tree(tmp_path)
    facts = hostile_facts(tmp_path, tree, capsys)
    _run_all(["check", "-v", "--root", str(tree), "--target", "sm_120"], "report", tmp_path, capsys)
    _run_all(["check", "-v", "--facts", str(facts)], "report", tmp_path, capsys)
    _run_all(["facts", "-v", "--root", str(tree)], "facts", tmp_path, capsys)
    _run_all(["fleet", "--facts", str(facts), str(facts)], "fleet", tmp_path, capsys)
    _run_all(["explain", "--no-machine", "no kernel image \x1b[2J\x07 is available\x9b"], "explain", tmp_path, capsys)
    # the tree's hostile strings were read (the test proves nothing otherwise), and are shown escaped
    main(["facts", "kernel_release", "serve_configs", "--root", str(tree), "--format", "json"])
    doc = strict_json(capsys.readouterr().out)
    assert doc["facts"]["kernel_release"].startswith("6.8.0\\x1b]0;pwned\\x07")
    paths = {c["path"] for c in doc["facts"]["serve_configs"]["configs"]}
    assert any("\\x1b[2J.service" in p for p in paths) and any("vllm-\\xff.service" in p for p in paths), paths


def test_error_messages_carry_no_control_characters(tmp_path, capsys):
    for argv in (
        ["check", "--config", str(tmp_path / "missing\x1b[2J\x07.sh")],
        ["cubins", str(tmp_path / "nothing\x1b]0;t\x07here")],
        ["explain", "--log", str(tmp_path / "log\x9b2J")],
        ["check", "--bogus\x1b[2J"],
    ):
        main(argv)
        got = capsys.readouterr()
        assert not BAD.search(got.out + got.err), (argv, got.err)


def test_non_finite_numbers_in_a_plan_document_render_in_both_formats(capsys):
    """A text view formats numbers itself: it gets nan/inf (never None in their place); JSON gets null."""
    cap = Path(__file__).parent / "fixtures" / "capacity" / "qwen3-14b"
    assert main(["plan", "--model", str(cap), "--gpu-memory", "80", "--format", "json"]) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    doc["weights_gib_per_gpu"] = float("nan")
    doc["kv_cache_gib"] = float("inf")
    doc["max_concurrency"] = float("-inf")
    text = render(Outcome(doc), "text")
    assert "nan GiB" in text and not BAD.search(text)
    out = strict_json(render(Outcome(doc), "json"))
    assert out["weights_gib_per_gpu"] is None and out["kv_cache_gib"] is None


# -- properties over random input ---------------------------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
FORMS = [
    "HF_TOKEN={}",
    "--api-key {}",
    "--hf-token={}",
    "https://user:{}@example.org/simple",
    "export VLLM_API_KEY='{}'",
    '"api_key": "{}"',
    "Environment=DB_PASS={} X=1",
]


@SETTINGS
@given(
    st.text(max_size=200),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=40),
    st.sampled_from(FORMS),
    st.text(max_size=200),
)
def test_a_secret_in_any_surrounding_text_is_masked_and_nothing_unprintable_is_left(prefix, value, form, suffix):
    secret = "Zq9" + value
    assume(secret not in prefix + suffix)
    out = clean_text(f"{prefix} {form.format(secret)} {suffix}")
    assert secret not in out
    assert not BAD.search(out)
    assert clean_text(out) == out  # idempotent: cleaning twice changes nothing


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=30,
)


@SETTINGS
@given(JSONISH)
def test_any_json_shaped_value_dumps_as_strict_printable_json(value):
    text = dump_json({"schema": "bwdoctor.facts/1", "facts": {"x": value}})
    assert not BAD.search(text)
    strict_json(text)


@SETTINGS
@given(st.text(max_size=300))
def test_any_message_gives_xml_that_parses(message):
    f = Finding("BW101", "n", "driver", "fail", "error", message, "driver-too-old")
    report = Report("0.1.0", [], {}, [f], {})
    ET.fromstring(render(Outcome(report.to_json(), 1, [], report), "junit").encode("utf-8"))


def test_bidirectional_overrides_and_line_separators_are_made_visible():
    # a file name with a right-to-left override displays its letters in another order than they are stored
    name = "/site-packages/evil\u202eos.py\u2066x\u2069\u200f\u2028end"
    out = clean_text(name)
    for shown in ("\\u202e", "\\u2066", "\\u2069", "\\u200f", "\\u2028"):
        assert shown in out, shown
    assert not any(c in out for c in "\u202e\u2066\u2069\u200f\u2028")
    assert clean_text("Arabic السلام and Hebrew שלום stay") == "Arabic السلام and Hebrew שלום stay"
