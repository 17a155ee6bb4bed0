"""Probe of vLLM serve configs: --config files plus systemd units, compose files, scripts, processes."""

from __future__ import annotations

import os
from pathlib import Path

from .. import fileio
from ..registry import probe
from ..serve.config import ServeConfig
from ..serve.readers import MAX_BYTES, read_config, read_process

SCHEMA = "bwdoctor.serve-configs/1"
SCRIPT_PEEK = 256 * 1024  # a script that launches vLLM says so in its first 256 KiB
MAX_SCRIPTS = 50
MAX_PROCS = 4096


def _read_limited(path: Path) -> bytes:
    """Bytes of a file, at most MAX_BYTES + 1 (so a too-large file is reported, not read whole)."""
    return fileio.read_bytes(path, MAX_BYTES + 1)


def _machine_path(ctx, name: str) -> Path:
    """A path named by a config, as a file under the inspected root."""
    return ctx.host_path(name) if name.startswith("/") else Path(name)


def _model_dir(cfg: ServeConfig):
    """The --model / positional model of a launch, when it is a plain path."""
    for i, tok in enumerate(cfg.argv):
        if tok.text.split("=", 1)[0] == "--model":
            value = (
                tok.text.split("=", 1)[1]
                if "=" in tok.text
                else (cfg.argv[i + 1].text if i + 1 < len(cfg.argv) else "")
            )
            return value
    if cfg.launcher == "vllm serve" and cfg.argv and not cfg.argv[0].text.startswith("-"):
        return cfg.argv[0].text
    return None


def _attach_model(ctx, cfg: ServeConfig, errors: list) -> None:
    """Model facts of a local model directory (config.json + safetensors headers), when readable."""
    name = _model_dir(cfg)
    if not name or "$" in name or not name.startswith("/"):
        return
    d = ctx.host_path(name)
    if not (d / "config.json").is_file():
        return
    try:
        from ..capacity.model import ModelError, load_model
        from ..serve.memory import model_to_json

        cfg.model = model_to_json(load_model(d))
    except (ModelError, OSError, ValueError) as exc:
        errors.append(f"{name}: model config not usable for memory checks: {exc}")


def discover(ctx) -> list:
    """Config files worth reading: --config ones, then systemd units, compose files and scripts."""
    found = [Path(c).absolute() if Path(c).exists() or not c.startswith("/") else ctx.host_path(c) for c in ctx.configs]
    unit_dirs = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]
    for d in unit_dirs:
        try:
            found += [ctx.resolve(m) for m in ctx.glob(d + "/*vllm*") if ctx.is_file(m)]
        except OSError:  # a symlink loop in the tree
            continue
    cwd = Path(ctx.options.get("cwd") or os.getcwd()) if ctx.live_machine or ctx.options.get("cwd") else None
    if cwd is not None:
        try:
            found += sorted(p for p in cwd.glob("docker-compose.y*ml") if p.is_file())
            found += sorted(p for p in cwd.glob("compose.y*ml") if p.is_file())
            scripts = sorted(p for p in cwd.glob("*.sh") if p.is_file())[:MAX_SCRIPTS]
            for p in scripts:
                try:
                    head = fileio.read_bytes(p, SCRIPT_PEEK)
                except OSError:
                    continue
                if b"vllm" in head:
                    found.append(p)
        except OSError:
            pass
    seen, out = set(), []
    for p in found:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def vllm_processes(ctx) -> list:
    """(pid, cmdline bytes) of the running processes under ROOT/proc whose command line names vllm: the one walk
    of /proc that every reader of running servers shares (made once per run)."""
    return ctx.shared("vllm_processes", _walk_proc)


def _walk_proc(ctx) -> list:
    out: list = []
    try:
        pids = sorted((p for p in ctx.listdir("/proc") if p.isdigit()), key=int)[:MAX_PROCS]
    except OSError:
        return out
    for pid in pids:
        try:
            cmdline = ctx.read_bytes(f"/proc/{pid}/cmdline", MAX_BYTES + 1)
        except OSError:
            continue
        if b"vllm" in cmdline:
            out.append((pid, cmdline))
    return out


def processes(ctx) -> list:
    """ServeConfigs of running vLLM processes under ROOT/proc."""
    out: list = []
    for pid, cmdline in vllm_processes(ctx):
        try:
            environ = ctx.read_bytes(f"/proc/{pid}/environ", MAX_BYTES + 1)
        except OSError:
            environ = b""
        cfgs = read_process(cmdline, environ, f"/proc/{pid}/cmdline", f"/proc/{pid}/environ")
        for c in cfgs:
            if not environ:
                c.errors.append(f"/proc/{pid}/environ is not readable: environment variables not checked")
        out += cfgs
    return out


@probe("serve_configs", budget=5.0)
def serve_configs(ctx):
    """vLLM serve configs found on this machine, parsed, with a location for every word."""
    configs, errors, sources = [], [], []

    found = discover(ctx)
    # relative names inside a config resolve next to it (a real path already); other absolute ones
    # are machine paths under the root
    config_dirs = {os.path.abspath(p.parent) for p in found}

    def read(name: str) -> bytes:
        if not name.startswith("/"):
            return _read_limited(Path(name))
        if os.path.dirname(os.path.abspath(name)) in config_dirs and Path(name).exists():
            return _read_limited(Path(name))
        return _read_limited(_machine_path(ctx, name))

    for path in found:
        sources.append(str(path))
        try:
            data = _read_limited(path)
        except OSError as exc:
            errors.append(f"{path}: could not be read: {fileio.describe(exc)}")
            continue
        for cfg in read_config(str(path), data, read=read):
            _include_config_files(cfg, read)
            _attach_model(ctx, cfg, cfg.errors)
            configs.append(cfg)
    configs += processes(ctx)
    fact = {"schema": SCHEMA, "configs": [c.to_json() for c in configs], "sources": sources, "errors": errors}
    if ctx.options.get("vllm_version"):  # --vllm-version: lint for a release that is not installed here
        fact["vllm_version"] = str(ctx.options["vllm_version"])
    return fact


def _include_config_files(cfg: ServeConfig, read) -> None:
    """Read the YAML named by `--config FILE` (two words: the only form vLLM expands)."""
    for i, tok in enumerate(cfg.argv[:-1]):
        if tok.text == "--config":
            name = cfg.argv[i + 1].text
            if "$" in name:
                continue
            from ..serve.readers import resolve

            full = resolve(cfg.path, name) if not name.startswith("/") else name
            try:
                data = read(full)
            except OSError as exc:
                cfg.errors.append(f"{cfg.path}:{tok.line}: --config {name} could not be read: {exc.strerror or exc}")
                continue
            cfg.includes += read_config(full, data, kind="vllm-yaml")
