"""The normalized serve configuration every reader produces: argv tokens and env vars with locations."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..records import dataclass, field

SCHEMA = "bwdoctor.serve-config/1"
KINDS = ("systemd", "compose", "shell", "dotenv", "k8s", "vllm-yaml", "process")


@dataclass
class Token:
    """One argv word after quote removal and variable expansion, and where it was written.

    origin: where the value came from when it was expanded from a variable (VAR=value line), so a
    finding about a value points at the line a person edits.
    """

    text: str
    path: str
    line: int
    column: int
    origin: Optional[tuple] = None  # (path, line, column) of the variable definition

    @classmethod
    def from_json(cls, data, default_path: str) -> "Token":
        text, line, column = data[0], data[1], data[2]
        path = data[3] if len(data) > 3 and data[3] else default_path
        origin = tuple(data[4]) if len(data) > 4 and data[4] else None
        return cls(str(text), path, int(line), int(column), origin)


@dataclass
class EnvVar:
    """An environment variable the served process will see, and where it is set."""

    name: str
    value: str
    path: str
    line: int
    column: int

    def to_json(self) -> dict:
        return {"name": self.name, "value": self.value, "path": self.path, "line": self.line, "column": self.column}


@dataclass
class ServeConfig:
    """One vLLM launch: launcher, argv after it, env vars, and the file it came from.

    launcher: "vllm serve", "api_server" (python -m vllm.entrypoints.openai.api_server), "image"
    (a vllm-openai container whose entrypoint adds it), "config" (a --config YAML) or "" (env only).
    argv: the words after the launcher, each with its location.
    """

    path: str
    kind: str
    name: str = ""
    launcher: str = ""
    launcher_token: Optional[Token] = None
    argv: list = field(default_factory=list)
    env: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    includes: list = field(default_factory=list)  # ServeConfigs of --config YAML files it names
    model: Optional[dict] = None  # model facts read from a local --model directory, when readable
    prefix: list = field(default_factory=list)  # words before the launcher (numactl, taskset, docker run ...)
    settings: list = field(default_factory=list)  # EnvVars of launcher settings: compose cpuset, CPUAffinity=
    image: str = ""  # the container image that runs it (compose/k8s `image:`, a `docker run IMAGE` word)

    def env_map(self) -> dict:
        """{name: EnvVar}, later settings winning as they do at run time."""
        return {e.name: e for e in self.env}

    def to_json(self) -> dict:
        out: Dict[str, Any] = {
            "path": self.path,
            "kind": self.kind,
            "name": self.name,
            "launcher": self.launcher,
            "argv": [_tok_json(t, self.path) for t in self.argv],
            "env": [e.to_json() for e in self.env],
            "errors": list(self.errors),
        }
        if self.launcher_token:
            out["launcher_at"] = _tok_json(self.launcher_token, self.path)
        if self.includes:
            out["includes"] = [c.to_json() for c in self.includes]
        if self.model is not None:
            out["model"] = self.model
        if self.prefix:
            out["prefix"] = [_tok_json(t, self.path) for t in self.prefix]
        if self.settings:
            out["settings"] = [e.to_json() for e in self.settings]
        if self.image:
            out["image"] = self.image
        return out

    @classmethod
    def from_json(cls, data: dict) -> "ServeConfig":
        path = str(data.get("path", ""))
        cfg = cls(
            path=path,
            kind=str(data.get("kind", "")),
            name=str(data.get("name", "")),
            launcher=str(data.get("launcher", "")),
            argv=[Token.from_json(t, path) for t in data.get("argv", [])],
            env=[_env_from_json(e, path) for e in data.get("env", [])],
            errors=list(data.get("errors", [])),
            includes=[cls.from_json(c) for c in data.get("includes", [])],
            model=data.get("model"),
            prefix=[Token.from_json(t, path) for t in data.get("prefix", [])],
            settings=[_env_from_json(e, path) for e in data.get("settings", [])],
            image=str(data.get("image") or ""),
        )
        if data.get("launcher_at"):
            cfg.launcher_token = Token.from_json(data["launcher_at"], path)
        return cfg


def _env_from_json(e: dict, path: str) -> EnvVar:
    return EnvVar(
        str(e["name"]), str(e["value"]), str(e.get("path", path)), int(e.get("line", 1)), int(e.get("column", 1))
    )


def _tok_json(t: Token, default_path: str) -> list:
    """Token JSON without repeating the config's own path."""
    out = [t.text, t.line, t.column]
    if t.path != default_path or t.origin:
        out.append(t.path if t.path != default_path else "")
    if t.origin:
        out.append(list(t.origin))
    return out
