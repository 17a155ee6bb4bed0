"""Probes for source builds: build settings and resources, host compiler, and a source tree's torch pins."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Optional

from .. import fileio
from ..elf.rootpath import realpath_under
from ..model import Unavailable
from ..registry import probe
from .parse import parse_cpuinfo, parse_meminfo

SRC_FILE_LIMIT = 4 << 20  # a requirements file or pyproject.toml is KBs
REQ_FILES = (
    "requirements/build.txt",
    "requirements/cuda.txt",
    "requirements/common.txt",
    "requirements.txt",
    "requirements-cuda.txt",
    "requirements-build.txt",
)


def _int(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def nvcc_gcc_max(ctx, nvcc_path: str):
    """The newest GCC major an nvcc accepts, from its toolkit's crt/host_config.h ('__GNUC__ > N')."""
    real = os.path.dirname(os.path.dirname(ctx.realpath(nvcc_path)))
    for rel in (
        "include/crt/host_config.h",
        "targets/x86_64-linux/include/crt/host_config.h",
        "targets/sbsa-linux/include/crt/host_config.h",
    ):
        cand = os.path.join(real, rel)
        try:
            text = ctx.read_text(cand, limit=200000)
        except (OSError, ValueError):
            continue
        m = re.search(r"#if\s+__GNUC__\s*>\s*(\d+)", text)
        if m:
            return {"max_major": int(m.group(1)), "source": str(cand)}
    return None


def _gcc_version(ctx, cc: str) -> Optional[str]:
    """What `cc -dumpfullversion -dumpversion` prints first, or None. The version is compiled into the compiler
    driver, so an ELF driver's answer is cached by its file identity (a wrapper script is asked every time)."""
    from .. import cache

    store = cache.store(ctx)
    key = None
    if store is not None and os.path.isabs(cc):
        try:
            with open(cc, "rb") as fh:
                ident = cache.file_key(os.fstat(fh.fileno())) if fh.read(4) == b"\x7fELF" else None
        except (OSError, ValueError):
            ident = None
        key = ("gcc-version", cc, *ident) if ident else None
    if key is not None and store is not None:
        hit = store.get("tool-output", key)
        if isinstance(hit, str):
            return hit
    res = ctx.run([cc, "-dumpfullversion", "-dumpversion"], timeout=5.0)
    if isinstance(res, Unavailable) or res.returncode != 0 or not res.stdout.strip():
        return None
    version = res.stdout.strip().splitlines()[0]
    if key is not None and store is not None:
        store.put("tool-output", key, version)
    return version


@probe("build_env", budget=6.0)
def build_env(ctx, cuda_toolkits, python_env):
    """Build settings and resources: MAX_JOBS, NVCC_THREADS, cores, RAM, disk, arch lists, gcc, ccache."""
    env = ctx.env
    out = {
        "max_jobs": _int(env.get("MAX_JOBS")),
        "nvcc_threads": _int(env.get("NVCC_THREADS")),
        "torch_cuda_arch_list": env.get("TORCH_CUDA_ARCH_LIST"),
        "cmake_cuda_architectures": env.get("CMAKE_CUDA_ARCHITECTURES"),
        "cuda_home": env.get("CUDA_HOME") or env.get("CUDA_PATH"),
        "cmake_cuda_compiler": env.get("CMAKE_CUDA_COMPILER"),
        "vllm_flash_attn_version": env.get("VLLM_FLASH_ATTN_VERSION"),
    }
    mem = ctx.read_or_unavailable("/proc/meminfo")
    if not isinstance(mem, Unavailable):
        info = parse_meminfo(mem)
        out["mem_total"], out["mem_available"] = info.get("MemTotal"), info.get("MemAvailable")
    if ctx.live_machine:
        try:
            out["cores"] = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            out["cores"] = os.cpu_count()
    else:
        cpu = ctx.read_or_unavailable("/proc/cpuinfo", limit=16 << 20)
        out["cores"] = None if isinstance(cpu, Unavailable) else parse_cpuinfo(cpu)["logical_cpus"] or None
    build_dir = ctx.options.get("src") or os.getcwd()
    out["build_dir"] = build_dir
    disks = {}
    if ctx.live_machine:
        for label, path in (("build_dir", build_dir), ("tmp", env.get("TMPDIR") or "/tmp")):
            try:
                disks[label] = {"path": path, "free": fileio.disk_free(path)}
            except OSError as exc:
                disks[label] = {"path": path, "error": exc.strerror or str(exc)}
    out["disk"] = disks
    cc = env.get("CC") or fileio.which("gcc", env.get("PATH"))
    out["gcc"] = None
    if ctx.live_machine and cc:
        version = _gcc_version(ctx, cc)
        if version:
            out["gcc"] = {"path": cc, "version": version}
    out["ccache"] = fileio.which("ccache", env.get("PATH")) if ctx.live_machine else None
    used = None if isinstance(cuda_toolkits, Unavailable) else cuda_toolkits.get("used")
    out["nvcc"] = used
    out["nvcc_gcc_max"] = nvcc_gcc_max(ctx, used) if used and ctx.exists(used) else None
    out["nvcc_on_path"] = fileio.which("nvcc", env.get("PATH")) if ctx.live_machine else None
    # the nvcc of CUDA_HOME, CMAKE_CUDA_COMPILER and PATH, symlinks resolved on this machine (in the tree under
    # --root), so that checks compare toolkits without touching a file system
    nvccs = [posixpath.join(out["cuda_home"], "bin", "nvcc")] if out["cuda_home"] else []
    nvccs += [p for p in (out["cmake_cuda_compiler"], out["nvcc_on_path"]) if p]
    out["nvcc_realpaths"] = {p: realpath_under(str(ctx.root), p) for p in nvccs}
    inc = None if isinstance(python_env, Unavailable) else python_env.get("include")
    out["python_include"] = inc
    out["python_h"] = bool(inc) and ctx.exists(os.path.join(inc, "Python.h"))
    return out


def _torch_requirement(text: str):
    """A PEP 508 requirement on torch itself ("torch==2.9.1", "torch >=2.8,<2.10", "torch[cuda]==2.9.1; marker")
    with a version specifier, or None."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text.strip())
    except InvalidRequirement:
        return None
    return req if req.name.lower() == "torch" and req.specifier else None


def _pin(rel: str, line: int, column: int, req) -> dict:
    return {"file": rel, "line": line, "column": column, "requirement": f"torch{req.specifier}"}


def _requirements_file_pins(rel: str, lines: list) -> list:
    pins = []
    for i, line in enumerate(lines, 1):
        body = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not body or body.startswith(("#", "-")):
            continue
        req = _torch_requirement(body)
        if req is not None:
            pins.append(_pin(rel, i, line.lower().index("torch") + 1, req))
    return pins


def _pyproject_pins(rel: str, text: str) -> list:
    """Torch pins in pyproject.toml's dependency arrays (build-system.requires, project.dependencies,
    project.optional-dependencies, dependency-groups), read with tomllib, each located at its string."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return _requirements_file_pins(rel, text.splitlines())  # not TOML: read it line by line
    arrays = [
        (doc.get("build-system") or {}).get("requires"),
        (doc.get("project") or {}).get("dependencies"),
        *((doc.get("project") or {}).get("optional-dependencies") or {}).values(),
        *(doc.get("dependency-groups") or {}).values(),
    ]
    lines = text.splitlines()
    pins, used = [], set()
    for arr in arrays:
        for item in arr if isinstance(arr, list) else []:
            req = _torch_requirement(item) if isinstance(item, str) else None
            if req is None:
                continue
            where = next(
                (
                    (n, line.index(item) + 1)
                    for n, line in enumerate(lines, 1)
                    if item in line and (n, line.index(item)) not in used
                ),
                (1, 1),
            )
            used.add((where[0], where[1] - 1))
            pins.append(_pin(rel, where[0], where[1], req))
    return sorted(pins, key=lambda p: (p["line"], p["column"]))


def torch_pins(root: Path) -> list:
    """Requirements on torch with a version in a source tree's requirement files and pyproject.toml, with
    file:line:column (any PEP 508 spelling, several on one line of pyproject.toml)."""
    pins = []
    for rel in REQ_FILES + ("pyproject.toml",):
        p = root / rel
        try:
            text = fileio.read_bytes(p, SRC_FILE_LIMIT).decode("utf-8", "replace")
        except OSError:
            continue
        if rel == "pyproject.toml":
            pins += _pyproject_pins(rel, text[: 1 << 20])
        else:
            pins += _requirements_file_pins(rel, text.splitlines()[:5000])
    return pins


@probe("source_tree", budget=3.0)
def source_tree(ctx):
    """With --src: the source tree's torch pins and whether it is a vLLM tree with use_existing_torch.py."""
    src = ctx.options.get("src")
    if not src:
        return Unavailable("no source tree given (bwdoctor prebuild --src DIR)")
    root = Path(src)
    if not root.is_dir():
        return Unavailable(f"--src {src}: not a directory")
    return {
        "path": str(root.resolve()),
        "torch_pins": torch_pins(root),
        "use_existing_torch": (root / "use_existing_torch.py").exists(),
        "is_vllm": (root / "vllm").is_dir()
        or (root / "use_existing_torch.py").exists()
        or 'name = "vllm"' in _safe_read(root / "pyproject.toml"),
    }


def _safe_read(p: Path) -> str:
    try:
        return fileio.read_bytes(p, 200000).decode("utf-8", "replace")
    except OSError:
        return ""
