"""Readers for where vLLM serve configs live, each giving ServeConfigs with a location per word.

Sources: shell scripts, systemd units, .env files, running processes (/proc/<pid>/cmdline), and —
in yamlreaders — docker-compose files, Kubernetes manifests and vLLM --config YAML files.
Every reader takes text (or bytes) already read, plus an optional `read(path) -> bytes` for files the
config names (EnvironmentFile=, env_file:, --config), so the probe decides what may be touched.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from typing import Callable, Optional

from bwdoctor.redact import MASK, is_secret_name, mask_value, redact, redact_argv
from bwdoctor.serve.config import EnvVar, ServeConfig, Token
from bwdoctor.serve.shellwords import Lexer, Var, assignment_value

from .. import lazyre

MAX_BYTES = 4 * 1024 * 1024  # a serve config is KBs; anything this big is not one
Reader = Optional[Callable[[str], bytes]]

API_SERVER_MODULES = ("vllm.entrypoints.openai.api_server", "vllm.entrypoints.api_server")
DECLARERS = ("export", "local", "declare", "readonly", "typeset")


def decode(data: bytes, path: str) -> tuple:
    """(text, errors) of a config file's bytes: refuse binary and huge files, flag non-UTF-8."""
    if len(data) > MAX_BYTES:
        return None, [f"{path}: {len(data)} bytes is too large for a serve config (limit {MAX_BYTES}); not read"]
    nul = data.find(b"\0")
    if nul >= 0:
        return None, [f"{path}: binary data (NUL byte at offset {nul}); not a text config, not read"]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", "replace"), [
            f"{path}: not valid UTF-8 (byte {exc.start}); undecodable bytes were replaced"
        ]


def resolve(base: str, name: str) -> str:
    """A path named inside a config, relative to that config's directory."""
    return name if name.startswith("/") else str(PurePosixPath(base).parent / name)


def launch_prefix(tokens: list, launcher_token) -> list:
    """The words before the launcher (numactl/taskset/docker run ...), which place the process."""
    for i, t in enumerate(tokens):
        if t is launcher_token:
            return list(tokens[: i - 1 if i and tokens[i - 1].text == "-m" else i])
    return []


def split_launch(tokens: list) -> Optional[tuple]:
    """(launcher, launcher token, argv tokens) if these words start vLLM's OpenAI server, else None."""
    if tokens and tokens[0].text in ("echo", "printf", "print", "log", "info"):
        return None
    for i, tok in enumerate(tokens):
        base = os.path.basename(tok.text)
        nxt = tokens[i + 1].text if i + 1 < len(tokens) else None
        if base == "vllm" and nxt == "serve":
            return "vllm serve", tok, tokens[i + 2 :]
        if tok.text == "-m" and nxt in API_SERVER_MODULES:
            return "api_server", tokens[i + 1], tokens[i + 2 :]
        if (
            tok.text == "-m"
            and nxt == "vllm.entrypoints.cli.main"
            and i + 2 < len(tokens)
            and tokens[i + 2].text == "serve"
        ):
            return "vllm serve", tokens[i + 1], tokens[i + 3 :]
        if "vllm-openai" in tok.text and i > 0 and os.path.basename(tokens[0].text) in ("docker", "podman"):
            return "image", tok, tokens[i + 1 :]
    return None


# -- shell scripts ---------------------------------------------------------------------------
def read_shell(text: str, path: str, env: Optional[dict] = None) -> list:
    """ServeConfigs of every vLLM launch in a shell script, with script variables expanded."""
    lx = Lexer(text, path, {k: Var(v, None, exported=True) for k, v in (env or {}).items()})
    exported: dict = {}
    out = []
    while True:
        words = lx.next_command()
        if words is None:
            break
        if not words:
            continue
        head = 0
        while head < len(words) and words[head].assign:
            head += 1
        declaring = head < len(words) and words[head].raw in DECLARERS
        prefix_env = {}
        for k, w in enumerate(words):
            if not w.assign or (k > head and not declaring):
                continue
            name, append = w.assign
            value, origin = assignment_value(w)
            items = list(w.tokens) if w.array else None
            old = lx.vars.get(name)
            if append and old is not None:
                value = old.value + value
                if items is not None:
                    items = (old.items or []) + items
            var = EnvVar(name, value, path, *w.at)
            if head == len(words) or declaring:  # plain assignment / export: later commands see it
                lx.vars[name] = Var(value, origin, items, exported=declaring and words[head].raw == "export")
                if declaring and words[head].raw == "export":
                    exported[name] = var
            else:
                prefix_env[name] = var
        if declaring and words[head].raw == "export":
            for w in words[head + 1 :]:
                if not w.assign and w.raw in lx.vars:  # export NAME (set earlier)
                    v = lx.vars[w.raw]
                    exported[w.raw] = EnvVar(w.raw, v.value, path, *w.at)
        tokens = [t for w in words[head:] for t in w.tokens]
        launch = split_launch(tokens)
        if launch:
            launcher, ltok, argv = launch
            env_vars = list(exported.values()) + list(prefix_env.values())
            out.append(
                ServeConfig(
                    path=path,
                    kind="shell",
                    launcher=launcher,
                    launcher_token=ltok,
                    argv=list(argv),
                    env=env_vars,
                    prefix=launch_prefix(tokens, ltok),
                    image=ltok.text if launcher == "image" else "",
                )
            )
    return out


# -- .env and EnvironmentFile= ---------------------------------------------------------------
DOTENV_RE = lazyre.compile(r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*(.*)$")


def parse_env_lines(text: str, path: str) -> list:
    """EnvVars of KEY=VALUE lines (quotes removed, comments and blank lines skipped)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("#", ";")) or not line.strip():
            continue
        m = DOTENV_RE.match(line)
        if not m:
            continue
        value = m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out.append(EnvVar(m.group(1), value, path, n, m.start(1) + 1))
    return out


def read_dotenv(text: str, path: str) -> list:
    """One env-only ServeConfig for a .env file (its variables reach vLLM through compose/systemd)."""
    return [ServeConfig(path=path, kind="dotenv", env=parse_env_lines(text, path))]


# -- systemd units ---------------------------------------------------------------------------
PLACEMENT_KEYS = ("CPUAffinity", "NUMAPolicy", "NUMAMask")  # [Service] keys that place the process on CPUs
SECTION_RE = lazyre.compile(r"^\s*\[([^\]]+)\]\s*$")
KEY_RE = lazyre.compile(r"^([A-Za-z][A-Za-z0-9]*)\s*=\s*", re.M)


def _systemd_env_words(text: str, path: str, start: int) -> list:
    """EnvVars of one Environment= value: any number of assignments, each quoted ("A=1 2") or not (A=1)."""
    lx = Lexer(text, path, systemd=True, pos=start)
    out = []
    words = lx.next_command() or []
    for w in words:
        if w.assign:  # unquoted NAME=value: the lexer has split the name off; the tokens are the value
            name, _append = w.assign
            value = " ".join(t.text for t in w.tokens)
            out.append(EnvVar(name, value, path, *w.at))
            continue
        for tok in w.tokens:
            if "=" in tok.text:
                name, value = tok.text.split("=", 1)
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    continue  # systemd ignores an assignment whose name is not valid
                col = tok.column + (1 if w.raw[:1] in "\"'" else 0)
                out.append(EnvVar(name, value, path, tok.line, col))
    return out


def read_systemd(text: str, path: str, read: Reader = None) -> list:
    """ServeConfigs of a unit's ExecStart= lines that start vLLM, with Environment= and EnvironmentFile=."""
    env: list = []
    errors: list = []
    settings: list = []
    execs = []
    section = ""
    for m in re.finditer(r"^[^\n]*", text, re.M):
        line = m.group(0)
        sec = SECTION_RE.match(line)
        if sec:
            section = sec.group(1)
            continue
        km = KEY_RE.match(line)
        if not km or section != "Service":
            continue
        key, value_start = km.group(1), m.start() + km.end()
        if key == "Environment":
            if not line[km.end() :].strip():  # an empty Environment= resets the assignments made before it
                env = [e for e in env if e.path != path]
                continue
            env.extend(_systemd_env_words(text, path, value_start))
        elif key == "EnvironmentFile":
            name = line[km.end() :].strip()
            optional = name.startswith("-")
            name = name.lstrip("-")
            if read is None:
                continue
            try:
                body, errs = decode(read(name), name)
            except OSError as exc:
                if not optional:
                    errors.append(f"{path}: EnvironmentFile={name} could not be read: {exc.strerror or exc}")
                continue
            errors.extend(errs)
            if body is not None:
                env.extend(parse_env_lines(body, name))
        elif key == "ExecStart":
            execs.append(value_start)
        elif key in PLACEMENT_KEYS:
            value = line[km.end() :].strip()
            settings.append(EnvVar(key, value, path, text.count("\n", 0, m.start()) + 1, km.end() + 1))
    out = []
    for start in execs:
        lx = Lexer(text, path, {e.name: Var(e.value, (e.path, e.line, e.column)) for e in env}, systemd=True, pos=start)
        words = lx.next_command() or []
        tokens = [t for w in words for t in w.tokens]
        if tokens and tokens[0].text[:1] in "-@+!:":  # systemd's executable prefixes
            tokens[0] = Token(tokens[0].text.lstrip("-@+!:"), path, tokens[0].line, tokens[0].column + 1)
        launch = split_launch(tokens)
        if launch:
            launcher, ltok, argv = launch
            out.append(
                ServeConfig(
                    path=path,
                    kind="systemd",
                    name=PurePosixPath(path).name,
                    launcher=launcher,
                    launcher_token=ltok,
                    argv=list(argv),
                    env=list(env),
                    errors=list(errors),
                    prefix=launch_prefix(tokens, ltok),
                    settings=list(settings),
                )
            )
    if not out and errors:
        out.append(ServeConfig(path=path, kind="systemd", env=list(env), errors=errors))
    return out


# -- running processes -----------------------------------------------------------------------
# What the serve checks read of a running server's environment; the rest of /proc/<pid>/environ (HOME, PATH,
# USER, SSH_*, every credential) is never kept.
PROCESS_ENV_PREFIXES = (
    "VLLM_",
    "CUDA_",
    "NCCL_",
    "TORCH_",
    "PYTORCH_",
    "TRITON_",
    "NVIDIA_",
    "HF_",
    "HUGGING_FACE_",
    "TRANSFORMERS_",
    "FLASHINFER_",
    "GLOO_",
)
PROCESS_ENV_NAMES = ("LD_LIBRARY_PATH", "LD_PRELOAD", "OMP_NUM_THREADS")


def process_env_kept(name: str) -> bool:
    """True for the environment variables of a running server that checks need."""
    return name in PROCESS_ENV_NAMES or name.startswith(PROCESS_ENV_PREFIXES)


def read_process(cmdline: bytes, environ: bytes, cmdline_path: str, environ_path: str) -> list:
    """A ServeConfig of a running vLLM process; the column of a word is its byte offset in cmdline + 1."""
    tokens, offset = [], 0
    for raw in cmdline.split(b"\0"):
        if raw:
            tokens.append(Token(raw.decode("utf-8", "replace"), cmdline_path, 1, offset + 1))
        offset += len(raw) + 1
    launch = split_launch(tokens)
    if not launch:
        return []
    env, offset = [], 0
    for raw in environ.split(b"\0"):
        text = raw.decode("utf-8", "replace")
        if "=" in text:
            name, value = text.split("=", 1)
            if process_env_kept(name):
                env.append(EnvVar(name, value, environ_path, 1, offset + 1))
        offset += len(raw) + 1
    launcher, ltok, argv = launch
    pid = PurePosixPath(cmdline_path).parent.name
    return [
        mask_secrets(
            ServeConfig(
                path=cmdline_path,
                kind="process",
                name=f"pid {pid}",
                launcher=launcher,
                launcher_token=ltok,
                argv=list(argv),
                env=env,
                prefix=launch_prefix(tokens, ltok),
            )
        )
    ]


# -- secrets ---------------------------------------------------------------------------------
def _masked_token(tok: Token, text: str) -> Token:
    return Token(text, tok.path, tok.line, tok.column, tok.origin)


def mask_secrets(cfg: ServeConfig) -> ServeConfig:
    """The config with every secret masked at the source (bwdoctor.redact): values of secret-named variables,
    the value after a secret flag (--api-key X, --hf-token=X), and secrets inside any other word, so none
    reaches facts.serve_configs, a finding or a report. Names and flags stay, so checks still see what is set."""
    planted = sorted({e.value for e in cfg.env if is_secret_name(e.name) and len(e.value) >= 4}, key=len, reverse=True)
    for e in cfg.env:
        e.value = mask_value(e.value) if is_secret_name(e.name) else redact(e.value)
    words = [t.text for t in cfg.argv]
    for value in planted:  # a secret variable expanded into any word ($HF_TOKEN as a positional, in a JSON value)
        words = [w.replace(value, MASK) for w in words]
    masked = redact_argv(words)
    cfg.argv = [t if t.text == m else _masked_token(t, m) for t, m in zip(cfg.argv, masked, strict=True)]
    before = [t.text for t in cfg.prefix]  # docker run -e HF_TOKEN=... before the image
    for value in planted:
        before = [w.replace(value, MASK) for w in before]
    cfg.prefix = [
        t if t.text == m else _masked_token(t, m) for t, m in zip(cfg.prefix, redact_argv(before), strict=True)
    ]
    for e in cfg.settings:
        e.value = redact(e.value)
    if cfg.launcher_token is not None:
        cfg.launcher_token = _masked_token(cfg.launcher_token, redact(cfg.launcher_token.text))
    cfg.errors = [redact(e) for e in cfg.errors]
    cfg.includes = [mask_secrets(c) for c in cfg.includes]
    return cfg


# -- dispatch --------------------------------------------------------------------------------
def detect_kind(path: str, text: str) -> str:
    """The kind of a config file from its name, then its content."""
    name = PurePosixPath(path).name.lower()
    if (
        name.endswith((".service", ".service.native", ".service.workaround"))
        or ".service." in name
        or re.search(r"^\s*\[Service\]\s*$", text, re.M)
    ):
        return "systemd"
    if name == ".env" or name.endswith(".env") or name.startswith(".env"):
        return "dotenv"
    if name.endswith((".yaml", ".yml")):
        if re.search(r"^services\s*:", text, re.M):
            return "compose"
        if re.search(r"^\s*(apiVersion|kind)\s*:", text, re.M) or re.search(r"containers\s*:", text):
            return "k8s"
        return "vllm-yaml"
    return "shell"


def read_config(path: str, data: bytes, read: Reader = None, kind: Optional[str] = None) -> list:
    """ServeConfigs in one file; never raises: a file that cannot be read gives one with an error."""
    text, errors = decode(data, path)
    if text is None:
        return [ServeConfig(path=path, kind=kind or "shell", errors=errors)]
    kind = kind or detect_kind(path, text)
    try:
        if kind == "systemd":
            configs = read_systemd(text, path, read)
        elif kind == "dotenv":
            configs = read_dotenv(text, path)
        elif kind in ("compose", "k8s", "vllm-yaml"):
            from bwdoctor.serve import yamlreaders

            configs = {
                "compose": yamlreaders.read_compose,
                "k8s": yamlreaders.read_k8s,
                "vllm-yaml": yamlreaders.read_vllm_yaml,
            }[kind](text, path, read)
        else:
            configs = read_shell(text, path)
    except RecursionError:
        configs = [ServeConfig(path=path, kind=kind, errors=[f"{path}: nesting too deep to read"])]
    except Exception as exc:  # noqa: BLE001 - a reader bug must become a message, not a traceback
        configs = [
            ServeConfig(
                path=path, kind=kind, errors=[f"{path}: could not be parsed as {kind}: {type(exc).__name__}: {exc}"]
            )
        ]
    for c in configs:
        c.errors[:0] = errors
    return [mask_secrets(c) for c in configs]
