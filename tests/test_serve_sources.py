"""Serve-config readers: systemd Environment= in every form, and secrets masked where configs are read."""

from __future__ import annotations

import json
from pathlib import Path

from bwdoctor.cli import main
from bwdoctor.serve.readers import process_env_kept, read_config, read_process

UNIT = Path(__file__).parent / "fixtures" / "serve" / "systemd-unquoted" / "vllm.service"


def test_unquoted_systemd_environment_is_read_with_positions():
    """Environment=A=1 B=2 (the common form) was dropped; each assignment is now a variable at its column."""
    (c,) = read_config(str(UNIT), UNIT.read_bytes())
    env = [(e.name, e.value, e.line, e.column) for e in c.env]
    assert env == [
        ("CUDA_VISIBLE_DEVICES", "0,1", 11, 13),
        ("VLLM_ATTENTION_BACKEND", "FLASHINFER", 11, 38),
        ("HF_HOME", "/srv/hf", 12, 13),
        ("VLLM_LOGGING_LEVEL", "INFO", 12, 30),
        ("HF_TOKEN", "***", 13, 13),
        ("OMP_NUM_THREADS", "8", 14, 13),
    ]
    words = [t.text for t in c.argv]
    assert words[words.index("--api-key") + 1] == "***" and "unitfileplantedapikey0002" not in words
    assert words[words.index("--tensor-parallel-size") + 1] == "2"


def test_systemd_environment_edge_forms():
    unit = (
        "[Service]\n"
        "Environment=GONE=1\n"
        "Environment=\n"
        'Environment="A=x y" B=2 C= "D=4"\n'
        "Environment=lower_ok=1 1BAD=3 =4\n"
        "ExecStart=/usr/bin/vllm serve m --port ${B}\n"
    )
    (c,) = read_config("u.service", unit.encode())
    # an empty Environment= resets the list (systemd.exec(5)); invalid names are ignored
    assert [(e.name, e.value) for e in c.env] == [("A", "x y"), ("B", "2"), ("C", ""), ("D", "4"), ("lower_ok", "1")]
    assert [t.text for t in c.argv] == ["m", "--port", "2"]


def test_the_unquoted_unit_gives_its_finding_end_to_end(capsys):
    """Before: no finding (VLLM_ATTENTION_BACKEND was dropped). After: BW602 at the assignment's column."""
    main(["check", "--config", str(UNIT), "--vllm-version", "0.15.1", "--select", "BW602", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    (f,) = [f for f in doc["findings"] if f["status"] == "fail"]
    assert f["location"]["line"] == 11 and f["location"]["column"] == 38 and "VLLM_ATTENTION_BACKEND" in f["message"]
    assert "hf_unitfileplanted" not in json.dumps(doc) and "unitfileplantedapikey" not in json.dumps(doc)


def test_a_process_keeps_only_the_environment_checks_read():
    cmdline = b"\0".join([b"/usr/bin/python3", b"-m", b"vllm.entrypoints.openai.api_server", b"--api-key", b"k3y"])
    environ = b"\0".join(
        [
            b"HOME=/home/alice",
            b"PATH=/usr/bin",
            b"SSH_AUTH_SOCK=/tmp/agent",
            b"MY_PASSWORD=pw",
            b"HF_TOKEN=hf_secretsecretsecret0001",
            b"VLLM_ATTENTION_BACKEND=FLASHINFER",
            b"CUDA_VISIBLE_DEVICES=0",
            b"NCCL_P2P_DISABLE=1",
            b"LD_LIBRARY_PATH=/usr/local/cuda/lib64",
        ]
    )
    (c,) = read_process(cmdline, environ, "/proc/7/cmdline", "/proc/7/environ")
    assert {e.name: e.value for e in c.env} == {
        "HF_TOKEN": "***",
        "VLLM_ATTENTION_BACKEND": "FLASHINFER",
        "CUDA_VISIBLE_DEVICES": "0",
        "NCCL_P2P_DISABLE": "1",
        "LD_LIBRARY_PATH": "/usr/local/cuda/lib64",
    }
    assert [t.text for t in c.argv] == ["--api-key", "***"]
    assert not any(process_env_kept(n) for n in ("HOME", "PATH", "USER", "SSH_AUTH_SOCK", "MY_PASSWORD", "PWD"))


def test_every_reader_masks_at_the_source():
    compose = (
        "services:\n  v:\n    image: vllm/vllm-openai:v0.15.1\n"
        "    command: --model m --api-key c0mpose --hf-token=c0mpose2\n"
        "    environment:\n      - HF_TOKEN=c0mpose3\n      - VLLM_USE_V1=1\n"
    )
    k8s = (
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: v\n      image: vllm/vllm-openai\n"
        '      args: ["--api-key", "k8ssecret"]\n'
        "      env:\n        - name: VLLM_API_KEY\n          value: k8ssecret2\n"
    )
    shell = (
        'export HF_TOKEN=sh3ll\nK=sh3ll2\nvllm serve m --api-key "$K" --port 1 --model-loader-extra-config $HF_TOKEN\n'
    )
    dotenv = "HF_TOKEN=d0tenv\nVLLM_PORT=1\n"
    vyaml = "model: m\napi-key: vyam1\n"
    for name, text, kind in (
        ("c.yml", compose, None),
        ("k.yaml", k8s, None),
        ("s.sh", shell, None),
        (".env", dotenv, None),
        ("v.yaml", vyaml, "vllm-yaml"),
    ):
        configs = read_config(name, text.encode(), kind=kind)
        assert configs, name
        dumped = json.dumps([c.to_json() for c in configs])
        for secret in ("c0mpose", "k8ssecret", "sh3ll", "d0tenv", "vyam1"):
            assert secret not in dumped, (name, dumped)
        assert "***" in dumped, name
