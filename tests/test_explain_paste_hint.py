"""explain says what to paste when the text holds no error to name: a Python traceback cut before its last line,
or text in which no line reads as an error. It says nothing of the kind where there is an error line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bwdoctor.explain import analyse_text
from bwdoctor.knowledge import load_all

ROOT = Path(__file__).resolve().parents[1]
ARTS = load_all()

CUT_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/opt/app/serve.py", line 10, in <module>\n'
    "    main()\n"
    '  File "/opt/app/serve.py", line 7, in main\n'
    "    engine.start()\n"
)


def test_a_traceback_cut_before_its_last_line_asks_for_that_line():
    res = analyse_text(CUT_TRACEBACK, ARTS)
    assert res["matches"] == []
    assert "before its last line" in res["paste_hint"]


def test_a_traceback_cut_inside_a_prefixed_worker_log_asks_for_that_line():
    text = "\n".join(f"(VllmWorker rank=0 pid=12) {line}" for line in CUT_TRACEBACK.splitlines())
    assert "before its last line" in analyse_text(text, ARTS).get("paste_hint", "")


def test_text_without_an_error_line_asks_for_one():
    res = analyse_text("my model gives weird answers since Tuesday", ARTS)
    assert res["matches"] == []
    assert "no line of the text reads as an error" in res["paste_hint"]


@pytest.mark.parametrize(
    "text",
    [
        # a whole traceback whose error no article is about: an answer of "no match", not "paste more"
        CUT_TRACEBACK + "SomeLibError: the frobnicator refused the widget\n",
        CUT_TRACEBACK + "vllm.engine.async_llm_engine.AsyncEngineDeadError: Background loop has errored already.\n",
        CUT_TRACEBACK + "StopIteration\n",  # a bare exception name ends it too (holdout8 h8153)
        # an error line without a traceback
        "ERROR 01-01 10:00:00 the frobnicator failed to start",
    ],
)
def test_text_with_an_error_line_gets_no_paste_hint(text):
    assert "paste_hint" not in analyse_text(text, ARTS)


def test_a_matched_text_gets_no_paste_hint():
    res = analyse_text(CUT_TRACEBACK + "RuntimeError: CUDA error: no kernel image is available for execution", ARTS)
    assert res["matches"] and "paste_hint" not in res


def test_an_error_of_the_request_gets_its_reason_not_a_paste_hint():
    text = "openai.BadRequestError: This model's maximum context length is 4096 tokens. However, you requested 5000"
    res = analyse_text(text, ARTS)
    assert res["matches"] == [] and "paste_hint" not in res


def test_the_hint_is_in_the_json_document_and_the_text_report():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "bwdoctor" / "schemas" / "explain.schema.json").read_text())
    cmd = [sys.executable, "-m", "bwdoctor", "explain", "-", "--no-machine"]
    res = subprocess.run([*cmd, "--format", "json"], input=CUT_TRACEBACK.encode(), capture_output=True, timeout=120)
    assert res.returncode == 3, res.stderr
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, schema)
    assert "before its last line" in doc["paste_hint"]
    res = subprocess.run(cmd, input=CUT_TRACEBACK.encode(), capture_output=True, timeout=120)
    assert res.returncode == 3 and b"before its last line" in res.stdout
