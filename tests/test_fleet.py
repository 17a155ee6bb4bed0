"""Fleet: facts files from different hosts, and a real local Ray cluster whose nodes read different trees."""

import json
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import H100_ROOT, document_validator, run_cli
from hosttrees import blackwell_healthy

from bwdoctor import fleet

_FACTS = {}  # root -> the facts document `bwdoctor facts --root` wrote for it (the trees are read-only fixtures)


def facts_file(tmp_path, name, root, edit=None):
    out = tmp_path / f"{name}.json"
    if str(root) in _FACTS:
        out.write_text(_FACTS[str(root)])
    else:
        res = run_cli("facts", "--format", "json", "--root", str(root), "-o", str(out))
        assert res.returncode == 0, res.stderr
        _FACTS[str(root)] = out.read_text()
    if edit:
        doc = json.loads(out.read_text())
        edit(doc)
        out.write_text(json.dumps(doc))
    return out


def test_fleet_facts_names_each_difference(tmp_path):
    a = facts_file(tmp_path, "gpu-a", H100_ROOT)

    def drift(doc):
        doc["node"] = "gpu-b"
        doc["facts"]["nvidia_driver"]["version"] = "570.181"
        doc["facts"]["environment"]["NCCL_SOCKET_IFNAME"] = "ens5"
        doc["facts"]["environment"]["VLLM_ATTENTION_BACKEND"] = "FLASHINFER"

    b = facts_file(tmp_path, "gpu-b", H100_ROOT, drift)
    res = run_cli("fleet", "--facts", str(a), str(b), "--format", "json")
    doc = json.loads(res.stdout)
    document_validator("fleet").validate(doc)
    bad = {f["name"]: f for f in doc["findings"] if f["status"] == "fail"}
    assert bad["fleet-same-driver"]["evidence"]["per_node"] == {"gpu-a": "580.159.04 (open)", "gpu-b": "570.181 (open)"}
    assert {
        f["evidence"]["variable"]
        for f in doc["findings"]
        if f["name"] == "fleet-same-settings" and f["status"] == "fail"
    } == {"VLLM_ATTENTION_BACKEND"}  # interface names may differ per node
    assert res.returncode == 1
    text = run_cli("fleet", "--facts", str(a), str(b)).stdout
    assert "gpu-b: 570.181" in text and "gpu-a" in text


def test_same_facts_no_drift(tmp_path):
    a = facts_file(tmp_path, "a", H100_ROOT)
    b = facts_file(tmp_path, "b", H100_ROOT)
    doc = json.loads(run_cli("fleet", "--facts", str(a), str(b), "--format", "json").stdout)
    assert not [f for f in doc["findings"] if f["status"] == "fail"]


def test_bad_facts_file_is_a_node_finding(tmp_path):
    a = facts_file(tmp_path, "a", H100_ROOT)
    bad = tmp_path / "broken.json"
    bad.write_text("{nope")
    doc = json.loads(run_cli("fleet", "--facts", str(a), str(bad), "--format", "json").stdout)
    f = next(f for f in doc["findings"] if f["name"] == "fleet-nodes-answer" and f["status"] == "fail")
    assert f["evidence"]["node"] == "broken" and "not valid JSON" in f["message"]


def test_socket_ifname_missing_on_a_node():
    from bwdoctor.checks.fleet import fleet_socket_ifname_present
    from bwdoctor.testing import run_check, statuses

    nodes = {
        "a": {"environment": {"NCCL_SOCKET_IFNAME": "eth0"}, "net_interfaces": ["eth0", "lo"]},
        "b": {"environment": {"NCCL_SOCKET_IFNAME": "eth0"}, "net_interfaces": ["ens5", "lo"]},
    }
    f = run_check(fleet_socket_ifname_present, {"fleet_nodes": nodes})
    assert statuses(f) == ["fail"] and f[0].evidence["node"] == "b"


ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for i in range(2):
        c.add_node(num_cpus=1, resources={f"bwnode{i}": 1})
    ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def test_ray_cluster_drift_and_hung_node(cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    other = tmp / "h100-570"
    shutil.copytree(H100_ROOT, other)
    (other / "proc/driver/nvidia/version").write_text(
        (H100_ROOT / "proc/driver/nvidia/version").read_text().replace("580.159.04", "570.181")
    )
    bw = blackwell_healthy(tmp / "rtx5090")
    nodes = [n for n in ray.nodes() if n["Alive"]]
    roots = {nodes[0]["NodeID"]: str(H100_ROOT), nodes[1]["NodeID"]: str(other), nodes[2]["NodeID"]: str(bw)}
    t0 = time.perf_counter()
    got = fleet.gather_ray(None, 60, lambda n: {"root": roots[n["NodeID"]]})
    gather_s = time.perf_counter() - t0
    assert len(got) == 3 and all(isinstance(d, dict) for _, d in got), got
    reports, cross, _ = fleet.evaluate(got)
    drv = next(f for f in cross if f.name == "fleet-same-driver")
    assert drv.status == "fail" and sorted(drv.evidence["per_node"].values()) == [
        "570.181 (open)",
        "570.181 (open)",
        "580.159.04 (open)",
    ]
    gpus = next(f for f in cross if f.name == "fleet-same-gpus")
    assert gpus.status == "fail" and "RTX 5090" in gpus.message
    assert gather_s < 60
    # a node whose facts never come back in time (NVML hanging there) is reported after the timeout
    hang = {nodes[1]["NodeID"]}
    fake = Path(__file__).parent / "faults.py"
    sys.path.insert(0, str(fake.parent))
    import faults

    nvml = faults.fake_nvml(tmp)
    if nvml is None:
        pytest.skip("gcc needed for the hanging NVML")
    t0 = time.perf_counter()
    env = {"LD_LIBRARY_PATH": str(nvml), "FAKE_NVML_HANG": "1"}
    got = fleet.gather_ray(
        None, 3, lambda n: {"runtime_env": {"env_vars": env}} if n["NodeID"] in hang else {"root": str(H100_ROOT)}
    )
    assert time.perf_counter() - t0 < 20
    errors = [name for name, d in got if isinstance(d, str)]
    assert len(errors) == 1 and "no answer within 3 s" in dict(got)[errors[0]]
    _, cross, _ = fleet.evaluate(got)
    f = next(f for f in cross if f.name == "fleet-nodes-answer" and f.status == "fail")
    assert f.evidence["node"] == errors[0]


def test_per_node_settings_are_not_drift():
    from bwdoctor.checks.fleet import fleet_same_settings, fleet_socket_ifname_present
    from bwdoctor.testing import run_check, statuses

    nodes = {
        "a": {"environment": {"VLLM_HOST_IP": "10.0.0.1", "NCCL_SOCKET_IFNAME": "eth0"}},
        "b": {"environment": {"VLLM_HOST_IP": "10.0.0.2", "NCCL_SOCKET_IFNAME": "ens5"}},
    }
    assert statuses(run_check(fleet_same_settings, {"fleet_nodes": nodes})) == ["pass"]
    gloo = {"a": {"environment": {"GLOO_SOCKET_IFNAME": "eth"}, "net_interfaces": ["eth0", "lo"]}}
    f = run_check(fleet_socket_ifname_present, {"fleet_nodes": gloo})
    assert statuses(f) == ["fail"]  # Gloo wants an exact name; NCCL would take the prefix
