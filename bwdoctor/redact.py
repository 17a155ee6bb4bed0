"""Redaction of secrets (tokens, keys, passwords) in every output."""
from __future__ import annotations

import re
from typing import Any

MASK = "***"
SECRET_NAME_RE = re.compile(r"(TOKEN|_KEY|KEY_|SECRET|PASSWORD|PASSWD|CREDENTIAL|^KEY$|APIKEY|API_KEY)", re.I)
_ASSIGN_RE = re.compile(
    r"(?P<name>\b[A-Za-z_][A-Za-z0-9_]*(?:TOKEN|_KEY|SECRET|PASSWORD|PASSWD|APIKEY)[A-Za-z0-9_]*)"
    r"(?P<sep>\s*[=:]\s*|\s+)(?P<q>[\"']?)(?P<val>[^\s\"']+)", re.I)
_FLAG_RE = re.compile(r"(?P<flag>--[a-z0-9-]*(?:token|api-key|secret|password)[a-z0-9-]*)(?P<sep>[= ]+)(?P<val>\S+)", re.I)
_URL_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]+):(?P<pw>[^/\s@]+)@", re.I)
_KNOWN_TOKEN_RE = re.compile(r"\b(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[baprs]-[A-Za-z0-9-]{10,})\b")


def is_secret_name(name: str) -> bool:
    """True for environment-variable or key names that hold secrets (HF_TOKEN, *_KEY, *_SECRET...)."""
    return bool(SECRET_NAME_RE.search(name))


def redact(text: str) -> str:
    """The text with secret values replaced by *** (assignments, flags, URL passwords, known token shapes)."""
    if not text:
        return text
    text = _URL_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _ASSIGN_RE.sub(lambda m: f"{m['name']}{m['sep']}{m['q']}{MASK}", text)
    text = _FLAG_RE.sub(lambda m: f"{m['flag']}{m['sep']}{MASK}", text)
    return _KNOWN_TOKEN_RE.sub(MASK, text)


def redact_env(env: dict) -> dict:
    """A copy of an environment mapping with secret values masked and secrets in other values redacted."""
    return {k: (MASK if is_secret_name(k) and v else redact(v)) for k, v in env.items()}


def redact_obj(obj: Any) -> Any:
    """Redact every string inside a JSON-shaped value, masking values under secret-looking keys."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, list):
        return [redact_obj(x) for x in obj]
    if isinstance(obj, dict):
        return {k: (MASK if isinstance(k, str) and is_secret_name(k) and isinstance(v, str) and v
                    else redact_obj(v)) for k, v in obj.items()}
    return obj
