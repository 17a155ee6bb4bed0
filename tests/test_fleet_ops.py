"""Fleet output for operators: kernel-release drift named with both values (BW908 fleet-same-kernel), one node
per entry even where two share a name, and the per-node table cut at a word."""

from __future__ import annotations

import json

from conftest import H100_ROOT, document_validator, run_cli
from test_fleet import facts_file

from bwdoctor import fleet


def _node(kernel: str) -> dict:
    return {"facts": {"kernel_release": kernel}}


def test_bw908_fleet_same_kernel_pass_and_fail() -> None:
    _, found, _ = fleet.evaluate([("gpu-a", _node("6.8.0-60-generic")), ("gpu-b", _node("6.8.0-60-generic"))])
    (f,) = [f for f in found if f.id == "BW908"]
    assert f.status == "pass" and f.message == "kernel release: 6.8.0-60-generic on every node"
    _, found, _ = fleet.evaluate([("gpu-a", _node("6.8.0-60-generic")), ("gpu-b", _node("6.14.0-15-generic"))])
    (f,) = [f for f in found if f.id == "BW908"]
    assert (f.status, f.name, f.kb) == ("fail", "fleet-same-kernel", "fleet-drift")
    assert f.message == "kernel release differs across nodes: gpu-a: 6.8.0-60-generic; gpu-b: 6.14.0-15-generic"
    assert "nvidia_peermem" in f.evidence["fix"]


def test_two_nodes_of_one_name_stay_two(tmp_path) -> None:
    a = facts_file(tmp_path, "a", H100_ROOT, lambda d: d.update(node="gpu-1"))

    def other(doc: dict) -> None:
        doc["node"] = "gpu-1"
        doc["facts"]["nvidia_driver"]["version"] = "570.181"

    b = facts_file(tmp_path, "b", H100_ROOT, other)
    res = run_cli("fleet", "--facts", str(a), str(b), "--format", "json")
    doc = json.loads(res.stdout)
    document_validator("fleet").validate(doc)
    names = [n["node"] for n in doc["nodes"]]
    assert names == ["gpu-1 [a.json]", "gpu-1 [b.json]"]
    drv = next(f for f in doc["findings"] if f["id"] == "BW902")
    assert drv["status"] == "fail" and set(drv["evidence"]["per_node"]) == set(names)


def test_unique_names() -> None:
    assert fleet.unique_names(["a", "b"]) == ["a", "b"]
    assert fleet.unique_names(["a", "a", "a"]) == ["a", "a #2", "a #3"]
    assert fleet.unique_names(["a", "a"], ["x.json", "y.json"]) == ["a [x.json]", "a [y.json]"]
    out = fleet.unique_names(["a #2", "a", "a"])
    assert len(set(out)) == 3


def test_fleet_table_never_cuts_a_word(tmp_path) -> None:
    def broken(doc: dict) -> None:
        doc["node"] = "gpu-b"
        doc["facts"]["environment"]["CUDA_VISIBLE_DEVICES"] = ""

    a = facts_file(tmp_path, "gpu-a", H100_ROOT)
    b = facts_file(tmp_path, "gpu-b", H100_ROOT, broken)
    text = run_cli("fleet", "--facts", str(a), str(b)).stdout
    doc = json.loads(run_cli("fleet", "--facts", str(a), str(b), "--format", "json").stdout)
    assert any("…" in line for line in text.splitlines())  # the long message was cut
    for n in doc["nodes"]:
        fs = n["report"]["findings"]
        bad = [f for f in fs if f["status"] in ("fail", "error") and f["severity"] == "error"]
        bad += [f for f in fs if f["status"] == "fail" and f["severity"] == "warning"]
        if not bad:
            continue
        row = next(line for line in text.splitlines() if line.startswith(n["node"] + " "))
        shown = row.split(bad[0]["id"] + " ", 1)[1].rstrip("…")
        full = bad[0]["message"]
        assert full.startswith(shown) and (len(shown) == len(full) or not full[len(shown)].isalnum())


def test_a_fix_shared_by_several_nodes_is_printed_once(tmp_path) -> None:
    a = facts_file(tmp_path, "gpu-a", H100_ROOT)
    b = tmp_path / "gpu-b.json"
    c = tmp_path / "gpu-c.json"
    b.write_text("not json")
    c.write_text("{}")
    res = run_cli("fleet", "--facts", str(a), str(b), str(c))
    assert res.returncode == 1
    assert res.stdout.count("BW901 fleet-nodes-answer") == 2
    assert res.stdout.count("fix: check the node") == 1
