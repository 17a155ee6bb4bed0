"""Python environments of a --root tree, found from files alone: no interpreter of the tree is ever run.

A venv is a directory holding pyvenv.cfg, a conda env one holding conda-meta/, a system Python a
lib/python3.X/ beside bin/python3.X under /usr or /usr/local. The sys.path each would have is rebuilt the way
site.py builds it (stdlib, then site/dist-packages, then the directories their .pth files add), and every path
is named as the inspected machine names it.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Tuple

from ..model import Unavailable

NO_PYTHON = "no Python environment in this tree"
# Where environments live in images and on hosts, and how deep below each to look for one.
SEARCH: Tuple[Tuple[str, int], ...] = (
    ("/", 2),
    ("/opt", 3),
    ("/root", 3),
    ("/home", 4),
    ("/app", 3),
    ("/workspace", 3),
    ("/srv", 3),
    ("/usr/local", 1),
    ("/root/.local/share/uv/python", 1),
)
SKIP_DIRS = frozenset(
    {
        "site-packages",
        "dist-packages",
        "node_modules",
        "__pycache__",
        ".git",
        ".cache",
        "proc",
        "sys",
        "dev",
        "include",
        "share",
        "pkgs",
        "man",
    }
)
MAX_DIRS = 20000  # directories visited by the search at most (a big /home must not stall the run)
MAX_PTH = 64  # .pth files read per site directory
CFG_LIMIT = 64 * 1024
_PYDIR = re.compile(r"python(3\.\d+)$")
_SOABI = re.compile(r"\.(cpython-\d+[a-z]*-[\w-]+?)\.so$")
_CONDA_PY = re.compile(r"python-(3\.\d+\.\d+[\w.]*)-[^-]+\.json$")


def parse_pyvenv_cfg(text: str) -> Dict[str, str]:
    """Keys of a pyvenv.cfg (home, version or version_info, include-system-site-packages...), lower-cased."""
    out = {}
    for line in text.splitlines():
        key, sep, val = line.partition("=")
        if sep and key.strip():
            out[key.strip().lower()] = val.strip()
    return out


def _pydirs(ctx, prefix: str) -> List[str]:
    """The 'python3.X' directories of prefix/lib (and lib64), newest first."""
    names: set = set()
    for lib in ("lib", "lib64"):
        try:
            names.update(n for n in ctx.listdir(f"{prefix}/{lib}") if _PYDIR.match(n))
        except OSError:
            pass
    return sorted(names, key=lambda n: tuple(int(x) for x in n[6:].split(".")), reverse=True)


def _first(ctx, paths) -> Optional[str]:
    return next((p for p in paths if ctx.exists(p)), None)


def _lexists(ctx, path: str) -> bool:
    try:
        ctx.lstat(path)
    except (OSError, ValueError):
        return False
    return True


def _site_dirs(ctx, prefix: str, pydir: str, debian: bool) -> List[str]:
    """The site directories of a prefix as site.getsitepackages() names them (Debian's dist-packages for /usr);
    site.py puts on sys.path only those that exist."""
    if debian:
        return [
            f"/usr/local/lib/{pydir}/dist-packages",
            "/usr/lib/python3/dist-packages",
            f"/usr/lib/{pydir}/dist-packages",
        ]
    out = [f"{prefix}/lib/{pydir}/site-packages"]
    lib64 = f"{prefix}/lib64/{pydir}/site-packages"  # platlibdir lib64 (Fedora, RHEL): listed when it is there
    if ctx.is_dir(lib64) and ctx.realpath(lib64) != ctx.realpath(out[0]):
        out.insert(0, lib64)
    return out


SYSCONFIG_LIMIT = 1 << 20
SYSCONFIG_KEYS = ("SOABI", "MULTIARCH", "LIBDIR", "LDLIBRARY", "Py_ENABLE_SHARED")


def sysconfigdata(ctx, stdlib: str) -> Dict[str, object]:
    """The build settings in stdlib/_sysconfigdata_*.py (SOABI, LIBDIR, LDLIBRARY, Py_ENABLE_SHARED), read as a
    literal with ast: the file is parsed, never executed."""
    import ast

    try:
        names = [n for n in ctx.listdir(stdlib) if n.startswith("_sysconfigdata_") and n.endswith(".py")]
    except OSError:
        return {}
    for name in names:
        try:
            tree = ast.parse(ctx.read_text(f"{stdlib}/{name}", limit=SYSCONFIG_LIMIT))
        except (OSError, ValueError, SyntaxError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "build_time_vars" for t in node.targets):
                try:
                    found = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                    break
                if isinstance(found, dict):
                    return {k: found.get(k) for k in SYSCONFIG_KEYS}
    return {}


def _pth_dirs(ctx, site: str) -> List[str]:
    """Directories the .pth files of a site directory add to sys.path (lines that are paths; imports skipped)."""
    out: List[str] = []
    try:
        names = [n for n in ctx.listdir(site) if n.endswith(".pth")][:MAX_PTH]
    except OSError:
        return out
    for name in names:
        try:
            text = ctx.read_text(f"{site}/{name}", limit=CFG_LIMIT)
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "import ", "import\t")):
                continue
            path = os.path.normpath(line if line.startswith("/") else f"{site}/{line}")
            if path not in out and ctx.is_dir(path):
                out.append(path)
    return out


def _version(ctx, prefix: str, base: str, pydir: str, cfg: Dict[str, str]) -> Tuple[str, str]:
    """(version, where it was read): pyvenv.cfg, conda-meta, patchlevel.h, dpkg status, else the lib dir name."""
    for key in ("version", "version_info"):
        m = re.match(r"3\.\d+\.\d+\w*", cfg.get(key, ""))
        if m:
            return m.group(0), "pyvenv.cfg"
    for p in dict.fromkeys((prefix, base)):
        try:
            hit = next((m.group(1) for n in ctx.listdir(f"{p}/conda-meta") for m in [_CONDA_PY.match(n)] if m), None)
        except OSError:
            hit = None
        if hit:
            return hit, "conda-meta"
        try:
            text = ctx.read_text(f"{p}/include/{pydir}/patchlevel.h", limit=CFG_LIMIT)
            m = re.search(r'#define\s+PY_VERSION\s+"([^"]+)"', text)
            if m:
                return m.group(1), "patchlevel.h"
        except OSError:
            pass
    if base == "/usr":
        try:
            status = ctx.read_text("/var/lib/dpkg/status", limit=32 * 1024 * 1024)
            m = re.search(
                rf"^Package: (?:lib)?{re.escape(pydir)}-minimal\n(?:[^\n]+\n)*?Version: (\d+\.\d+\.\d+)", status, re.M
            )
            if m:
                return m.group(1), "dpkg status"
        except OSError:
            pass
    return pydir[6:], f"lib/{pydir}"


def _abi(ctx, stdlib: str, base: str, conf: Dict[str, object]) -> Dict[str, object]:
    """soabi, platform and libdir: from _sysconfigdata when the tree has it, else from file names."""
    if isinstance(conf.get("SOABI"), str) and isinstance(conf.get("LIBDIR"), str):
        arch = str(conf["SOABI"]).split("-")[2] if str(conf["SOABI"]).count("-") >= 2 else None
        return {"soabi": conf["SOABI"], "platform": f"linux-{arch}" if arch else None, "libdir": conf["LIBDIR"]}
    soabi = None
    try:
        soabi = next((m.group(1) for n in ctx.listdir(f"{stdlib}/lib-dynload") for m in [_SOABI.search(n)] if m), None)
    except OSError:
        pass
    triple = soabi.split("-", 2)[2] if soabi and soabi.count("-") >= 2 else None
    arch = triple.split("-")[0] if triple else None
    libdir = f"{base}/lib"
    if base == "/usr" and triple and ctx.is_dir(f"/usr/lib/{triple}"):
        libdir = f"/usr/lib/{triple}"
    return {"soabi": soabi, "platform": f"linux-{arch}" if arch else None, "libdir": libdir}


def _shared(ctx, exe: Optional[str], pyver: str, conf: Dict[str, object]) -> Tuple[bool, str]:
    """Py_ENABLE_SHARED and LDLIBRARY: from _sysconfigdata, else whether the interpreter's DT_NEEDED names
    libpython."""
    if isinstance(conf.get("LDLIBRARY"), str) and conf.get("Py_ENABLE_SHARED") is not None:
        return bool(conf["Py_ENABLE_SHARED"]), str(conf["LDLIBRARY"])
    shared = False
    if exe:
        try:
            from ..elf.dynelf import DynElf

            obj = DynElf(str(ctx.resolve(exe)))
            shared = any(n.startswith("libpython") for n in obj.needed)
            obj.close()
        except Exception:  # not an ELF file, unreadable, a loop: then it is not known to link libpython
            shared = False
    return shared, f"libpython{pyver}.so" if shared else f"libpython{pyver}.a"


def describe(ctx, prefix: str, kind: str, pydir: Optional[str] = None) -> Optional[dict]:
    """The python_env fact of one environment found in the tree (None when it holds no Python)."""
    cfg: Dict[str, str] = {}
    base = prefix
    notes: List[str] = []
    if kind == "venv":
        try:
            cfg = parse_pyvenv_cfg(ctx.read_text(f"{prefix}/pyvenv.cfg", limit=CFG_LIMIT))
        except OSError:
            return None
        home = cfg.get("home", "").rstrip("/")
        if home.startswith("/"):
            base = os.path.dirname(home) if os.path.basename(home) == "bin" else home
    dirs = [pydir] if pydir else _pydirs(ctx, prefix)
    if not dirs:
        return None
    pydir = dirs[0]
    pyver = pydir[6:]
    bins = {"venv": ("python", "python3", pydir), "conda": ("python", "python3", pydir)}.get(
        kind, (pydir, "python3", "python")
    )
    exe = next((f"{prefix}/bin/{b}" for b in bins if _lexists(ctx, f"{prefix}/bin/{b}")), None)
    if exe and not ctx.exists(exe):
        notes.append(f"{exe} points to {ctx.realpath(exe)}, which is not in the tree")
    debian = kind == "system" and prefix == "/usr" and ctx.is_dir("/usr/lib/python3/dist-packages")
    stdlib = f"{base}/lib/{pydir}"
    if not ctx.is_dir(stdlib):
        notes.append(f"the standard library {stdlib} is not in the tree")
    sites = _site_dirs(ctx, prefix, pydir, debian)
    if kind == "venv" and cfg.get("include-system-site-packages", "").lower() == "true":
        base_debian = base == "/usr" and ctx.is_dir("/usr/lib/python3/dist-packages")
        sites += [s for s in _site_dirs(ctx, base, pydir, base_debian) if s not in sites]
    if kind == "system" and not exe and not ctx.is_file(f"{stdlib}/os.py"):
        return None
    sys_path = [f"{base}/lib/python{pyver.replace('.', '')}.zip", stdlib, f"{stdlib}/lib-dynload"]
    for s in sites:
        if ctx.is_dir(s) and s not in sys_path:
            sys_path.append(s)
            sys_path += [p for p in _pth_dirs(ctx, s) if p not in sys_path]
    version, version_from = _version(ctx, prefix, base, pydir, cfg)
    conf = sysconfigdata(ctx, stdlib)
    shared, ldlibrary = _shared(ctx, exe, pyver, conf)
    info = {
        "executable": exe or f"{prefix}/bin/{bins[0]}",
        "version": version,
        "sys_path": sys_path,
        "site_packages": list(sites),
        "prefix": prefix,
        "base_prefix": base,
        **_abi(ctx, stdlib, base, conf),
        "ldlibrary": ldlibrary,
        "shared": shared,
        "include": f"{base}/include/{pydir}",
        "source": "static",
        "kind": kind,
        "found_by": {"venv": f"{prefix}/pyvenv.cfg", "conda": f"{prefix}/conda-meta"}.get(kind, stdlib),
        "version_from": version_from,
    }
    if notes:
        info["notes"] = notes
    return info


def _is_env(ctx, path: str) -> Optional[str]:
    if ctx.is_file(f"{path}/pyvenv.cfg"):
        return "venv"
    if ctx.is_dir(f"{path}/conda-meta"):
        return "conda"
    return None


def find_environments(ctx) -> List[Tuple[str, str]]:
    """(prefix, kind) of every environment in the tree: venvs, conda envs and Pythons installed in a prefix of
    their own (a bounded search that never follows a symlinked directory), then the system interpreters of
    /usr/local and /usr. A system entry's prefix carries its lib directory: "/usr#python3.12"."""
    found: Dict[str, Tuple[str, str]] = {}
    visited = 0

    def add(path: str, kind: str) -> None:
        try:
            key = ctx.realpath(path)
        except OSError:
            return
        found.setdefault(key, (path, kind))

    for top, depth in SEARCH:
        for dirpath, dirnames, _files in ctx.walk(top, max_depth=depth):
            visited += 1
            if visited > MAX_DIRS:
                break
            kind = _is_env(ctx, dirpath) if dirpath != "/" else None
            if not kind and "bin" in dirnames and "lib" in dirnames and dirpath not in ("/", "/usr", "/usr/local"):
                # a Python installed in its own prefix (uv's or python-build-standalone, /opt/python/cp312-cp312)
                pydir = next((d for d in _pydirs(ctx, dirpath) if ctx.is_file(f"{dirpath}/lib/{d}/os.py")), None)
                if pydir:
                    found.setdefault(ctx.realpath(dirpath), (f"{dirpath}#{pydir}", "system"))
                    del dirnames[:]
                    continue
            if kind:
                add(dirpath, kind)
                if kind == "conda":
                    try:
                        for name in ctx.listdir(f"{dirpath}/envs"):
                            if _is_env(ctx, f"{dirpath}/envs/{name}") == "conda":
                                add(f"{dirpath}/envs/{name}", "conda")
                    except OSError:
                        pass
                del dirnames[:]  # nothing below an environment is another one (conda envs/ handled above)
                continue
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not (dirpath == "/" and d == "usr")]
    for prefix in ("/usr/local", "/usr"):
        for pydir in _pydirs(ctx, prefix):
            if ctx.exists(f"{prefix}/bin/{pydir}") or ctx.is_file(f"{prefix}/lib/{pydir}/os.py"):
                found.setdefault(f"{prefix}#{pydir}", (f"{prefix}#{pydir}", "system"))
    return list(found.values())


def _has(ctx, env: dict, names: Tuple[str, ...]) -> bool:
    for site in env.get("site_packages", []):
        try:
            listing = ctx.listdir(site)
        except OSError:
            continue
        if any(n.lower().startswith(tuple(f"{x}-" for x in names)) and n.endswith(".dist-info") for n in listing):
            return True
    return False


def _summary(env: dict) -> dict:
    return {"prefix": env["prefix"], "kind": env["kind"], "executable": env["executable"], "version": env["version"]}


def _owner(ctx, exe: str) -> Tuple[str, str, Optional[str]]:
    """(prefix, kind, python3.X dir or None) of the environment an interpreter path belongs to."""
    prefix = os.path.dirname(os.path.dirname(os.path.normpath(exe)))
    kind = _is_env(ctx, prefix) or "system"
    real = os.path.basename(ctx.realpath(exe))
    return prefix or "/", kind, real if _PYDIR.match(real) and kind == "system" else None


def static_python_env(ctx, tree_env: Optional[Dict[str, str]] = None):
    """The python_env fact of a --root tree, or Unavailable. Which environment: --python (a path inside the tree),
    else $VIRTUAL_ENV / $CONDA_PREFIX of the tree's own environment, else one with vllm or torch installed, else the
    first system one, else the first found. The others are listed under 'others'."""
    envs = []
    for prefix, kind in find_environments(ctx):
        pydir = None
        if kind == "system":
            prefix, pydir = prefix.split("#")
        info = describe(ctx, prefix, kind, pydir)
        if info:
            envs.append(info)
    chosen, why = None, None
    if ctx.python:
        exe = ctx.machine_path(ctx.python)
        if not _lexists(ctx, exe):
            return Unavailable(f"--python {exe}: no such file in the tree {ctx.root}")
        prefix, kind, pydir = _owner(ctx, exe)
        chosen = describe(ctx, prefix, kind, pydir)
        if chosen is None:
            return Unavailable(f"--python {exe}: no Python environment around it in the tree (no lib/python3.X)")
        chosen["executable"] = exe
        why = "--python"
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        wanted = (tree_env or {}).get(var)
        if chosen is None and wanted:
            chosen = next((e for e in envs if e["prefix"] == wanted.rstrip("/")), None)
            why = f"${var} of the tree" if chosen else None
    if chosen is None:
        for names, reason in ((("vllm",), "has vllm installed"), (("torch",), "has torch installed")):
            chosen = next((e for e in envs if _has(ctx, e, names)), None)
            if chosen:
                why = reason
                break
    if chosen is None:
        chosen = next((e for e in envs if e["kind"] == "system"), None)
        why = "the first system Python" if chosen else None
    if chosen is None and envs:
        chosen, why = envs[0], "the first environment found"
    if chosen is None:
        return Unavailable(NO_PYTHON)
    chosen["chosen_by"] = why
    chosen["requested"] = chosen["executable"] if why != "--python" else exe
    chosen["others"] = [
        _summary(e) for e in envs if e["prefix"] != chosen["prefix"] or e["executable"] != chosen["executable"]
    ]
    return chosen
