"""Secrets never reach output: named tokens/keys, known token shapes, URL passwords, bearer tokens."""

from __future__ import annotations

import pytest

from bwdoctor.redact import redact, redact_obj

SECRETS = [
    ("HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUv vllm serve m", "hf_AbCdEfGhIjKlMnOpQrStUv"),
    ('export OPENAI_API_KEY="sk-proj-abcdefghijklmnopqrstu"', "sk-proj-abcdefghijklmnopqrstu"),
    ("AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMIK7MDENGbPxRfiCY", "wJalrXUtnFEMIK7MDENGbPxRfiCY"),
    ("pip install -i https://alice:s3cr3tpass@pypi.corp.example/simple vllm", "s3cr3tpass"),
    ("Authorization: Bearer abcdef1234567890", "abcdef1234567890"),
    ("vllm serve m --api-key token-abc123", "token-abc123"),
    ('{"hf_token": "hf_zzzzzzzzzzzzzzzzzzzz"}', "hf_zzzzzzzzzzzzzzzzzzzz"),
    ("DB_PASSWORD=hunter2 ./run.sh", "hunter2"),
    (
        "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/x/y",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ),
    ("MY_SECRET=topsecretvalue", "topsecretvalue"),
]


@pytest.mark.parametrize("text,secret", SECRETS)
def test_secret_is_removed(text, secret):
    out = redact(text)
    assert secret not in out
    assert "***" in out


@pytest.mark.parametrize(
    "text",
    [
        "TOKENIZERS_PARALLELISM=false",
        "max_tokens=512 max_num_seqs=256",
        "Avg generation throughput: 32.4 tokens/s, GPU KV cache usage: 12.0%",
        "undefined symbol: _ZN3c104cuda9SetDeviceEi",
        "Tried to allocate 1.74 GiB. GPU 3 has a total capacity of 94.97 GiB",
    ],
)
def test_ordinary_text_is_unchanged(text):
    assert redact(text) == text


def test_names_are_kept_so_a_reader_knows_what_was_set():
    assert redact("HF_TOKEN=hf_abcdefghijklmnopqrstuvw").startswith("HF_TOKEN=")
    assert redact("https://bob:pw12345@host/x") == "https://bob:***@host/x"


def test_redact_obj_walks_nested_values():
    obj = {
        "env": {"HF_TOKEN": "x", "line": "HF_TOKEN=hf_abcdefghijklmnopqrstu"},
        "n": 3,
        "l": ["sk-abcdefghijklmnopqrstuv"],
    }
    out = redact_obj(obj)
    assert "hf_abcdefghijklmnopqrstu" not in str(out) and "sk-abcdefghijklmnopqrstuv" not in str(out)
    assert out["n"] == 3


def test_empty_and_none_like():
    assert redact("") == ""


def test_secret_names():
    from bwdoctor.redact import is_secret_name

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "KEY"):
        assert is_secret_name(name), name
    for name in ("TOKENIZERS_PARALLELISM", "CUDA_VISIBLE_DEVICES", "MAX_JOBS", "KEYBOARD", "PATH"):
        assert not is_secret_name(name), name


def test_redact_env_masks_secret_values_and_keeps_others():
    from bwdoctor.redact import redact_env

    env = {
        "HF_TOKEN": "hf_abc",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "PIP_INDEX_URL": "https://u:pw999@idx/simple",
        "TOKENIZERS_PARALLELISM": "false",
    }
    out = redact_env(env)
    assert out["HF_TOKEN"] == "***" and out["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert "pw999" not in out["PIP_INDEX_URL"] and out["TOKENIZERS_PARALLELISM"] == "false"
    assert redact_obj({"api_key": "plainvalue"}) == {"api_key": "***"}
