"""Probes of CUDA toolkits: every nvcc (PATH order, CUDA_HOME, /usr/local/cuda*, pip) and Triton's ptxas."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Optional

from ..domain.arch import target_names_in
from ..model import Unavailable
from ..registry import probe

TIMEOUT = 5.0
STANDARD_NVCC = ("/usr/local/cuda*/bin/nvcc", "/usr/bin/nvcc", "/opt/cuda/bin/nvcc")
_REL_RE = re.compile(r"release (\d+)\.(\d+), V(\d+\.\d+\.\d+)")


def parse_release(text: str) -> Optional[dict]:
    """{'version': '12.8', 'full': '12.8.93'} from `nvcc --version` / `ptxas --version` output."""
    m = _REL_RE.search(text or "")
    if not m:
        return None
    return {"version": f"{m.group(1)}.{m.group(2)}", "full": m.group(3)}


def parse_gpu_arch_list(text: str) -> list:
    """Architectures from `nvcc --list-gpu-arch/--list-gpu-code` (one per line), sorted and unique."""
    return target_names_in(text)


def parse_ptxas_help(text: str) -> list:
    """The `--gpu-name` values a ptxas accepts, from `ptxas --help` ("Allowed values for this option")."""
    m = re.search(r"--gpu-name.*?Allowed values for this option:\s*(.*?)\.\s*\n", text or "", re.S)
    if not m:
        return []
    return target_names_in(m.group(1))


def _path_dirs(env) -> list:
    return [d for d in (env.get("PATH") or "").split(os.pathsep) if d]


def _is_exe(p: Path) -> bool:
    try:
        return p.is_file() and os.access(p, os.X_OK)
    except OSError:
        return False


def _run_tool(ctx, path: str, args) -> str:
    # what `nvcc --version` or `ptxas --help` prints is fixed by the program's file: cached by its identity
    from .. import cache

    store = cache.store(ctx)
    try:
        ident = cache.file_key(os.stat(path)) if store is not None else None
    except OSError:
        ident = None
    key = (path, *args, *ident) if ident else None
    if key is not None and store is not None:
        hit = store.get("tool-output", key)
        if isinstance(hit, str):
            return hit
    res = ctx.run([path, *args], timeout=TIMEOUT)
    if isinstance(res, Unavailable):
        raise RuntimeError(res.reason)
    out = (res.stdout or "") + (res.stderr or "")
    if key is not None and store is not None and res.returncode == 0:
        store.put("tool-output", key, out)
    return out


def describe_nvcc(ctx, path: str) -> dict:
    """Version and emit-able architectures of one nvcc (runs it with a timeout; live machine only)."""
    out: dict = {"path": path, "version": None, "full": None, "archs": [], "arch_source": None, "error": None}
    try:
        rel = parse_release(_run_tool(ctx, path, ["--version"]))
    except RuntimeError as exc:
        out["error"] = str(exc)
        return out
    if not rel:
        out["error"] = "nvcc --version printed no 'release X.Y' line"
        return out
    out.update(rel)
    try:
        archs = parse_gpu_arch_list(
            _run_tool(ctx, path, ["--list-gpu-code"]) + _run_tool(ctx, path, ["--list-gpu-arch"])
        )
    except RuntimeError:
        archs = []
    if archs:
        out["archs"], out["arch_source"] = archs, "nvcc --list-gpu-code/--list-gpu-arch"
    else:
        ptxas = Path(path).with_name("ptxas")
        if _is_exe(ptxas):
            try:
                out["archs"] = parse_ptxas_help(_run_tool(ctx, str(ptxas), ["--help"]))
                out["arch_source"] = "ptxas --help" if out["archs"] else None
            except RuntimeError:
                pass
    return out


def _is_link(ctx, path: str) -> bool:
    try:
        return stat.S_ISLNK(ctx.lstat(path).st_mode)
    except OSError:
        return False


def _toolkit_from_tree(ctx, cuda_dir: str) -> dict:
    """A toolkit under --root (a machine path), read from its version.json (nothing is executed)."""
    out: dict = {
        "path": cuda_dir.rstrip("/") + "/bin/nvcc",
        "version": None,
        "full": None,
        "archs": [],
        "arch_source": None,
        "error": None,
    }
    try:
        data = json.loads(ctx.read_text(cuda_dir.rstrip("/") + "/version.json"))
        full = data.get("cuda", {}).get("version") or data.get("cuda_nvcc", {}).get("version")
        out["full"] = full
        out["version"] = ".".join(full.split(".")[:2]) if full else None
    except (OSError, ValueError, AttributeError):
        out["error"] = "no readable version.json"
    return out


@probe("cuda_toolkits", budget=10.0)
def cuda_toolkits(ctx):
    """Every nvcc: PATH order, CUDA_HOME, /usr/local/cuda*, pip nvidia-cuda-nvcc; version and archs."""
    env = ctx.env
    found = {}  # realpath -> entry

    def add(path: str, via: str):
        p = Path(path)
        if not _is_exe(p):
            return
        key = os.path.realpath(p)
        if key in found:
            if via not in found[key]["via"]:
                found[key]["via"].append(via)
            return
        entry = describe_nvcc(ctx, str(p)) if ctx.live_machine else {"path": str(p), "error": "not run under --root"}
        entry["via"] = [via]
        entry["realpath"] = key
        found[key] = entry

    path_order = []
    if ctx.live_machine:
        for d in _path_dirs(env):
            cand = Path(d) / "nvcc"
            if _is_exe(cand):
                path_order.append(str(cand))
                add(str(cand), "PATH")
        if env.get("CUDA_HOME"):
            add(os.path.join(env["CUDA_HOME"], "bin", "nvcc"), "CUDA_HOME")
        if env.get("CUDA_PATH"):
            add(os.path.join(env["CUDA_PATH"], "bin", "nvcc"), "CUDA_PATH")
        if env.get("CMAKE_CUDA_COMPILER"):
            add(env["CMAKE_CUDA_COMPILER"], "CMAKE_CUDA_COMPILER")
        for pattern in () if env.get("BWDOCTOR_NVCC_SEARCH") == "path" else STANDARD_NVCC:
            import glob

            for d in sorted(glob.glob(pattern)):
                add(d, "standard location")
        toolkits = list(found.values())
    else:
        toolkits = [
            _toolkit_from_tree(ctx, p) for p in ctx.glob("/usr/local/cuda*") if ctx.is_dir(p) and not _is_link(ctx, p)
        ]
        for t in toolkits:
            t["via"] = ["standard location"]
        if ctx.is_file("/cmd/nvcc-version.txt"):  # a captured host's nvcc on PATH
            rel = parse_release(ctx.read_text("/cmd/nvcc-version.txt"))
            archs = []
            for captured in ("/cmd/nvcc-list-gpu-arch.txt", "/cmd/nvcc-list-gpu-code.txt"):
                if ctx.is_file(captured):
                    archs += parse_gpu_arch_list(ctx.read_text(captured))
            archs = sorted(set(archs))
            if rel:
                entry = {
                    "path": "nvcc (captured)",
                    "via": ["PATH"],
                    "archs": archs,
                    "arch_source": "captured --list-gpu-arch" if archs else None,
                    "error": None,
                    **rel,
                }
                toolkits.insert(0, entry)
                path_order.append(entry["path"])
    cuda_home = env.get("CUDA_HOME") or env.get("CUDA_PATH")
    used = None
    if cuda_home:
        used = next((t for t in toolkits if "CUDA_HOME" in t.get("via", []) or "CUDA_PATH" in t.get("via", [])), None)
    if used is None and path_order:
        used = next((t for t in toolkits if t["path"] == path_order[0]), None)
    return {
        "toolkits": toolkits,
        "path_order": path_order,
        "cuda_home": cuda_home,
        "used": used["path"] if used else None,
    }


def _triton_ptxas_candidates(ctx, python_env):
    if ctx.env.get("TRITON_PTXAS_PATH"):
        yield ctx.env["TRITON_PTXAS_PATH"], "TRITON_PTXAS_PATH"
    for sp in python_env.get("site_packages", []) if isinstance(python_env, dict) else []:
        cand = os.path.join(sp, "triton", "backends", "nvidia", "bin", "ptxas")
        if ctx.exists(cand):  # site_packages are machine paths: looked up under --root
            yield cand, "triton bundled"
            return


@probe("triton_ptxas", budget=8.0)
def triton_ptxas(ctx, python_env):
    """The ptxas Triton will use (TRITON_PTXAS_PATH, else its bundled one): version and accepted archs."""
    if isinstance(python_env, Unavailable):
        python_env = {}
    for path, via in _triton_ptxas_candidates(ctx, python_env):
        out = {"path": path, "via": via, "version": None, "full": None, "archs": [], "error": None}
        if ctx.in_tree:
            out["error"] = "not run: the programs of a --root tree are read, never run"
            return out
        if not _is_exe(Path(path)):
            out["error"] = "not an executable file"
            return out
        try:
            rel = parse_release(_run_tool(ctx, path, ["--version"]))
            if rel:
                out.update(rel)
            out["archs"] = parse_ptxas_help(_run_tool(ctx, path, ["--help"]))
        except RuntimeError as exc:
            out["error"] = str(exc)
        return out
    return Unavailable("Triton is not installed and TRITON_PTXAS_PATH is not set")
