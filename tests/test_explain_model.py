"""explain's corpus model (bwdoctor/explain_model.py): fitted on the current corpus, read the way it was fitted,
answering only where the rules are silent and the text reads as an environment error, and harmless when damaged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bwdoctor import explain, explain_model
from bwdoctor.explain import analyse_text
from bwdoctor.knowledge import load_all

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "explain_eval"))
import train_model  # noqa: E402

ARTS = load_all()
MODEL = explain_model.load()


def _model_answer(res: dict) -> bool:
    return bool(res["matches"]) and res["matches"][0]["evidence"][0].startswith("corpus model: p=")


def test_the_shipped_model_was_fitted_on_the_corpus_as_it_is_now():
    # a corpus row added, relabelled or removed without refitting (train_model.py) fails here
    assert MODEL is not None
    files = train_model.corpus_files()
    assert MODEL["trained_on"] == [f.relative_to(ROOT).as_posix() for f in files]
    assert MODEL["corpus_sha256"] == train_model.corpus_digest(files)


def test_the_reader_gives_the_probabilities_the_fitting_recorded():
    # the recorded rows were scored by the trainer; the standard-library reader (features, tf-idf, softmax) and the
    # explain feature functions it calls must give the same, or the model reads other features than it learned
    assert len(MODEL["check"]) >= 12
    for row in MODEL["check"]:
        got = explain_model.predict(row["query"], MODEL)
        assert got is not None
        assert got["slug"] == row["slug"]
        assert got["p"] == pytest.approx(row["p"], abs=1e-5)


def test_every_class_is_an_article_or_none():
    assert set(MODEL["classes"]) - {explain_model.NONE_CLASS} <= set(ARTS)
    assert explain_model.NONE_CLASS in MODEL["classes"]


# holdout10 row h10028, NCCL's system error in a title, in words no signature holds: the model answers, as
# "likely", with its probability and the features that drove it
INFER = "[Usage]: ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error."


def test_the_model_answers_where_the_rules_are_silent_and_says_why():
    res = analyse_text(INFER, ARTS)
    assert _model_answer(res)
    m = res["matches"][0]
    assert m["tier"] == "likely" and m["slug"] in ARTS
    assert 0 < m["score"] <= 1 and m["score"] >= explain_model.ANSWER_MIN
    assert any(e.startswith("feature ") for e in m["evidence"][1:])
    assert m["excerpt"] == INFER


def test_without_a_model_the_tier_is_silent(monkeypatch):
    monkeypatch.setitem(explain_model._MODEL, "m", None)
    res = analyse_text(INFER, ARTS)
    assert not _model_answer(res)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{",
        "[]",
        '{"format": 2}',
        '{"format": 1, "classes": [], "intercept": [], "idf": {}, "weights": {}}',
        '{"format": 1, "classes": ["a"], "intercept": [NaN], "idf": {}, "weights": {}}',
        '{"format": 1, "classes": ["a"], "intercept": [0], "idf": {"x": 1}, "weights": {"x": [[7, 1.0]]}}',
        '{"format": 1, "classes": ["a"], "intercept": [0], "idf": {"x": -1}, "weights": {}}',
        '{"format": 1, "classes": ["a"], "intercept": [0], "idf": {"x": 1}, "weights": {"x": [["0", 1.0]]}}',
        '{"format": 1, "classes": "ab", "intercept": [0, 0], "idf": {}, "weights": {}}',
    ],
)
def test_a_damaged_model_is_refused_not_obeyed(raw):
    assert explain_model.parse(raw) is None


def test_the_shipped_file_parses():
    raw = (ROOT / "bwdoctor" / "data" / "explain_model.json").read_text(encoding="utf-8")
    assert explain_model.parse(raw) is not None


def test_features_are_bounded_on_a_huge_paste():
    text = "RuntimeError: CUDA error: out of memory at cudaMalloc\n" * 200_000
    feats = explain_model.features(text)
    assert len(feats) <= explain_model.FEATURES_MAX + 64


def test_a_symbol_no_rule_knows_gets_no_model_article():
    # the loader's words ("undefined symbol") are every library's; with a symbol no evidence rule places, silence
    text = "ImportError: /opt/app/libgeo.so.3: undefined symbol: _ZN3geo7Polygon4areaEv"
    assert not _model_answer(analyse_text(text, ARTS))


def test_the_model_answer_goes_through_the_cli_and_its_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "bwdoctor" / "schemas" / "explain.schema.json").read_text())
    res = subprocess.run(
        [sys.executable, "-m", "bwdoctor", "explain", "-", "--no-machine", "--format", "json"],
        input=INFER.encode(),
        capture_output=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, schema)
    assert doc["verdict"] == "likely"
    assert doc["matches"][0]["evidence"][0].startswith("corpus model: p=")


def test_a_planted_secret_in_the_answered_text_is_redacted():
    secret = "hf_" + "Q" * 34
    text = f"RuntimeError: Failed to infer device type (HF_TOKEN={secret})"
    res = analyse_text(text, ARTS)
    assert secret not in json.dumps(res)


def test_explain_imports_the_model_only_when_the_rules_are_silent():
    code = (
        "import sys; from bwdoctor.explain import analyse_text; "
        "analyse_text('RuntimeError: CUDA error: no kernel image is available for execution on the device'); "
        "print('bwdoctor.explain_model' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_the_training_rows_are_read_as_explain_reads_them():
    # the trainer fits on explain's error lines, the same the tier reads at run time
    text = "> (VllmWorker rank=0 pid=1) ERROR 01-01 00:00:00 RuntimeError: Failed to infer device type"
    assert explain.error_lines(text, ARTS).endswith("RuntimeError: Failed to infer device type")
