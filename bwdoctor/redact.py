"""The one redaction model: what counts as a secret, and how it is masked in text, argv and JSON documents.

Every output of every command passes through here at the edge (bwdoctor.render.safe), and the readers of
serve configs and process environments mask at the source too, so a secret never enters a fact.

Rules (each tested in tests/test_redact.py):
- secret-bearing NAMES (env vars, config keys, dict keys): a name whose last word is TOKEN, KEY, SECRET,
  PASSWORD, PASSWD, PASS, PWD, AUTH, BEARER, CREDENTIAL(S), APIKEY, PASSPHRASE, AUTHORIZATION, COOKIE (plural
  TOKENS / KEYS / SECRETS in UPPER_CASE names too), or that holds SECRET, PASSWORD, PASSWD, CREDENTIALS or
  APIKEY anywhere: HF_TOKEN, VLLM_API_KEY, AWS_SECRET_ACCESS_KEY, DB_PASS, REDIS_PWD, apiKey, hf_token.
  Not: quantities (MAX_/NUM_/..._PER_TOKEN, max_num_batched_tokens, --max-num-batched-tokens), TOKENIZERS_*,
  KEY_CACHE_DTYPE, CUDA_VISIBLE_DEVICES, PWD / OLDPWD (the working directory).
- values of secret-bearing FLAGS in any argv: --api-key, --hf-token, --token, --password, --*-key, --*-token,
  --*-password, --*-secret, --*-passwd, in `--flag=value` and `--flag value` form, in lists and inside
  command strings. A value that is only a variable reference ($VLLM_API_KEY, ${HF_TOKEN}) is kept: it names
  where the secret lives and is not one.
- NAME=value and NAME: value pairs in text where NAME is secret-bearing (.env, export, Environment=, -e).
- URL passwords (scheme://user:password@host), a token as a URL's whole user part (scheme://TOKEN@host),
  Bearer/Basic credentials, and token-shaped strings (hf_..., sk-..., ghp_/gho_/ghs_..., glpat-..., xox?-...,
  AKIA..., JWTs) wherever they appear.

The marker is always MASK ("***"): the name or flag in front of it is kept, so a reader still sees which
setting was present.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, List, Optional

from . import lazyre

MASK = "***"

# last word of a secret-bearing name
_SUFFIX_WORDS = frozenset(
    {
        "TOKEN",
        "KEY",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "AUTH",
        "BEARER",
        "CREDENTIAL",
        "CREDENTIALS",
        "APIKEY",
        "PASSPHRASE",
        "AUTHORIZATION",
        "COOKIE",
        "PRIVATEKEY",
        "ACCESSKEY",
        "SECRETKEY",
    }
)
# plural last words: secret in UPPER_CASE (env-style) names only; lower-case `tokens` / `kv_tokens` are counts
_PLURAL_WORDS = frozenset({"TOKENS", "KEYS", "SECRETS", "PASSWORDS"})
# words that make a name secret wherever they stand (AWS_SECRET_ACCESS_KEY, DB_PASSWORD_FILE)
_ANY_WORDS = frozenset({"SECRET", "SECRETS", "PASSWORD", "PASSWD", "CREDENTIALS", "APIKEY"})
# words that make TOKEN(S)/KEY(S) a quantity or a setting, not a credential
_QUANTITY_WORDS = frozenset(
    {
        "MAX",
        "MIN",
        "NUM",
        "COUNT",
        "TOTAL",
        "LIMIT",
        "PER",
        "BATCHED",
        "QUEUED",
        "SCHEDULED",
        "PROMPT",
        "NEW",
        "OUTPUT",
        "INPUT",
        "GENERATED",
        "SPEC",
        "ADAPTER",
        "THRESHOLD",
        "CACHE",
        "LOOKAHEAD",
    }
)
_NOT_SECRET = frozenset({"PWD", "OLDPWD"})  # the shell's working directories
# last words that are secret only after another word (DB_PASS, REDIS_PWD, API_AUTH): alone they are ordinary
_NEEDS_PREFIX = frozenset({"PASS", "PWD", "AUTH", "BEARER", "COOKIE"})
# names kept as they are although a word matches (the flag and setting are booleans)
_ALLOWED = frozenset({"ALLOW_CREDENTIALS", "NO_ALLOW_CREDENTIALS"})


def _words(name: str) -> List[str]:
    """Upper-case words of a name: HF_TOKEN, hf-token, hfToken and hf.token all give [HF, TOKEN]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if w]


def is_secret_name(name: str) -> bool:
    """True for a variable, key or flag name (without its dashes) that holds a secret."""
    if not name or not isinstance(name, str) or len(name) > 200:
        return False
    return _secret_name(name)


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    words = _words(name)
    if not words or "_".join(words) in _ALLOWED or name.upper() in _NOT_SECRET:
        return False
    if any(w in _QUANTITY_WORDS for w in words[:-1]) and words[-1] in ("TOKEN", "TOKENS", "KEY", "KEYS"):
        return False
    last = words[-1]
    if last in _SUFFIX_WORDS:
        return len(words) > 1 or last not in _NEEDS_PREFIX
    if last in _PLURAL_WORDS and not any(c.islower() for c in name):
        return True
    return any(w in _ANY_WORDS for w in words)


_FLAG_WORDS = frozenset({"KEY", "TOKEN", "PASSWORD", "PASSWD", "SECRET", "APIKEY", "PASSPHRASE", "AUTH"})


def is_secret_flag(flag: str) -> bool:
    """True for a command-line option whose value is a secret: --api-key, --hf-token, --*-password ..."""
    if not isinstance(flag, str) or not flag.startswith("--") or len(flag) > 200:
        return False
    return _secret_flag(flag)


@functools.lru_cache(maxsize=4096)
def _secret_flag(flag: str) -> bool:
    name = flag[2:].split("=", 1)[0]
    words = _words(name)
    if not words:
        return False
    if words[-1] not in _FLAG_WORDS:
        return _misspelled_flag_word(words[-1])  # --hf-tokn: the value is still the user's token
    return is_secret_name(name) or words[-1] == "AUTH"


_LONG_FLAG_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "APIKEY", "PASSPHRASE")


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b differ by exactly one insertion, deletion, substitution or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _misspelled_flag_word(word: str) -> bool:
    """A last word one typo away from a secret word (TOKN, PASWORD, SECERT), not a plural (TOKENS, SECRETS)."""
    if len(word) < 4 or (word.endswith("S") and word[:-1] in _FLAG_WORDS):
        return False
    return any(_one_edit(word, w) for w in _LONG_FLAG_WORDS)


def _is_reference(value: str) -> bool:
    """A value that only names a variable ($X, ${X}, "${X}"): where the secret lives, not the secret."""
    return bool(re.fullmatch(r"""["']?\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)["']?""", value))


# values that carry no secret: booleans and nothing (`api_key: null`, YAML `key: false`)
_TRIVIAL = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none", "nil", "''", '""'})


def _trivial(value: str) -> bool:
    return value.strip().strip("\"'").lower() in _TRIVIAL or value.strip() in _TRIVIAL


def _looks_like_flag(value: str) -> bool:
    return value.startswith("--") or bool(re.fullmatch(r"-[A-Za-z]{1,3}", value))


def mask_value(value: Any) -> Any:
    """MASK for a non-empty secret value; empty values and variable references stay (they reveal nothing)."""
    if value is None or isinstance(value, bool) or value == "":
        return value
    if isinstance(value, str) and _is_reference(value):
        return value
    return MASK


# -- text -------------------------------------------------------------------------------------------------
_QUOTED_OR_WORD = r"""(?:"[^"\n]*"|'[^'\n]*'|\[[^\]\n]*\]|\$\{[^}\s]*\}[^\s"',;}&<>|]*|[^\s"',;}&<>|]+)"""
_VALUE = lazyre.compile(_QUOTED_OR_WORD)
# NAME=value / NAME: value / "NAME": "value"; the name is checked by is_secret_name, then the value is read
_NAMED = lazyre.compile(r"""(?P<name>(?<![A-Za-z0-9_.-])[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>["']?[ \t]*[=:][ \t]*)""")
# --flag=value / --flag value; the flag is checked by is_secret_flag
_FLAG = lazyre.compile(r"(?P<name>(?<![A-Za-z0-9_-])--[A-Za-z0-9][A-Za-z0-9_.-]*)(?P<sep>=|[ \t]+)")
# Known token shapes that show up without a name in front of them.
_SHAPES = [
    lazyre.compile(r"\bhf_[A-Za-z0-9]{16,}"),  # Hugging Face
    lazyre.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"),  # OpenAI / Anthropic style
    lazyre.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub
    lazyre.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),  # GitHub fine-grained
    lazyre.compile(r"\bglpat-[A-Za-z0-9_-]{16,}"),  # GitLab
    lazyre.compile(r"\bxox[abpsr]-[A-Za-z0-9-]{10,}"),  # Slack
    lazyre.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    lazyre.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    lazyre.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
]
# scheme://user:password@host -> scheme://user:***@host
_URL_CRED = lazyre.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^/\s@]+)(?P<at>@)", re.I)
# scheme://TOKEN@host (a token as the whole user part, as git remotes and pip index URLs carry them) ->
# scheme://***@host. A plain user name (git@, ubuntu@, a short login) is left: only a user part of 16 or more
# characters that mixes letters and digits is taken for a credential.
_URL_TOKEN = lazyre.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://)(?P<user>[A-Za-z0-9._~%+-]{16,})(?P<at>@)", re.I)


def _url_token(m: re.Match) -> str:
    user = m.group("user")
    if any(c.isdigit() for c in user) and any(c.isalpha() for c in user):
        return m.group("pre") + MASK + m.group("at")
    return m.group(0)


# Authorization: Bearer xyz / Basic xyz / token xyz
_BEARER = lazyre.compile(
    r"(?P<pre>\b(?:Bearer|Basic|Authorization:\s*token)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.I
)


def _quoted_tail(text: str, m: re.Match, value: str) -> Optional[int]:
    """End of a value inside quotes that open before the name ("HF_TOKEN=a b" in a systemd unit)."""
    i = m.start("name")
    sep = m.group("sep")
    if "=" not in sep or "'" in sep or '"' in sep:
        return None
    if i > 0 and text[i - 1] in "\"'" and value[:1] not in "\"'":
        close = text.find(text[i - 1], m.end())
        if close >= 0 and "\n" not in text[m.end() : close]:
            return close
    return None


def _keep(value: str, sep: str, named: bool) -> bool:
    """Values that reveal nothing: empty, already masked, a $VARIABLE, a boolean, or the next flag."""
    if value.strip("\"'") in (MASK, "") or _is_reference(value) or _trivial(value):
        return True
    if named and sep.strip(" \t\"'") == ":" and _looks_like_flag(value):
        return True
    return not named and sep != "=" and _looks_like_flag(value)


def _sub_pairs(head: re.Pattern, text: str, secret: Any, named: bool) -> str:
    """Mask the value after every secret name (or flag) and its separator. Only a secret name reads its value,
    and a non-secret one gives up only itself, so `--port --api-key X` and `Environment="HF_TOKEN=X"` still
    reach the secret behind it, and the work stays linear in the text."""
    out: List[str] = []
    pos = 0
    while True:
        m = head.search(text, pos)
        if m is None:
            break
        v = _VALUE.match(text, m.end()) if secret(m.group("name")) else None
        if v is None or _keep(v.group(0), m.group("sep"), named):
            out.append(text[pos : m.end()])
            pos = m.end()
            continue
        value = v.group(0)
        q = value[0] if value[0] in "\"'" and len(value) > 1 and value[-1] == value[0] else ""
        end = _quoted_tail(text, m, value)
        out.append(text[pos : m.end()] + q + MASK + q)
        pos = end if end is not None else v.end()
    out.append(text[pos:])
    return "".join(out)


def redact(text: str) -> str:
    """The text with secrets replaced by MASK; everything else is left as it was."""
    if not text or not isinstance(text, str):
        return text
    # pure in the text: a report repeats the same paths, names and versions many times
    return _redact_short(text) if len(text) <= 4096 else _redact(text)


@functools.lru_cache(maxsize=16384)
def _redact_short(text: str) -> str:
    return _redact(text)


# What each rule needs to be present before it can match: most strings of a report (paths, package names,
# versions) hold none of it and are returned as they are, without running the rules.
_SHAPE_GATE = lazyre.compile(r"hf_|sk-|gh[pousr]_|github_pat_|glpat-|xox[abpsr]-|AKIA|ASIA|eyJ|-----BEGIN")
_BEARER_GATE = lazyre.compile(r"bearer|basic|authorization", re.I)
# every secret name holds one of these (each word of _SUFFIX_WORDS, _PLURAL_WORDS and _ANY_WORDS does, and a name's
# words are pieces of it): a string with none has no NAME=value pair to mask, whatever its = and : say
_NAME_GATE = lazyre.compile(r"token|key|secret|pass|pwd|auth|bearer|credential|cookie", re.I)


# What at least one rule needs, lower-cased, in one pattern of plain words (a case-insensitive pattern scans
# several times slower): most strings of a report (paths, names, versions, requirement lines) hold none of it
# and cost one scan. URL: "://"; flags and PEM blocks: "--"; Bearer/Basic/Authorization and every secret name
# word (_NAME_GATE); every token shape's fixed start (_SHAPE_GATE: gh[pousr]_ starts with "gh").
_ANY_GATE = re.compile(  # searched for every string of every document: compiled at once, called without a proxy
    "://|--|bearer|basic|" + _NAME_GATE.pattern + "|hf_|sk-|gh|github_pat_|glpat-|xox|akia|asia|eyj"
)


def _redact(text: str) -> str:
    if _ANY_GATE.search(text.lower()) is None:
        return text
    out = text
    if "://" in out:
        out = _URL_CRED.sub(lambda m: m.group("pre") + MASK + m.group("at"), out)
        out = _URL_TOKEN.sub(_url_token, out)
    if "--" in out:
        out = _sub_pairs(_FLAG, out, is_secret_flag, named=False)
    if _BEARER_GATE.search(out):
        out = _BEARER.sub(lambda m: m.group("pre") + MASK, out)
    if ("=" in out or ":" in out) and _NAME_GATE.search(out):
        out = _sub_pairs(_NAMED, out, is_secret_name, named=True)
    if _SHAPE_GATE.search(out):
        for shape in _SHAPES:
            out = shape.sub(MASK, out)
    return out


# -- argv ---------------------------------------------------------------------------------------------------
def redact_argv(argv: List[str]) -> List[str]:
    """An argv with the values of secret-bearing flags masked (both --flag=value and --flag value)."""
    out: List[str] = []
    mask_next = False
    for word in argv:
        if mask_next and not _looks_like_flag(word):
            out.append(mask_value(word))
            mask_next = False
            continue
        mask_next = False
        if is_secret_flag(word):
            if "=" in word:
                flag, value = word.split("=", 1)
                out.append(f"{flag}={mask_value(value)}")
            else:
                out.append(word)
                mask_next = True
            continue
        out.append(redact(word))
    return out


# -- environments -------------------------------------------------------------------------------------------
def redact_env(env: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of an environment mapping: secret-named values masked, secrets inside other values redacted."""
    return {k: (mask_value(v) if is_secret_name(k) else redact(v) if isinstance(v, str) else v) for k, v in env.items()}


# -- JSON documents -----------------------------------------------------------------------------------------
_PAIR_NAME_KEYS = ("name", "variable", "var", "key", "flag", "option", "env")
_PAIR_VALUE_KEYS = ("value", "values", "default", "current")


def _item_text(item: Any) -> Optional[str]:
    """The word of an argv entry: a string, or the first element of a [text, line, column] token."""
    if isinstance(item, str):
        return item
    if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
        return item[0]
    return None


def _mask_item(item: Any) -> Any:
    if isinstance(item, str):
        return mask_value(item)
    if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
        return [mask_value(item[0]), *[redact_obj(x) for x in item[1:]]]
    return item


def _mask_all(obj: Any) -> Any:
    """Every scalar below a secret-named key masked (a secret may be a number or a nested structure)."""
    if isinstance(obj, dict):
        return {k: _mask_all(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_mask_all(v) for v in obj]
    if obj is None or isinstance(obj, bool) or obj == "":
        return obj
    if isinstance(obj, str) and _is_reference(obj):
        return obj
    return MASK


def _redact_list(items: Any) -> list:
    out: list = []
    mask_next = False
    for item in items:
        text = _item_text(item)
        if mask_next and text is not None and not _looks_like_flag(text):
            out.append(_mask_item(item))
            mask_next = False
            continue
        mask_next = False
        if text is not None and is_secret_flag(text):
            if "=" in text:
                flag, value = text.split("=", 1)
                masked = f"{flag}={mask_value(value)}"
                out.append(masked if isinstance(item, str) else [masked, *[redact_obj(x) for x in item[1:]]])
            else:
                out.append(redact_obj(item))
                mask_next = True
            continue
        out.append(redact_obj(item))
    return out


def redact_obj(obj: Any) -> Any:
    """A JSON-shaped value with secrets masked, structure-aware: values under secret-named keys, the value of
    a {"name": SECRET_NAME, "value": ...} pair (k8s env, serve-config env), the word after a secret flag in
    any list (argv, [text, line, column] tokens), and every string through the text rules."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        pair_secret = any(
            isinstance(obj.get(k), str) and (is_secret_name(obj[k]) or is_secret_flag(obj[k])) for k in _PAIR_NAME_KEYS
        )
        out = {}
        for k, v in obj.items():
            key = redact(k) if isinstance(k, str) else k
            if isinstance(k, str) and is_secret_name(k):
                out[key] = _mask_all(v)
            elif pair_secret and k in _PAIR_VALUE_KEYS:
                out[key] = _mask_all(v)
            else:
                out[key] = redact_obj(v)
        return out
    if isinstance(obj, (list, tuple)):
        return _redact_list(obj)
    return obj
