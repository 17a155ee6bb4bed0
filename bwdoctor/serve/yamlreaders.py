"""Readers for YAML serve configs: docker-compose, Kubernetes manifests, vLLM --config files.

PyYAML's compose API (nodes, no object construction, so no tags are executed) gives each scalar its
line and column; words inside a string command are placed by the shell lexer relative to it.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from bwdoctor.serve.config import EnvVar, ServeConfig, Token
from bwdoctor.serve.readers import Reader, decode, launch_prefix, parse_env_lines, resolve, split_launch
from bwdoctor.serve.shellwords import Lexer, Var

try:
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode
except ImportError:  # pragma: no cover - PyYAML is a declared dependency
    yaml = None  # type: ignore[assignment]

INTERP_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def compose_documents(text: str, path: str) -> list:
    """Root nodes of every YAML document; raises ValueError with file:line for bad YAML."""
    if yaml is None:
        raise ValueError("PyYAML is not installed; YAML configs cannot be read")
    try:
        return [d for d in yaml.compose_all(text, Loader=yaml.SafeLoader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ValueError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None


def get(node, key: str):
    """Value node of `key` in a mapping node, or None."""
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return v
    return None


def items(node) -> list:
    """(key node, value node) pairs of a mapping node."""
    return list(node.value) if isinstance(node, MappingNode) else []


def at(node) -> tuple:
    """(line, column) 1-based of a node, inside the quotes of a quoted scalar."""
    quoted = isinstance(node, ScalarNode) and node.style in ("'", '"')
    return node.start_mark.line + 1, node.start_mark.column + 1 + int(quoted)


def interpolate(value: str, variables: dict) -> str:
    """Compose-style ${VAR}, ${VAR:-default}, $VAR from the project's .env (unknown ones kept)."""

    def sub(m):
        name = m.group(1) or m.group(3)
        if name in variables and variables[name] != "":
            return variables[name]
        return m.group(2) if m.group(2) is not None else m.group(0)

    return INTERP_RE.sub(sub, value.replace("$$", "\0")).replace("\0", "$")


def scalar_words(node, path: str, text: str, variables: dict) -> list:
    """Tokens of a string-form command: shell-split, each placed at its line/column in the file."""
    value = interpolate(node.value, variables)
    lx = Lexer(value, path)
    words: list = []
    while True:
        cmd = lx.next_command()
        if cmd is None:
            break
        words.extend(t for w in cmd for t in w.tokens)
    line0, col0 = at(node)
    single_line = node.end_mark.line == node.start_mark.line and node.style in (None, "'", '"')
    out, search = [], node.start_mark.index
    for t in words:
        if single_line and value == node.value:
            out.append(Token(t.text, path, line0, col0 + t.column - 1))
            continue
        found = text.find(t.text, search, node.end_mark.index + 1) if t.text else -1
        if found >= 0:
            search = found + len(t.text)
            line = text.count("\n", 0, found) + 1
            out.append(Token(t.text, path, line, found - text.rfind("\n", 0, found)))
        else:
            out.append(Token(t.text, path, line0, col0))
    return out


def command_tokens(node, path: str, text: str, variables: dict) -> list:
    """Tokens of a command/args/entrypoint node given as a list or as a string."""
    if isinstance(node, SequenceNode):
        return [Token(interpolate(n.value, variables), path, *at(n)) for n in node.value if isinstance(n, ScalarNode)]
    if isinstance(node, ScalarNode) and node.value:
        return scalar_words(node, path, text, variables)
    return []


def shell_c(tokens: list) -> list:
    """Words of `sh -c "vllm serve ..."`: the script string re-split, placed relative to its token."""
    for i, t in enumerate(tokens[:-1]):
        if t.text == "-c" and PurePosixPath(tokens[0].text).name in ("sh", "bash", "dash", "zsh"):
            script = tokens[i + 1]
            lx = Lexer(script.text, script.path)
            words: list = []
            while (cmd := lx.next_command()) is not None:
                words.extend(tk for w in cmd for tk in w.tokens)
            return [
                Token(
                    w.text,
                    script.path,
                    script.line + w.line - 1,
                    (script.column + w.column - 1) if w.line == 1 else w.column,
                )
                for w in words
            ]
    return tokens


def env_nodes(node, path: str, variables: dict) -> list:
    """EnvVars of a compose `environment:` (map or list of KEY=VALUE) or a k8s `env:` list."""
    out = []
    if isinstance(node, MappingNode):
        for k, v in items(node):
            value = v.value if isinstance(v, ScalarNode) and v.value is not None else ""
            out.append(EnvVar(k.value, interpolate(str(value), variables), path, *at(k)))
    elif isinstance(node, SequenceNode):
        for n in node.value:
            if isinstance(n, ScalarNode) and "=" in n.value:
                name, value = n.value.split("=", 1)
                out.append(EnvVar(name, interpolate(value, variables), path, *at(n)))
            elif isinstance(n, MappingNode) and get(n, "name") is not None:
                name_node, value_node = get(n, "name"), get(n, "value")
                value = value_node.value if isinstance(value_node, ScalarNode) else ""
                out.append(EnvVar(name_node.value, value, path, *at(name_node)))
    return out


def _read_env_file(name: str, base: str, read: Reader, errors: list, required: bool = True) -> list:
    if read is None:
        return []
    full = resolve(base, name)
    try:
        text, errs = decode(read(full), full)
    except OSError as exc:
        if required:
            errors.append(f"{base}: env file {name} could not be read: {exc.strerror or exc}")
        return []
    errors.extend(errs)
    return parse_env_lines(text, full) if text is not None else []


def read_compose(text: str, path: str, read: Reader = None) -> list:
    """A ServeConfig per compose service that runs vLLM (vllm-openai image or a vllm command)."""
    errors: list = []
    dotenv = {e.name: e.value for e in _read_env_file(".env", path, read, errors, required=False)}
    out = []
    for doc in compose_documents(text, path):
        for svc_key, svc in items(get(doc, "services")):
            image = get(svc, "image")
            image = image.value if isinstance(image, ScalarNode) else ""
            entry = command_tokens(get(svc, "entrypoint"), path, text, dotenv)
            cmd = command_tokens(get(svc, "command"), path, text, dotenv)
            env: list = []
            errs: list = []
            ef = get(svc, "env_file")
            for n in [ef] if isinstance(ef, ScalarNode) else ef.value if isinstance(ef, SequenceNode) else []:
                if isinstance(n, ScalarNode):
                    env.extend(_read_env_file(n.value, path, read, errs))
                elif isinstance(n, MappingNode) and isinstance(get(n, "path"), ScalarNode):
                    req = get(n, "required")
                    env.extend(
                        _read_env_file(
                            get(n, "path").value,
                            path,
                            read,
                            errs,
                            required=not (isinstance(req, ScalarNode) and req.value == "false"),
                        )
                    )
            env.extend(env_nodes(get(svc, "environment"), path, dotenv))
            cfg = _launch(path, "compose", svc_key.value, shell_c(entry + cmd), image, env, errors + errs)
            if cfg:
                cpuset = get(svc, "cpuset")
                if isinstance(cpuset, ScalarNode):
                    cfg.settings.append(EnvVar("cpuset", interpolate(cpuset.value, dotenv), path, *at(cpuset)))
                out.append(cfg)
    return out


def _launch(path, kind, name, tokens, image, env, errors):
    launch = split_launch(tokens)
    if launch:
        launcher, ltok, argv = launch
        return ServeConfig(
            path=path,
            kind=kind,
            name=name,
            launcher=launcher,
            launcher_token=ltok,
            argv=list(argv),
            env=env,
            errors=list(errors),
            prefix=launch_prefix(tokens, ltok),
            image=ltok.text if launcher == "image" else image,
        )
    if "vllm" in image and (not tokens or tokens[0].text.startswith("-")):
        # the vllm/vllm-openai image's entrypoint is the API server; command holds only its flags
        return ServeConfig(
            path=path,
            kind=kind,
            name=name,
            launcher="image",
            argv=list(tokens),
            env=env,
            errors=list(errors),
            image=image,
        )
    if any(e.name.startswith("VLLM_") for e in env):
        return ServeConfig(path=path, kind=kind, name=name, env=env, errors=list(errors), image=image)
    return None


def _containers(root):
    """Every container mapping under any `containers:` key, each node visited once (aliases share nodes)."""
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for k, v in reversed(node.value):
                if isinstance(k, ScalarNode) and k.value == "containers" and isinstance(v, SequenceNode):
                    yield from (c for c in v.value if isinstance(c, MappingNode))
                else:
                    stack.append(v)
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))


def read_k8s(text: str, path: str, read: Reader = None) -> list:
    """A ServeConfig per Kubernetes container that runs vLLM (command + args, env)."""
    out = []
    for doc in compose_documents(text, path):
        for c in _containers(doc):
            name = get(c, "name")
            image = get(c, "image")
            tokens = command_tokens(get(c, "command"), path, text, {}) + command_tokens(get(c, "args"), path, text, {})
            cfg = _launch(
                path,
                "k8s",
                name.value if isinstance(name, ScalarNode) else "",
                shell_c(tokens),
                image.value if isinstance(image, ScalarNode) else "",
                env_nodes(get(c, "env"), path, {}),
                [],
            )
            if cfg:
                out.append(cfg)
    return out


def read_vllm_yaml(text: str, path: str, read: Reader = None) -> list:
    """The flags a vLLM --config YAML stands for: `key: v` → --key v, true → --key, lists → several values.

    A `false` value is kept as the token "--key" with value "false" so the linter can say what the
    release does with it (dropped silently up to 0.27)."""
    docs = compose_documents(text, path)
    argv = []
    for doc in docs[:1]:
        if not isinstance(doc, MappingNode):
            return [
                ServeConfig(
                    path=path,
                    kind="vllm-yaml",
                    launcher="config",
                    errors=[f"{path}: a vLLM --config file must be a mapping of option: value"],
                )
            ]
        for k, v in items(doc):
            if not isinstance(k, ScalarNode):
                continue
            argv.append(Token("--" + k.value, path, *at(k)))
            if isinstance(v, ScalarNode):
                argv.append(Token(v.value, path, *at(v)))
            elif isinstance(v, SequenceNode):
                argv.extend(Token(n.value, path, *at(n)) for n in v.value if isinstance(n, ScalarNode))
            else:
                argv.append(Token("{...}", path, *at(v)))
    return [ServeConfig(path=path, kind="vllm-yaml", launcher="config", argv=argv)]


__all__ = ["read_compose", "read_k8s", "read_vllm_yaml", "Var"]
