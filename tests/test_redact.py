"""Secrets never reach output: named tokens/keys, known token shapes, URL passwords, bearer tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from bwdoctor.redact import is_secret_flag, redact, redact_argv, redact_obj

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


# -- the one model: names, flags, argv, documents ------------------------------------------------------------
SECRET_NAMES = [
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "VLLM_API_KEY",
    "OPENAI_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "S3_SECRET_ACCESS_KEY",
    "GITHUB_TOKENS",
    "API_KEYS",
    "MY_SECRET",
    "CLIENT_SECRETS",
    "DB_PASSWORD",
    "DB_PASSWORD_FILE",
    "MYSQL_PASSWD",
    "DB_PASS",
    "REDIS_PWD",
    "PROXY_AUTH",
    "SERVICE_BEARER",
    "AZURE_CREDENTIALS",
    "GOOGLE_APPLICATION_CREDENTIAL",
    "SSH_PASSPHRASE",
    "apiKey",
    "hfToken",
    "hf_token",
    "api-key",
    "token",
    "KEY",
    "Authorization",
]
PLAIN_NAMES = [
    "CUDA_VISIBLE_DEVICES",
    "NCCL_IB_GID_INDEX",
    "TOKENIZERS_PARALLELISM",
    "KEY_CACHE_DTYPE",
    "kv_cache_dtype",
    "max_num_batched_tokens",
    "MAX_NUM_BATCHED_TOKENS",
    "VLLM_MAX_BAD_WORDS_TOTAL_TOKENS",
    "VLLM_MULTI_STREAM_GEMM_TOKEN_THRESHOLD",
    "kv_bytes_per_token",
    "max_tokens",
    "kv_tokens",
    "tokens",
    "PWD",
    "OLDPWD",
    "PASS",
    "SSH_AUTH_SOCK",
    "S3_ACCESS_KEY_ID",
    "KEYBOARD",
    "allow_credentials",
    "PATH",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_bearing_names(name):
    from bwdoctor.redact import is_secret_name

    assert is_secret_name(name)
    assert redact(f"{name}=s3cretvalue9") == f"{name}=***"


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_names_that_stay_visible(name):
    from bwdoctor.redact import is_secret_name

    assert not is_secret_name(name)
    assert redact(f"{name}=8192") == f"{name}=8192"


def test_no_vllm_flag_or_variable_is_masked_but_the_secret_ones():
    """Every flag and environment variable of every scanned vLLM release: only the credentials are secrets."""
    import json
    from importlib import resources

    from bwdoctor.redact import is_secret_flag, is_secret_name

    data = json.loads(resources.files("bwdoctor.data").joinpath("vllm_releases.json").read_text())
    flags = [f for f in list(data["flags"]) + list(data["negations"]) if is_secret_flag(f)]
    assert sorted(flags) == ["--api-key", "--hf-token"]
    assert sorted(n for n in data["env"] if is_secret_name(n)) == ["S3_SECRET_ACCESS_KEY", "VLLM_API_KEY"]
    for flag in data["flags"]:
        if flag not in ("--api-key", "--hf-token"):
            assert redact(f"vllm serve m {flag} 8192") == f"vllm serve m {flag} 8192", flag


@pytest.mark.parametrize(
    "text,expected",
    [
        ("vllm serve m --api-key abc --port 1", "vllm serve m --api-key *** --port 1"),
        (
            "vllm serve m --hf-token=hf_x --max-num-batched-tokens 8192",
            "vllm serve m --hf-token=*** --max-num-batched-tokens 8192",
        ),
        ("--disable-log-requests --api-key sekrit", "--disable-log-requests --api-key ***"),
        (
            "--db-password 'two words' --x-secret=y --my-token t --ssl-keyfile k.pem",
            "--db-password '***' --x-secret=*** --my-token *** --ssl-keyfile k.pem",
        ),
        ("--api-key $VLLM_API_KEY --hf-token ${HF_TOKEN}", "--api-key $VLLM_API_KEY --hf-token ${HF_TOKEN}"),
        ("--allow-credentials --api-key --port 8000", "--allow-credentials --api-key --port 8000"),
        ('Environment="HF_TOKEN=abc def" "X=1"', 'Environment="HF_TOKEN=***" "X=1"'),
        ("Environment=HF_TOKEN=abc VLLM_API_KEY=zzz", "Environment=HF_TOKEN=*** VLLM_API_KEY=***"),
        ("export OPENAI_API_KEY='a b c'", "export OPENAI_API_KEY='***'"),
        ("docker run -e HF_TOKEN=abc vllm/vllm-openai", "docker run -e HF_TOKEN=*** vllm/vllm-openai"),
        (
            "non-default args: {'api_key': ['k1', 'k2'], 'max_num_batched_tokens': 8192}",
            "non-default args: {'api_key': ***, 'max_num_batched_tokens': 8192}",
        ),
        ("YAML 'key: false' dropped", "YAML 'key: false' dropped"),
        ("AKIAABCDEFGHIJKLMNOP", "***"),
    ],
)
def test_text_rules(text, expected):
    assert redact(text) == expected


def test_redact_argv_both_forms():
    from bwdoctor.redact import redact_argv

    argv = ["vllm", "serve", "m", "--api-key", "k1", "--hf-token=k2", "--port", "8000", "--x-password", "--y"]
    assert redact_argv(argv) == [
        "vllm",
        "serve",
        "m",
        "--api-key",
        "***",
        "--hf-token=***",
        "--port",
        "8000",
        "--x-password",
        "--y",
    ]


def test_redact_obj_is_structure_aware():
    doc = {
        "argv": [["--api-key", 4, 2], ["k1", 4, 12], ["--port", 4, 20], ["8000", 4, 27]],
        "args": ["--hf-token", "k2", "--max-num-batched-tokens", "8192"],
        "env": [{"name": "HF_TOKEN", "value": "k3"}, {"name": "VLLM_PORT", "value": "8000"}],
        "environment": {"VLLM_API_KEY": "k4", "CUDA_VISIBLE_DEVICES": "0"},
        "credentials": {"user": "u", "nested": ["k5", 7]},
        "api_key": 123456,
        "evidence": {"variable": "OPENAI_API_KEY", "value": "k6"},
        "kv_tokens": 1024,
    }
    out = redact_obj(doc)
    assert out["argv"] == [["--api-key", 4, 2], ["***", 4, 12], ["--port", 4, 20], ["8000", 4, 27]]
    assert out["args"] == ["--hf-token", "***", "--max-num-batched-tokens", "8192"]
    assert out["env"] == [{"name": "HF_TOKEN", "value": "***"}, {"name": "VLLM_PORT", "value": "8000"}]
    assert out["environment"] == {"VLLM_API_KEY": "***", "CUDA_VISIBLE_DEVICES": "0"}
    assert out["credentials"] == {"user": "***", "nested": ["***", "***"]}
    assert out["api_key"] == "***" and out["evidence"]["value"] == "***" and out["kv_tokens"] == 1024


def test_kb_articles_and_logs_pass_unchanged():
    """The text rules leave every shipped article and captured vLLM log as written (no false positives)."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    texts = sorted((root / "kb").glob("*.md")) + sorted((root / "tests/fixtures/capacity/logs").glob("*.log"))
    assert len(texts) > 20
    for path in texts:
        text = path.read_text(encoding="utf-8")
        assert redact(text) == text, path.name


def test_a_token_as_the_whole_user_part_of_a_url_is_masked_but_a_login_name_is_not():
    # a git remote or pip index URL can carry a bare token where the user name goes (no "user:" part)
    for url in (
        "https://abcdef0123456789abcdef0123456789abcd@github.com/org/repo.git",
        "https://x9Y8z7W6v5U4t3S2r1Q0@pypi.corp.example/simple",
    ):
        out = redact(f"git remote -v: origin {url} (fetch)")
        assert "@github.com" in out or "@pypi.corp.example" in out
        assert url.split("//")[1].split("@")[0] not in out
    for kept in ("ssh://git@github.com/org/repo", "https://ubuntu@host/x", "https://registry-mirror-user@h/x"):
        assert redact(kept) == kept


def test_a_misspelled_secret_flag_still_hides_its_value_but_real_option_names_are_untouched():
    line = "vllm serve m --hf-tokn hf_abc --api-secert s3cr3tvalue --db-pasword pw1 --max-num-batched-tokens 8192"
    out = redact(line)
    for value in ("hf_abc", "s3cr3tvalue", "pw1"):
        assert value not in out, value
    assert "--max-num-batched-tokens 8192" in out
    assert redact_argv(["vllm", "serve", "--hf-toekn", "abcdef123"])[-1] == "***"
    # every option vLLM has ever shipped: only the two that really carry a secret are taken for secret flags
    import json
    import re

    from bwdoctor import data

    text = json.dumps(json.loads((Path(data.__file__).parent / "vllm_releases.json").read_text()))
    flags = set(re.findall(r"--[a-z0-9][a-z0-9-]+", text))
    assert len(flags) > 300
    assert sorted(f for f in flags if is_secret_flag(f)) == ["--api-key", "--hf-token"]


def _every_rule(text: str) -> str:
    """redact's rules run on every string, without the gates that skip strings that cannot match a rule."""
    from bwdoctor import redact as r

    out = r._URL_CRED.sub(lambda m: m.group("pre") + r.MASK + m.group("at"), text)
    out = r._URL_TOKEN.sub(r._url_token, out)
    out = r._sub_pairs(r._FLAG, out, r.is_secret_flag, named=False)
    out = r._BEARER.sub(lambda m: m.group("pre") + r.MASK, out)
    out = r._sub_pairs(r._NAMED, out, r.is_secret_name, named=True)
    for shape in r._SHAPES:
        out = shape.sub(r.MASK, out)
    return out


_PIECES = [
    "HF_TOKEN",
    "api_key",
    "--api-key",
    "--hf-tokn",
    "--port",
    "=",
    ": ",
    " ",
    "\n",
    '"',
    "'",
    "://",
    "@",
    "https",
    "user",
    "hf_abcdefghijklmnopqrstu",
    "sk-abcdefghijklmnopqrstuv",
    "AKIAABCDEFGHIJKLMNOP",
    "Bearer ",
    "Authorization: token ",
    "abc123def456ghi789jk",
    "/usr/lib/libcuda.so.1",
    "2.11.0+cu130",
    "eyJhbGciOiJI.eyJzdWIiOjE.c2lnbmF0dXJl",
    "-----BEGIN RSA PRIVATE KEY-----",
    "x",
    "${HF_TOKEN}",
    "true",
    "-",
    ":",
    "hfToken",
    "DB_PASS",
    "PGPASSWORD",
    "x-auth",
    "session_cookie",
    "Credentials",
    "MAX_TOKENS",
    "extra == ",
    "sys_platform",
]


@pytest.mark.parametrize("seed", range(40))
def test_the_gates_never_change_what_is_masked(seed):
    """Skipping the rules a string cannot match is only a shortcut: the result is the same as running them all."""
    import random

    rng = random.Random(seed)
    for _ in range(250):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 14)))
        assert redact(text) == _every_rule(text), text


def test_name_gate_holds_every_secret_word():
    """The NAME=value rule is skipped for a string without a gate word: sound only while every word that makes a
    name secret holds one (a word added to the lists without one would be skipped)."""
    from bwdoctor import redact as r

    for word in r._SUFFIX_WORDS | r._PLURAL_WORDS | r._ANY_WORDS:
        assert r._NAME_GATE.search(word), word
