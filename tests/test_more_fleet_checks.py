"""Fleet checks that no other test names (BW904 fleet-same-torch, BW905 fleet-same-packages).

Nodes go through bwdoctor.fleet.evaluate, as `bwdoctor fleet` hands them over (a facts document per node, or
the error text of a node that did not answer); torch_build and distributions have the shapes their probes give.
"""

from __future__ import annotations

import copy

from bwdoctor import fleet
from bwdoctor.model import Finding

TORCH = {
    "version": "2.9.1+cu128",
    "location": "/venv/lib/python3.12/site-packages",
    "requires": [],
    "cuda": "12.8",
    "hip": None,
    "git_version": None,
    "variant": "cu128",
    "has_libtorch_cuda": True,
    "shadowed": [],
}
DISTS = [
    {"name": "vllm", "version": "0.15.1", "location": "/venv/lib/python3.12/site-packages", "requires": []},
    {"name": "torch", "version": "2.9.1+cu128", "location": "/venv/lib/python3.12/site-packages", "requires": []},
    {"name": "nvidia-nccl-cu12", "version": "2.27.5", "location": "/venv/lib/python3.12/site-packages", "requires": []},
    {"name": "ray", "version": "2.49.1", "location": "/venv/lib/python3.12/site-packages", "requires": []},
]


def node(torch: object = TORCH, dists: object = DISTS) -> dict:
    return {"facts": {"torch_build": copy.deepcopy(torch), "distributions": copy.deepcopy(dists)}}


def cross(nodes: list[tuple[str, object]], cid: str) -> list[Finding]:
    _, found, _ = fleet.evaluate(nodes)
    mine = [f for f in found if f.id == cid]
    assert mine, [f.id for f in found]
    return mine


def with_version(name: str, version: str) -> list:
    return [dict(d, version=version) if d["name"] == name else dict(d) for d in DISTS]


def test_bw904_same_torch_passes_and_another_variant_fails() -> None:
    (f,) = cross([("gpu-a", node()), ("gpu-b", node())], "BW904")
    assert f.status == "pass" and f.message == "torch: 2.9.1+cu128 (cu128) on every node"

    cu130 = dict(TORCH, version="2.9.1+cu130", cuda="13.0", variant="cu130")
    (f,) = cross([("gpu-a", node()), ("gpu-b", node(torch=cu130))], "BW904")
    assert (f.status, f.severity, f.kb) == ("fail", "error", "fleet-drift")
    assert f.message == "torch differs across nodes: gpu-a: 2.9.1+cu128 (cu128); gpu-b: 2.9.1+cu130 (cu130)"
    assert f.evidence["per_node"] == {"gpu-a": "2.9.1+cu128 (cu128)", "gpu-b": "2.9.1+cu130 (cu130)"}
    assert f.evidence["fix"] == "install the same torch wheel on every node"


def test_bw904_torch_missing_on_a_node_and_too_few_nodes() -> None:
    missing = {"$unavailable": "torch is not installed in the inspected environment"}
    (f,) = cross([("gpu-a", node()), ("gpu-b", node(torch=missing))], "BW904")
    assert f.status == "fail" and f.evidence["per_node"]["gpu-b"] == "unknown"
    (f,) = cross([("gpu-a", node()), ("gpu-b", "no answer within 60 s")], "BW904")
    assert f.status == "skip" and "fewer than two nodes answered" in f.message


def test_bw905_same_packages_pass() -> None:
    (f,) = cross([("gpu-a", node()), ("gpu-b", node())], "BW905")
    assert f.status == "pass" and f.message == "the same package versions on every node"


def test_bw905_each_drifting_package_is_one_finding() -> None:
    b_dists: dict[str, str] = {"vllm": "0.14.1", "nvidia-nccl-cu12": "2.26.2"}
    dists = DISTS
    for name, version in b_dists.items():
        dists = [dict(d, version=version) if d["name"] == name else d for d in dists]
    no_ray = [d for d in dists if d["name"] != "ray"]
    found = cross([("gpu-a", node()), ("gpu-b", node(dists=no_ray))], "BW905")
    assert all((f.status, f.severity, f.kb) == ("fail", "error", "fleet-drift") for f in found)
    by_pkg = {f.evidence["distribution"]: f for f in found}
    assert sorted(by_pkg) == ["nvidia-nccl-cu12", "ray", "vllm"]  # torch agrees: not reported here
    assert by_pkg["vllm"].evidence["per_node"] == {"gpu-a": "0.15.1", "gpu-b": "0.14.1"}
    assert by_pkg["ray"].message == "ray differs across nodes: gpu-a: 2.49.1; gpu-b: not installed"
    assert by_pkg["nvidia-nccl-cu12"].evidence["fix"] == "pip install the same nvidia-nccl-cu12 version on every node"
    # torch is BW904's (version and CUDA variant): a torch difference is one finding there, none here
    torch28 = dict(TORCH, version="2.8.0+cu128")
    nodes = [("gpu-a", node()), ("gpu-b", node(torch=torch28, dists=with_version("torch", "2.8.0+cu128")))]
    (f,) = cross(nodes, "BW905")
    assert f.status == "pass"
    _, found, _ = fleet.evaluate(nodes)
    assert [g.id for g in found if g.status == "fail" and "torch" in g.message] == ["BW904"]
