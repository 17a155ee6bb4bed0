"""Probes of what a vLLM server starts with beyond its flags: the allocator options the installed torch accepts
(read from libc10*.so, torch never imported), the NUMA layout of CPUs and GPUs with the CPU set a running server
may use, and the quantization files and KV-scale tensor names of the local models serve configs name."""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Any, Dict, List, Optional

from ..domain.allocconf import library_strings
from ..domain.checkpoints import KV_SCALE_RE, num_experts, quant_summary, scale_forms
from ..domain.placement import parse_cpulist
from ..model import Unavailable
from ..registry import probe

ALLOC_LIBS = ("libc10_cuda.so", "libc10.so")
MAX_NODES = 1024
MAX_SHARDS = 512
JSON_LIMIT = 64 * 1024 * 1024  # model.safetensors.index.json of the largest MoE checkpoints is a few MB
MAX_HEADER_BYTES = 100 * 1024 * 1024  # as bwdoctor.capacity.safetensors_header


@probe("torch_allocator", budget=3.0)
def torch_allocator(ctx, torch_build):
    """The caching-allocator options and variable names the installed torch's libc10 / libc10_cuda hold."""
    if isinstance(torch_build, Unavailable):
        return torch_build
    lib = os.path.join(torch_build["location"], "torch", "lib")
    from ..elf.libversion import read_rodata

    out: Dict[str, Any] = {"torch": torch_build.get("version"), "lib_dir": lib, "libraries": {}}
    from .. import cache

    store = cache.store(ctx)
    for name in ALLOC_LIBS:
        path = os.path.join(lib, name)
        if not ctx.is_file(path):
            continue
        try:  # pure in the library's bytes: cached by its identity
            host = str(ctx.resolve(path))
            strings = cache.cached(
                "alloc-strings", host, lambda p: dict(library_strings(read_rodata(p)), path=p), store
            )
            strings = {k: v for k, v in strings.items() if k != "path"}
        except OSError as exc:
            out["libraries"][name] = {"error": f"{path}: {exc.strerror or exc}"}
            continue
        out["libraries"][name] = {"path": path, **strings}
    if "libc10_cuda.so" not in out["libraries"]:
        return Unavailable(f"torch {torch_build.get('version')} has no libc10_cuda.so in {lib} (a CPU build?)")
    return out


def _read_cpulist(ctx, path: str) -> Optional[str]:
    try:
        return ctx.read_text(path, 65536).strip()
    except OSError:
        return None


@probe("numa_topology", budget=3.0)
def numa_topology(ctx, pci_gpus):
    """NUMA nodes with their CPUs (/sys/devices/system/node), each GPU's node, and running vLLM servers' CPUs."""
    nodes: Dict[str, str] = {}
    errors: List[str] = []
    try:
        names = [n for n in ctx.listdir("/sys/devices/system/node") if re.fullmatch(r"node\d{1,5}", n)]
    except OSError as exc:
        return Unavailable(f"/sys/devices/system/node cannot be listed: {exc.strerror or exc}")
    for n in sorted(names, key=lambda s: int(s[4:]))[:MAX_NODES]:
        text = _read_cpulist(ctx, f"/sys/devices/system/node/{n}/cpulist")
        if text is None:
            continue
        try:
            parse_cpulist(text)
        except ValueError as exc:
            errors.append(f"/sys/devices/system/node/{n}/cpulist: {exc}")
            continue
        nodes[n[4:]] = text
    gpus = []
    if not isinstance(pci_gpus, Unavailable):
        for g in pci_gpus:
            try:
                node = int(str(g.get("numa_node", "")).strip())
            except ValueError:
                node = None
            gpus.append({"bus": g.get("bus"), "name": g.get("name"), "numa_node": node})
    online = _read_cpulist(ctx, "/sys/devices/system/cpu/online")
    return {"nodes": nodes, "online": online, "gpus": gpus, "processes": _server_cpus(ctx), "errors": errors}


def _server_cpus(ctx) -> Dict[str, str]:
    """{pid: Cpus_allowed_list} of running processes whose command line names vllm."""
    from .serve import vllm_processes

    out: Dict[str, str] = {}
    for pid, _cmdline in vllm_processes(ctx):
        try:
            status = ctx.read_text(f"/proc/{pid}/status", 65536)
        except OSError:
            continue
        m = re.search(r"^Cpus_allowed_list:\s*(\S*)\s*$", status, re.M)
        if m:
            out[pid] = m.group(1)
    return out


# -- local models named by serve configs ---------------------------------------------------------------------
def _hub_dirs(ctx, env: Dict[str, str]) -> List[str]:
    dirs = []
    for source in (env, ctx.env):
        if source.get("HF_HUB_CACHE"):
            dirs.append(source["HF_HUB_CACHE"])
        if source.get("HF_HOME"):
            dirs.append(os.path.join(source["HF_HOME"], "hub"))
        if source.get("HOME"):
            dirs.append(os.path.join(source["HOME"], ".cache", "huggingface", "hub"))
    dirs.append("/root/.cache/huggingface/hub")
    return list(dict.fromkeys(d for d in dirs if d.startswith("/")))


def _model_path(ctx, name: str, env: Dict[str, str]) -> Optional[str]:
    """The directory of a local model: an absolute path, or a repo id's snapshot in a Hugging Face cache."""
    if name.startswith("/"):
        return name if ctx.is_dir(name) else None
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return None
    for hub in _hub_dirs(ctx, env):
        repo = os.path.join(hub, "models--" + name.replace("/", "--"))
        if not ctx.is_dir(repo):
            continue
        try:
            ref = ctx.read_text(os.path.join(repo, "refs", "main"), 256).strip()
        except OSError:
            ref = ""
        if ref and re.fullmatch(r"[0-9a-f]{7,64}", ref) and ctx.is_dir(os.path.join(repo, "snapshots", ref)):
            return os.path.join(repo, "snapshots", ref)
        try:
            snaps = ctx.listdir(os.path.join(repo, "snapshots"))
        except OSError:
            continue
        if len(snaps) == 1:
            return os.path.join(repo, "snapshots", snaps[0])
    return None


def _json(ctx, path: str) -> Optional[dict]:
    if not ctx.is_file(path):
        return None
    raw = ctx.read_bytes(path, JSON_LIMIT + 1)
    if len(raw) > JSON_LIMIT:
        raise ValueError(f"larger than {JSON_LIMIT} bytes; not read")
    data = json.loads(raw)
    return data if isinstance(data, dict) else None


def _header_names(ctx, path: str) -> List[str]:
    """Tensor names of one safetensors file, from its header only."""
    head = ctx.read_bytes(path, 8)
    if len(head) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte safetensors length prefix")
    (length,) = struct.unpack("<Q", head)
    if length == 0 or length > MAX_HEADER_BYTES:
        raise ValueError(f"{path}: header length {length} is not plausible; not a safetensors file")
    raw = ctx.read_bytes(path, 8 + length)[8:]
    if len(raw) < length:
        raise ValueError(f"{path}: truncated header ({len(raw)} of {length} bytes)")
    header = json.loads(raw.decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    return [k for k in header if k != "__metadata__"]


def read_model(ctx, directory: str) -> dict:
    """Architecture, quantization, experts and KV-scale tensor names of a local checkpoint (no weights read)."""
    out: Dict[str, Any] = {"dir": directory, "errors": []}
    try:
        config = _json(ctx, os.path.join(directory, "config.json")) or {}
    except (OSError, ValueError, RecursionError) as exc:
        config = {}
        out["errors"].append(f"config.json: {exc}")
    try:
        hf_quant = _json(ctx, os.path.join(directory, "hf_quant_config.json"))
    except (OSError, ValueError, RecursionError) as exc:
        hf_quant = None
        out["errors"].append(f"hf_quant_config.json: {exc}")
    archs = config.get("architectures")
    out["architectures"] = [str(a) for a in archs] if isinstance(archs, list) else []
    out["quant"] = quant_summary(config, hf_quant)
    out["num_experts"] = num_experts(config)
    names: Optional[List[str]] = None
    try:
        index = _json(ctx, os.path.join(directory, "model.safetensors.index.json"))
        if index and isinstance(index.get("weight_map"), dict):
            names, out["tensors_from"] = list(index["weight_map"]), "model.safetensors.index.json"
    except (OSError, ValueError, RecursionError) as exc:
        out["errors"].append(f"model.safetensors.index.json: {exc}")
    if names is None:
        try:
            shards = sorted(n for n in ctx.listdir(directory) if n.endswith(".safetensors"))[:MAX_SHARDS]
        except OSError:
            shards = []
        read: List[str] = []
        for s in shards:
            p = os.path.join(directory, s)
            if not ctx.is_file(p):
                out["errors"].append(f"{s}: not a regular file; not read")
                continue
            try:
                read += _header_names(ctx, p)
            except (OSError, ValueError, RecursionError) as exc:
                out["errors"].append(f"{s}: {exc}")
                continue
            names = read
            out["tensors_from"] = "safetensors headers"
    if names is not None:
        scales = [n for n in names if KV_SCALE_RE.search(n)]
        out["tensors"] = len(names)
        out["kv_scales"] = {"count": len(scales), "forms": scale_forms(scales), "examples": sorted(scales)[:4]}
    return out


@probe("serve_models", budget=10.0)
def serve_models(ctx, serve_configs):
    """For each serve config whose model is a local directory or a cached Hugging Face snapshot: its checkpoint."""
    if isinstance(serve_configs, Unavailable):
        return serve_configs
    from ..serve.config import ServeConfig
    from .serve import _model_dir

    out: List[dict] = []
    seen: Dict[str, dict] = {}
    for raw in serve_configs.get("configs", []):
        cfg = ServeConfig.from_json(raw)
        name = _model_dir(cfg)
        env = {e.name: e.value for e in cfg.env}
        home = env.get("HOME") or ctx.env.get("HOME")
        if name and home and home.startswith("/"):  # a script's ${HOME}: the tree's recorded HOME, or this one's
            name = name.replace("${HOME}", home.rstrip("/")).replace("$HOME/", home.rstrip("/") + "/")
        if not name or "$" in name:
            continue
        directory = _model_path(ctx, name, env)
        if directory is None:
            continue
        if directory not in seen:
            seen[directory] = read_model(ctx, directory)
        out.append({"config": cfg.path, "name": cfg.name, "model": name, **seen[directory]})
    return out
