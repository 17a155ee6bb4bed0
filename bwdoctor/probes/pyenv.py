"""Probes of the inspected Python environment: its interpreter, sys.path, and installed distributions.

On the live machine the interpreter is asked for its sys.path in a subprocess that imports only the standard
library; in a --root tree the environments are found from files alone (probes/pystatic.py) and nothing of the
tree is run. Distribution metadata is then read through the context. torch is never imported.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from ..model import Unavailable
from ..registry import probe

_SCRIPT = (
    "import json, sys, sysconfig, site\n"
    "try:\n    sp = site.getsitepackages()\nexcept Exception:\n    sp = []\n"
    "print(json.dumps({'executable': sys.executable, 'version': '%d.%d.%d' % sys.version_info[:3],"
    " 'sys_path': [p for p in sys.path if p], 'site_packages': sp + [sysconfig.get_paths().get('purelib')],"
    " 'prefix': sys.prefix, 'base_prefix': sys.base_prefix, 'platform': sysconfig.get_platform(),"
    " 'soabi': sysconfig.get_config_var('SOABI'), 'libdir': sysconfig.get_config_var('LIBDIR'),"
    " 'ldlibrary': sysconfig.get_config_var('LDLIBRARY'), 'shared': bool(sysconfig.get_config_var('Py_ENABLE_SHARED')),"
    " 'include': sysconfig.get_paths().get('include')}))\n"
)


def default_interpreter(env) -> str:
    """The interpreter to inspect: $VIRTUAL_ENV's, else $CONDA_PREFIX's, else the one running bwdoctor.

    An environment variable that names a directory without an interpreter gives that missing path (the probe
    then says so), never bwdoctor's own interpreter in its place."""
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        base = env.get(var)
        if base:
            for cand in (Path(base) / "bin" / "python", Path(base) / "bin" / "python3"):
                if cand.exists():
                    return str(cand)
            return str(Path(base) / "bin" / "python")
    return sys.executable


def _same_interpreter(path: str) -> bool:
    try:
        return os.path.samefile(path, sys.executable) and Path(sys.prefix).resolve() == _prefix_of(path)
    except OSError:
        return False


def _prefix_of(path: str) -> Path:
    """The prefix a venv interpreter belongs to (the dir holding pyvenv.cfg), else its install prefix."""
    p = Path(path).absolute()
    if (p.parent.parent / "pyvenv.cfg").exists():
        return p.parent.parent.resolve()
    return Path(sys.base_prefix).resolve() if os.path.samefile(path, sys.executable) else p.parent.parent


def _self_info() -> dict:
    import site
    import sysconfig

    try:
        sp = site.getsitepackages()
    except Exception:
        sp = []
    return {
        "executable": sys.executable,
        "version": "%d.%d.%d" % sys.version_info[:3],
        "sys_path": [p for p in sys.path if p],
        "site_packages": sp + [sysconfig.get_paths().get("purelib")],
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "platform": sysconfig.get_platform(),
        "soabi": sysconfig.get_config_var("SOABI"),
        "libdir": sysconfig.get_config_var("LIBDIR"),
        "ldlibrary": sysconfig.get_config_var("LDLIBRARY"),
        "shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
        "include": sysconfig.get_paths().get("include"),
    }


@probe("python_env", budget=12.0)
def python_env(ctx):
    """Interpreter, version, sys.path and site-packages of the inspected environment (no torch import).

    In a --root tree they are read from files (pyvenv.cfg, conda-meta, lib/python3.X) and no interpreter runs."""
    if ctx.in_tree:
        from .pystatic import static_python_env  # only a --root tree needs the static discovery

        return static_python_env(ctx, ctx.recorded_environment())
    exe = ctx.python or default_interpreter(ctx.env)
    if not os.path.exists(exe):
        return Unavailable(f"Python interpreter {exe} does not exist")
    if os.path.isdir(exe):
        return Unavailable(f"{exe} is a directory, not a Python interpreter (name its bin/python)")
    if not os.access(exe, os.X_OK):
        return Unavailable(f"{exe} is not executable")
    if not ctx.python and exe == sys.executable or _same_interpreter(exe):
        info = _self_info()
        info["source"] = "self"
    else:
        env = {k: v for k, v in ctx.env.items() if k not in ("PYTHONSTARTUP", "PYTHONINSPECT")}
        env["PYTHONNOUSERSITE"] = env.get("PYTHONNOUSERSITE", "")
        if not env["PYTHONNOUSERSITE"]:
            del env["PYTHONNOUSERSITE"]
        from .. import cache

        store = cache.store(ctx)
        named = sorted([k, v] for k, v in env.items() if k.startswith("PYTHON") or k == "HOME")
        key = ("python_env", exe, cache.fingerprint([_SCRIPT, named]))
        info = cache.memo("python-env", key, lambda w: _ask_interpreter(ctx, exe, env, w), store)
        if isinstance(info, Unavailable):
            return info
        info = dict(info)  # the cache's copy stays as the interpreter gave it
    info["requested"] = exe
    info["site_packages"] = [p for p in dict.fromkeys(info.get("site_packages") or []) if p]
    return info


def _ask_interpreter(ctx, exe: str, env: dict, witness):
    """The interpreter's own answer (_SCRIPT in a child), or Unavailable; `witness` notes what that answer depends
    on, so that it is asked again only when one of them changes: the interpreter and its pyvenv.cfg, every
    directory of its sys.path and site-packages (a .pth or an egg added or removed changes its mtime), every .pth
    file in them and a sitecustomize/usercustomize module beside them, and the user site-packages directory."""
    res = ctx.run([exe, "-c", _SCRIPT], timeout=10.0, env=env)
    if isinstance(res, Unavailable):
        return res
    if res.returncode != 0:
        lines = [ln for ln in (res.stderr or "").strip().splitlines() if ln.strip()]
        tail = [ln for ln in lines if "sysconfig" not in ln][-1:] or lines[:1] or ["no error text"]
        if "sysconfig" in tail[0]:  # a program that echoes the Python code it was given back
            tail = ["it did not run the Python code it was given"]
        return Unavailable(
            f"{exe} exited with {res.returncode} when asked for its sys.path (is it a Python interpreter?): "
            f"{tail[0][:160]}"
        )
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("sys_path"), list):
        return Unavailable(f"{exe} is not a Python interpreter: it did not print its sys.path as JSON")
    info["source"] = "subprocess"
    _witness_interpreter(witness, exe, env, info)
    return info


def _witness_interpreter(witness, exe: str, env: dict, info: dict) -> None:
    bindir = os.path.dirname(os.path.abspath(exe))
    witness.see_all([exe, os.path.join(bindir, "pyvenv.cfg"), os.path.join(os.path.dirname(bindir), "pyvenv.cfg")])
    dirs = [p for p in [*info.get("sys_path", []), *(info.get("site_packages") or [])] if isinstance(p, str) and p]
    if not all(os.path.isabs(p) for p in dirs):
        witness.keep = False  # a relative entry depends on the working directory: ask every time
    for d in dict.fromkeys(dirs):
        witness.see(d)
        for name in ("sitecustomize.py", "usercustomize.py"):
            witness.see(os.path.join(d, name))
        try:
            names = os.listdir(d)
        except (OSError, ValueError):
            continue
        witness.see_all(os.path.join(d, n) for n in names if n.endswith(".pth"))
    version = str(info.get("version") or "").split(".")
    base = env.get("PYTHONUSERBASE") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local")
    if len(version) >= 2:
        witness.see(os.path.join(base, "lib", f"python{version[0]}.{version[1]}", "site-packages"))


def canonical(name: str) -> str:
    """PEP 503 canonical distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


META_LIMIT = 1 << 20  # metadata headers end long before this; descriptions after them are never read


def read_metadata_headers(path: str, ctx=None) -> dict:
    """Name, Version and Requires-Dist from a METADATA/PKG-INFO file, reading the header block only.

    path: a machine path read through ctx (a host path when ctx is None). Only a regular file is read."""
    from ..context import Context

    out: dict = {"requires": []}
    last = None
    data = (ctx or Context()).read_bytes(path, limit=META_LIMIT)
    for raw in data.decode("utf-8", "replace").splitlines():
        if not raw.strip():
            break
        if raw[0] in " \t" and last:  # folded header line
            continue
        key, sep, val = raw.partition(":")
        if not sep:
            continue
        key, val = key.strip().lower(), val.strip()
        last = key
        if key == "name" and "name" not in out:
            out["name"] = val
        elif key == "version" and "version" not in out:
            out["version"] = val
        elif key == "requires-dist":
            out["requires"].append(val)
    return out


def _egg_requires(ctx, egg_info: str) -> list:
    """Requires-Dist-like strings from an .egg-info/requires.txt (extras sections become markers)."""
    out: list = []
    extra = None
    try:
        text = ctx.read_text(os.path.join(egg_info, "requires.txt"), limit=META_LIMIT)
    except (OSError, ValueError):
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            extra = line.strip("[]").split(":")[0] or None
            continue
        out.append(f'{line}; extra == "{extra}"' if extra else line)
    return out


def _read_dist(ctx, entry: str, name: str):
    path = os.path.join(entry, name)
    if name.endswith(".dist-info"):
        meta = os.path.join(path, "METADATA")
        info = read_metadata_headers(meta, ctx)
    elif name.endswith(".egg-info"):
        is_dir = ctx.is_dir(path)
        meta = os.path.join(path, "PKG-INFO") if is_dir else path
        info = read_metadata_headers(meta, ctx)
        if is_dir:
            info["requires"] = info["requires"] or _egg_requires(ctx, path)
    else:
        return None
    return info if info.get("name") else None


@probe("distributions", budget=8.0)
def distributions(ctx, python_env):
    """Installed distributions on the inspected sys.path: name, version, location, Requires-Dist.

    Metadata headers are read directly (no email parsing of long descriptions). The first copy on
    sys.path wins (as import does); later copies are listed under 'shadowed'.
    """
    if isinstance(python_env, Unavailable):
        return python_env  # e.g. "no Python environment in this tree": never another machine's
    from .. import cache

    store = cache.store(ctx)
    if store is None or not ctx.live_machine:
        return _distributions(ctx, python_env, cache.Witness())
    key = ("distributions", cache.fingerprint(python_env.get("sys_path", [])))
    return cache.memo("distributions", key, lambda w: _distributions(ctx, python_env, w), store)


def _distributions(ctx, python_env: dict, witness) -> list:
    """distributions' list; `witness` notes the metadata entries of each sys.path directory (a distribution
    installed or removed changes them; other files written there do not matter) and each metadata file read."""
    seen: dict = {}
    for entry in python_env.get("sys_path", []):
        witness.see_names(entry, (".dist-info", ".egg-info"))
        try:
            names = ctx.listdir(entry)
        except (OSError, ValueError):
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            path = os.path.join(entry, name)
            if name.endswith(".dist-info"):
                witness.see(os.path.join(path, "METADATA"))
            else:  # an .egg-info file, or a directory with PKG-INFO and requires.txt
                witness.see_all([path, os.path.join(path, "PKG-INFO"), os.path.join(path, "requires.txt")])
            try:
                info = _read_dist(ctx, entry, name)
            except (OSError, ValueError):
                continue
            if info is None:
                continue
            key = canonical(info["name"])
            dist_info = os.path.join(entry, name)
            if key in seen:
                if seen[key]["location"] != entry:
                    seen[key].setdefault("shadowed", []).append(
                        {"version": info.get("version"), "dist_info": dist_info}
                    )
                continue
            seen[key] = {
                "name": key,
                "version": info.get("version") or "",
                "location": entry,
                "requires": info["requires"],
                "dist_info": dist_info,
            }
    return [seen[k] for k in sorted(seen)]


def installed_elf_files(ctx, d: dict, shared_only: bool = False, witness=None) -> tuple:
    """(host paths of the ELF files a `distributions` item owns per its RECORD, error text or None).

    The fact names machine paths; under --root they are read inside the tree (a host path already under the
    root, as older facts gave, is taken as it is). A symlink loop in the tree is an error, never a raise.
    witness: a bwdoctor.cache.Witness to note the RECORD and every file it names as a candidate in."""
    from ..elf.distfiles import record_elf_files

    root = str(ctx.root).rstrip("/") or "/"

    def host(p):
        return p if not p or root == "/" or p.startswith(root + "/") else str(ctx.resolve(p))

    from .. import cache

    store = cache.store(ctx)
    try:
        if store is not None:
            hit = _cached_elf_files(store, host(d["dist_info"]), host(d.get("location")), shared_only, witness)
            if hit is not None:
                return hit, None
        files, error = record_elf_files(host(d["dist_info"]), host(d.get("location")), shared_only=shared_only)
        if witness is not None:
            witness.see(os.path.join(host(d["dist_info"]), "RECORD"))  # e.g. an .egg-info without one
            if files:  # read without knowing each candidate (a RECORD changed just now): not kept
                witness.keep = False
        return files, error
    except OSError as exc:
        if witness is not None:
            witness.see(os.path.join(host(d["dist_info"]), "RECORD"))
        return [], f"cannot read its RECORD: {exc}"


def _state(path: str):
    """What record_elf_files' verdict on a path depends on: its identity, or that it is missing / not a file."""
    import stat as stat_mod

    from ..cache import file_key

    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return "missing"
    if not stat_mod.S_ISREG(st.st_mode):
        return "other"
    ident = file_key(st)
    return list(ident) if ident else None


def _cached_elf_files(store, dist_info: str, location, shared_only: bool, witness=None):
    """record_elf_files' list, reused while the RECORD and every file it names as a candidate are unchanged (a
    stat each instead of parsing a RECORD of thousands of rows); None when it must be computed (errors included)."""
    from ..cache import file_key
    from ..elf.distfiles import SHARED_RE, TEXT_SUFFIXES, _worth_opening, is_elf, parse_record

    record = os.path.join(dist_info, "RECORD")
    try:
        ident = file_key(os.stat(record))
    except (OSError, ValueError):
        return None
    if ident is None:
        return None
    key = (dist_info, location, shared_only, *ident)
    hit = store.get("elf-files", key)
    if isinstance(hit, dict) and isinstance(hit.get("states"), list) and isinstance(hit.get("files"), list):
        try:
            if all(_state(p) == st for p, st in hit["states"]):
                if witness is not None:
                    witness.see(record)
                    witness.see_all(str(p) for p, _st in hit["states"])
                return [str(p) for p in hit["files"]]
        except (TypeError, ValueError):
            pass
    from .. import fileio
    from ..elf.distfiles import RECORD_LIMIT

    try:
        text = fileio.read_bytes(record, RECORD_LIMIT).decode("utf-8", errors="replace")
    except OSError:
        return None
    base = location or os.path.dirname(dist_info)
    candidates = []
    for rel in parse_record(text):
        if os.path.splitext(rel)[1].lower() in TEXT_SUFFIXES or rel.endswith("/"):
            continue
        if shared_only and not SHARED_RE.search(rel):
            continue
        candidates.append(os.path.normpath(os.path.join(base, rel)))
    states = [[p, _state(p)] for p in candidates]
    files = sorted({p for p in candidates if _worth_opening(p) and is_elf(p)})
    if all(st is not None for _, st in states):  # a file changed just now is not cached (file_key)
        store.put("elf-files", key, {"states": states, "files": files})
    if witness is not None:
        witness.see(record)
        witness.see_all(candidates)
    return files
