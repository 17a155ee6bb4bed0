"""Secret redaction for any text bwdoctor shows or writes: tokens, keys, passwords, credentials in URLs."""

from __future__ import annotations

import re

MASK = "***"

# NAME=value / NAME: value where NAME says it holds a secret (HF_TOKEN, OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY,
# DB_PASSWORD ...). The name is kept so a reader still sees which setting was present.
_NAMED = re.compile(
    r"""(?P<name>\b[A-Za-z0-9_.-]*(?:TOKEN(?![A-Za-z])|_KEY(?![A-Za-z])|APIKEY|SECRET|PASSWORD|PASSWD)[A-Za-z0-9_]*)
        (?P<sep>["']?\s*[=:]\s*)
        (?P<q>["']?)(?P<value>[^\s"',;}&]+)""",
    re.I | re.X,
)
# Known token shapes that show up without a name in front of them.
_SHAPES = [
    re.compile(r"\bhf_[A-Za-z0-9]{16,}"),  # Hugging Face
    re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{16,}"),  # OpenAI-style
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub
    re.compile(r"\bglpat-[A-Za-z0-9_-]{16,}"),  # GitLab
    re.compile(r"\bxox[abpsr]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
]
# scheme://user:password@host -> scheme://user:***@host
_URL_CRED = re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<pw>[^/\s@]+)(?P<at>@)", re.I)
# Authorization: Bearer xyz / --api-key xyz / --hf-token xyz
_BEARER = re.compile(r"(?P<pre>\b(?:Bearer|Basic|Authorization:\s*token)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.I)
_FLAG = re.compile(r"(?P<pre>--(?:api-key|hf-token|token|password|secret)[=\s]+)(?P<value>\S+)", re.I)


def _named(m: re.Match) -> str:
    if m.group("value") == MASK:
        return m.group(0)
    return f"{m.group('name')}{m.group('sep')}{m.group('q')}{MASK}"


def redact(text: str) -> str:
    """The text with secrets replaced by ***; everything else is left as it was."""
    if not text:
        return text
    out = _URL_CRED.sub(lambda m: m.group("pre") + MASK + m.group("at"), text)
    out = _FLAG.sub(lambda m: m.group("pre") + MASK, out)
    out = _BEARER.sub(lambda m: m.group("pre") + MASK, out)
    out = _NAMED.sub(_named, out)
    for shape in _SHAPES:
        out = shape.sub(MASK, out)
    return out


_SECRET_NAME = re.compile(
    r"(?:TOKEN(?![A-Za-z])|_KEY(?![A-Za-z])|^KEY$|APIKEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I
)


def is_secret_name(name: str) -> bool:
    """True for variable or key names that hold secrets (HF_TOKEN, OPENAI_API_KEY, *_SECRET, *PASSWORD)."""
    return bool(_SECRET_NAME.search(name or ""))


def redact_env(env: dict) -> dict:
    """A copy of an environment mapping: secret-named values masked, secrets inside other values redacted."""
    return {k: (MASK if is_secret_name(k) and v else redact(v) if isinstance(v, str) else v) for k, v in env.items()}


def redact_obj(obj):
    """A JSON-shaped value with every string redacted and values under secret-named keys masked."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret_name(k) and isinstance(v, str) and v else redact_obj(v))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj
