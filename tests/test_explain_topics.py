"""explain by slug, alias, check id and check name; unknown topics exit 2 with the nearest ones."""

import json

from conftest import run_cli


def test_explain_by_slug_alias_id_and_name():
    for topic in ("peermem-nccl-hang", "nvidia-peermem invalid context", "BW201", "bw201", "peermem-on-new-kernel"):
        res = run_cli("explain", topic)
        assert res.returncode == 0, (topic, res.stderr)
        assert "SYMPTOM" in res.stdout and "FIX" in res.stdout


def test_explain_json():
    res = run_cli("explain", "open-kernel-module", "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["schema"] == "bwdoctor.explain/1" and doc["article"]["slug"] == "open-kernel-module"


def test_unknown_topic_exits_2_with_nearest():
    res = run_cli("explain", "peermem-hang")
    assert res.returncode == 2 and "peermem-nccl-hang" in res.stderr


def test_pasted_error_text_finds_topic():
    res = run_cli(
        "explain",
        "--format",
        "json",
        "NVRM: The NVIDIA GPU 0000:01:00.0 (PCI ID: 10de:2b85)\nNVRM: installed in this system requires use "
        "of the NVIDIA open kernel modules.\nNVRM: GPU 0000:01:00.0: RmInitAdapter failed! (0x22:0x56:884)",
    )
    doc = json.loads(res.stdout)
    assert doc["matches"][0]["slug"] == "open-kernel-module"


def test_no_match_exits_3():
    res = run_cli("explain", "everything is fine here\nreally")
    assert res.returncode == 3
