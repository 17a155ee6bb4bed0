"""Secrets planted everywhere never come out: env, facts files, pasted error text, every format."""

import json

from conftest import H100_ROOT, run_cli

from bwdoctor.redact import redact, redact_env, redact_obj

TOKENS = {
    "HF_TOKEN": "hf_plantedplantedplantedplanted12",
    "OPENAI_API_KEY": "sk-plantedplantedplantedplanted34",
    "VLLM_API_KEY": "vllm-planted-secret-5678",
    "AWS_SECRET_ACCESS_KEY": "awsplantedsecret9012",
    "HUGGING_FACE_HUB_TOKEN": "hf_secondplantedsecondplanted56",
    "NCCL_SOCKET_IFNAME": "eth0",
    "PIP_INDEX_URL": "https://user:pl4ntedpass@pypi.example.org/simple",
}
SECRET_VALUES = ["plantedplanted", "vllm-planted-secret", "awsplantedsecret", "secondplanted", "pl4ntedpass"]


def leaked(text):
    return [s for s in SECRET_VALUES if s in text]


def test_redact_units():
    assert redact("export HF_TOKEN=hf_abcdefghijklmnopqrstu") == "export HF_TOKEN=***"
    assert redact("--api-key sk-123456 --port 8000") == "--api-key *** --port 8000"
    assert redact("https://u:p@host/x") == "https://u:***@host/x"
    assert redact_env({"X_TOKEN": "a", "PATH": "/bin"}) == {"X_TOKEN": "***", "PATH": "/bin"}
    assert redact_obj({"env": {"MY_SECRET": "v"}, "l": ["Bearer hf_aaaaaaaaaaaaaaaaaaaaaaaa"]}) == {
        "env": {"MY_SECRET": "***"},
        "l": ["Bearer ***"],
    }


def test_every_output_of_every_command(tmp_path):
    outs = []
    for args in (
        ("facts", "--format", "json"),
        ("facts", "--format", "rich"),
        ("check", "-v"),
        ("check", "--format", "json"),
        ("check", "--format", "sarif"),
        ("check", "--format", "junit"),
        ("check", "--format", "github"),
        ("prebuild", "--format", "json", "-v"),
    ):
        res = run_cli(*args, "--root", str(H100_ROOT), env=TOKENS)
        outs.append((args, res.stdout + res.stderr))
    facts = tmp_path / "f.json"
    run_cli("facts", "--format", "json", "-o", str(facts), env=TOKENS)
    assert not leaked(facts.read_text())
    # a facts file written elsewhere, with the secret in it, is redacted on the way out too
    doc = json.loads(facts.read_text())
    doc["facts"]["environment"]["HF_TOKEN"] = TOKENS["HF_TOKEN"]
    doc["facts"]["environment"]["NOTE"] = f"token {TOKENS['OPENAI_API_KEY']} in a value"
    facts.write_text(json.dumps(doc))
    res = run_cli("check", "--facts", str(facts), "--format", "json", "-v")
    outs.append(("replay", res.stdout))
    res = run_cli(
        "explain",
        "--format",
        "json",
        f"HF_TOKEN={TOKENS['HF_TOKEN']} vllm serve\nNVRM: RmInitAdapter failed! (0x22:0x56:884)",
    )
    outs.append(("explain", res.stdout))
    for args, text in outs:
        assert not leaked(text), (args, leaked(text))
