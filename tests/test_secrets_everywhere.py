"""Secrets planted in every input kind never come out of any command, in any format, on stdout, stderr or -o.

Inputs: the process environment, a --root tree's recorded environment (/proc/1/environ) and a vLLM server
recorded in it (/proc/<pid>/cmdline + environ), compose (list and mapping `environment`, a command string
with --api-key), a k8s Deployment (env name/value, args), a systemd unit (quoted and unquoted Environment=,
ExecStart with --hf-token=), a .env file, a shell script (export + vllm serve --api-key), a vLLM --config YAML,
a real running process that the serve probe recognizes as a vLLM server, a facts file, a pasted error, a vLLM
log, and paths named like tokens. Every sentinel contains MARKER; none may appear anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import H100_ROOT

from bwdoctor.cli import main
from bwdoctor.render import KIND_FORMATS

MARKER = "pl4nted"
CAP = Path(__file__).parent / "fixtures" / "capacity"
CUDA = Path(__file__).parent / "fixtures" / "cuda"


def sentinel(n: int) -> str:
    return f"{MARKER}Sentinel{n:02d}xyz"


# the process environment of bwdoctor itself (one of each secret-name rule)
PROCESS_ENV = {
    "HF_TOKEN": "hf_" + sentinel(1),
    "VLLM_API_KEY": sentinel(2),
    "AWS_SECRET_ACCESS_KEY": sentinel(3),
    "DB_PASS": sentinel(4),
    "REDIS_PWD": sentinel(5),
    "GITHUB_TOKENS": sentinel(6),
    "PROXY_AUTH": sentinel(7),
    "SERVICE_BEARER": sentinel(8),
    "AZURE_CREDENTIALS": sentinel(9),
    "NCCL_SOCKET_IFNAME": "eth0",
    "PIP_INDEX_URL": f"https://user:{sentinel(10)}@pypi.example.org/simple",
    "HUGGING_FACE_HUB_TOKEN": "hf_" + sentinel(11),
}

COMPOSE = f"""services:
  vllm:
    image: vllm/vllm-openai:v0.15.1
    command: --model /models/qwen --api-key {sentinel(20)} --port 8000 --hf-token={sentinel(21)}
    environment:
      - HF_TOKEN={sentinel(22)}
      - VLLM_LOGGING_LEVEL=INFO
      - VLLM_API_KEY=${{API_KEY_FROM_DOTENV}}
  worker:
    image: vllm/vllm-openai:v0.15.1
    entrypoint: ["/bin/sh", "-c", "vllm serve /models/qwen --api-key {sentinel(23)} --port 8001"]
    environment:
      HF_TOKEN: {sentinel(24)}
      OPENAI_API_KEY: "{sentinel(25)}"
      VLLM_USE_V1: "1"
"""
DOTENV = f"""# project .env
API_KEY_FROM_DOTENV={sentinel(30)}
HF_TOKEN="{sentinel(31)}"
export WANDB_API_KEY='{sentinel(32)}'
VLLM_PORT=8000
"""
K8S = f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: vllm
spec:
  template:
    spec:
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.15.1
          command: ["vllm", "serve"]
          args: ["/models/qwen", "--api-key", "{sentinel(40)}", "--hf-token={sentinel(41)}", "--port", "8000"]
          env:
            - name: HF_TOKEN
              value: "{sentinel(42)}"
            - name: VLLM_API_KEY
              value: {sentinel(43)}
            - name: VLLM_LOGGING_LEVEL
              value: DEBUG
"""
UNIT = f"""[Unit]
Description=vLLM OpenAI server

[Service]
Environment="HF_TOKEN={sentinel(50)}" "VLLM_LOGGING_LEVEL=INFO"
Environment=VLLM_API_KEY={sentinel(51)} CUDA_VISIBLE_DEVICES=0,1
Environment=DB_PASSWORD={sentinel(52)}
ExecStart=/opt/vllm/bin/vllm serve /models/qwen --port 8000 --hf-token={sentinel(53)} --api-key {sentinel(54)}
Restart=always

[Install]
WantedBy=multi-user.target
"""
SCRIPT = f"""#!/bin/bash
set -euo pipefail
export HF_TOKEN={sentinel(60)}
export OPENAI_API_KEY="{sentinel(61)}"
KEY='{sentinel(62)}'
VLLM_API_KEY={sentinel(63)} vllm serve /models/qwen \\
    --api-key "$KEY" \\
    --hf-token {sentinel(64)} \\
    --port 8000
"""
VLLM_YAML = f"""model: /models/qwen
api-key: {sentinel(70)}
port: 8000
"""
LOG = (
    "INFO 11-29 10:00:00 [utils.py:233] non-default args: {'model_tag': '/models/qwen', "
    f"'api_key': ['{sentinel(80)}'], 'hf_token': '{sentinel(81)}', 'max_num_batched_tokens': 8192}}\n"
    f"INFO 11-29 10:00:01 [api_server.py:1] HF_TOKEN={sentinel(82)} --api-key {sentinel(83)}\n"
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.74 GiB. GPU 3 has a total capacity of "
    "94.97 GiB of which 1.69 GiB is free.\n"
)
PASTED = (
    f"$ HF_TOKEN={sentinel(90)} vllm serve m --api-key {sentinel(91)}\n"
    f"Authorization: Bearer {sentinel(92)}\n"
    f"git clone https://ghp_{sentinel(93)}AAAAAAAAAA@github.com/x/y\n"
    "RuntimeError: CUDA error: no kernel image is available for execution on the device\n"
)


def write_configs(d: Path) -> dict:
    """The serve configs of every kind in one directory; returns {kind: path}."""
    d.mkdir(parents=True, exist_ok=True)
    files = {
        "compose": ("docker-compose.yml", COMPOSE),
        "dotenv": (".env", DOTENV),
        "k8s": ("vllm-deployment.yaml", K8S),
        "systemd": ("vllm.service", UNIT),
        "shell": ("serve.sh", SCRIPT),
        "vllm-yaml": ("vllm-config.yaml", VLLM_YAML),
    }
    out = {}
    for kind, (name, body) in files.items():
        (d / name).write_text(body)
        out[kind] = d / name
    return out


def planted_tree(tmp: Path) -> Path:
    """The captured H100 host with secrets in its recorded environment, a systemd unit and a recorded server."""
    tree = tmp / "box"
    shutil.copytree(H100_ROOT, tree, symlinks=True)
    (tree / "proc" / "1").mkdir(parents=True, exist_ok=True)
    (tree / "proc" / "1" / "environ").write_bytes(
        f"HF_TOKEN={sentinel(100)}\0VLLM_API_KEY={sentinel(101)}\0HOME=/root\0DB_PASS={sentinel(102)}\0".encode()
    )
    pid = tree / "proc" / "4242"
    pid.mkdir(parents=True)
    argv = ["/opt/vllm/bin/python", "/opt/vllm/bin/vllm", "serve", "/models/qwen", "--api-key", sentinel(103)]
    argv += [f"--hf-token={sentinel(104)}", "--port", "8000"]
    (pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (pid / "environ").write_bytes(
        f"HF_TOKEN={sentinel(105)}\0VLLM_LOGGING_LEVEL=INFO\0MY_PASSWORD={sentinel(106)}\0"
        f"HOME=/home/{sentinel(107)}\0PATH=/opt/{sentinel(108)}/bin\0CUDA_VISIBLE_DEVICES=0\0".encode()
    )
    units = tree / "etc" / "systemd" / "system"
    units.mkdir(parents=True, exist_ok=True)
    (units / "vllm.service").write_text(UNIT.replace(MARKER, MARKER + "Tree"))
    return tree


def planted_facts(tmp: Path, tree: Path, capsys) -> Path:
    """A facts file (as another machine wrote it) with secrets in its environment and serve configs."""
    path = tmp / "facts.json"
    assert main(["facts", "--root", str(tree), "--format", "json", "-o", str(path)]) == 0
    capsys.readouterr()
    doc = json.loads(path.read_text())
    doc["facts"]["environment"]["HF_TOKEN"] = sentinel(110)
    doc["facts"]["environment"]["NOTE"] = f"token hf_{sentinel(111)} inside a value"
    configs = doc["facts"]["serve_configs"]["configs"]
    configs.append(
        {
            "path": "/etc/systemd/system/other.service",
            "kind": "systemd",
            "name": "other.service",
            "launcher": "vllm serve",
            "argv": [["--api-key", 8, 10], [sentinel(112), 8, 20], [f"--hf-token={sentinel(113)}", 8, 40]],
            "env": [{"name": "VLLM_API_KEY", "value": sentinel(114), "path": "/x", "line": 1, "column": 1}],
            "errors": [],
        }
    )
    path.write_text(json.dumps(doc))
    return path


def token_named_library(tmp: Path) -> Path:
    """A real CUDA .so in a directory named like a Hugging Face token (paths are echoed by every view)."""
    d = tmp / ("hf_" + sentinel(120))
    d.mkdir()
    shutil.copy(CUDA / "sm120.so", d / "libx.so")
    return d / "libx.so"


@pytest.fixture
def vllm_process(tmp_path):
    """A real running process that the serve probe reads as a vLLM server: a script named `vllm`, run as
    `python .../vllm serve MODEL --api-key S --hf-token=S`, with secrets in its environment."""
    script = tmp_path / "bin" / "vllm"
    script.parent.mkdir()
    script.write_text("import time\ntime.sleep(120)\n")
    argv = [sys.executable, str(script), "serve", "/models/qwen", "--api-key", sentinel(130)]
    argv += [f"--hf-token={sentinel(131)}", "--port", "8123"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "HOME": f"/home/{sentinel(132)}",
        "HF_TOKEN": sentinel(133),
        "VLLM_API_KEY": sentinel(134),
        "MY_PASSWORD": sentinel(135),
        "VLLM_LOGGING_LEVEL": "INFO",
    }
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if b"serve" in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
                    break
            except OSError:
                pass
            time.sleep(0.05)
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def run_everywhere(argv: list, kind: str, tmp: Path, capsys) -> list:
    """(label, text) of every output of one command line: each format to stdout and to -o, with stderr."""
    outs = []
    for fmt in KIND_FORMATS[kind]:
        for to_file in (False, True):
            full = [*argv, "--format", fmt]
            out = tmp / f"out-{kind}-{fmt}"
            if to_file:
                full += ["-o", str(out)]
            code = main(full)
            got = capsys.readouterr()
            text = got.out + got.err + (out.read_text(encoding="utf-8") if to_file and out.exists() else "")
            assert code in (0, 1, 2, 3), (full, code)
            if fmt == "json" and not to_file and got.out:
                json.loads(got.out)
            outs.append((" ".join(full), text))
    return outs


def assert_clean(outs: list) -> None:
    for label, text in outs:
        assert MARKER not in text and MARKER.lower() not in text.lower(), (label, _context(text))


def _context(text: str) -> str:
    i = text.lower().find(MARKER.lower())
    return text[max(0, i - 200) : i + 100]


@pytest.fixture
def planted(tmp_path, monkeypatch, capsys):
    for k, v in PROCESS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    configs = write_configs(tmp_path / "project")
    tree = planted_tree(tmp_path)
    facts = planted_facts(tmp_path, tree, capsys)
    log = tmp_path / "vllm.log"
    log.write_text(LOG)
    lib = token_named_library(tmp_path)
    return {"configs": configs, "tree": tree, "facts": facts, "log": log, "lib": lib}


def test_no_planted_secret_leaves_any_command_in_any_format(planted, tmp_path, capsys):
    tree, facts, log, lib = planted["tree"], planted["facts"], planted["log"], planted["lib"]
    config_args = [a for p in planted["configs"].values() if p.name != ".env" for a in ("--config", str(p))]
    runs = [
        (["check", "-v", "--root", str(tree), "--target", "sm_120", *config_args], "report"),
        (["check", "-v", "--facts", str(facts)], "report"),
        (["prebuild", "-v", "--root", str(tree), "--target", "sm_120"], "report"),
        (["facts", "-v", "--root", str(tree)], "facts"),
        (["facts", "environment", "serve_configs", "--root", str(tree)], "facts"),
        (["list", "checks"], "list"),
        (["list", "probes"], "list"),
        (["explain", "--no-machine", PASTED], "explain"),
        (["explain", "--no-machine", "--log", str(log)], "explain"),
        (["explain", "--root", str(tree), "--target", "sm_120", PASTED], "explain"),
        (["cubins", "--all", str(lib), str(lib.parent / "missing.so")], "cubins"),
        (["symbols", str(lib)], "symbols"),
        (["kernels", "--all", "--names", str(lib), "--target", "sm_120"], "kernels"),
        (["recommend", "--facts", str(facts), "--target", "sm_120"], "recommend"),
        (["verify-build", str(lib.parent), "--target", "sm_120"], "verify-build"),
        (["plan", "--model", str(CAP / "qwen3-14b"), "--gpu-memory", "80", "--log", str(log)], "plan"),
        (["fleet", "--facts", str(facts), str(facts)], "fleet"),
    ]
    outs = []
    for argv, kind in runs:
        outs += run_everywhere(argv, kind, tmp_path, capsys)
    assert_clean(outs)
    # the configs were read (the test proves nothing if they were not): the planted launches are in the facts
    main(["check", "--root", str(tree), "--format", "json", "--select", "serve", *config_args])
    doc = json.loads(capsys.readouterr().out)
    kinds = {c["kind"] for c in doc["facts"]["serve_configs"]["configs"]}
    assert {"compose", "k8s", "systemd", "shell", "process"} <= kinds, kinds
    unit = next(c for c in doc["facts"]["serve_configs"]["configs"] if c["path"] == str(planted["configs"]["systemd"]))
    assert {e["name"] for e in unit["env"]} >= {"HF_TOKEN", "VLLM_API_KEY", "CUDA_VISIBLE_DEVICES", "DB_PASSWORD"}


def test_errors_and_usage_messages_are_redacted(planted, tmp_path, capsys):
    outs = []
    for argv in (
        ["check", "--api-key", sentinel(140)],  # argparse echoes unknown arguments
        ["check", "--root", str(tmp_path / f"api_key={sentinel(141)}")],
        ["check", "--config", str(tmp_path / ("hf_" + sentinel(142)) / "serve.sh")],
        ["cubins", str(tmp_path / ("hf_" + sentinel(143)))],
        ["explain", "--log", str(tmp_path / f"HF_TOKEN={sentinel(144)}.log")],
        ["facts", "--format", "json", "-o", str(tmp_path / ("sk-" + sentinel(145)) / "x.json")],
        ["plan", "--model", str(tmp_path / ("hf_" + sentinel(146)))],
        ["kernels", "--target", "sm_120", str(tmp_path / ("hf_" + sentinel(147)))],
        ["recommend", "--target", "sm_120", "--facts", str(tmp_path / ("hf_" + sentinel(148)) / "f.json")],
    ):
        code = main(argv)
        got = capsys.readouterr()
        assert code in (0, 1, 2, 3), argv
        outs.append((" ".join(argv), got.out + got.err))
    assert_clean(outs)


def test_a_running_vllm_server_is_read_without_its_secrets(planted, vllm_process, tmp_path, capsys, monkeypatch):
    """The live machine: a real process recognized as a vLLM server, and compose/script files in the cwd."""
    project = planted["configs"]["compose"].parent
    monkeypatch.chdir(project)
    outs = run_everywhere(["facts", "serve_configs", "environment"], "facts", tmp_path, capsys)
    outs += run_everywhere(["check", "-v", "--select", "serve", "--target", "sm_120"], "report", tmp_path, capsys)
    assert_clean(outs)
    main(["facts", "serve_configs", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    procs = [c for c in doc["facts"]["serve_configs"]["configs"] if c["name"] == f"pid {vllm_process.pid}"]
    assert procs, "the planted vLLM process was not found"
    proc = procs[0]
    names = {e["name"] for e in proc["env"]}
    assert names == {"HF_TOKEN", "VLLM_API_KEY", "VLLM_LOGGING_LEVEL"}, names  # no HOME, PATH, MY_PASSWORD
    assert {e["name"]: e["value"] for e in proc["env"]}["HF_TOKEN"] == "***"
    words = [t[0] for t in proc["argv"]]
    assert words[words.index("--api-key") + 1] == "***" and "--hf-token=***" in words and "8123" in words
    kinds = {c["kind"] for c in doc["facts"]["serve_configs"]["configs"]}
    assert {"compose", "shell"} <= kinds, kinds
