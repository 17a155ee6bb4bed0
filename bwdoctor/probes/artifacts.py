"""Probe of the build artifacts a command names (`cubins`, `verify-build`): files, directories, wheels and
installed distributions, read for their GPU code. One reader for all of them: ELF files by magic, fatbin
headers through bwdoctor.elf.fatbin, a distribution's files from its RECORD (the `distributions` fact)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..elf.distfiles import is_elf, iter_elf_files
from ..elf.fatbin import scan_file
from ..model import Unavailable
from ..registry import probe
from .pyenv import canonical, installed_elf_files

SHARED_RE = re.compile(r"\.so(\.\d+)*$")


def _scan(ctx: Any, path: str) -> Dict[str, Any]:
    """One ELF file's fatbin listing; with ctx.options["units"] (True or "names") also its units (kernels)."""
    item = scan_file(path)
    want = ctx.options.get("units")
    if want:
        from ..elf.cubin import read_units

        item["units"] = read_units(path, names=want == "names")["units"]
    return item


def _wheel(ctx: Any, path: Path) -> Dict[str, Any]:
    """Each shared object of a wheel, extracted one at a time (a vLLM .so is hundreds of MB) and scanned."""
    parts = path.name.split("-")
    files = []
    with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory(prefix="bwdoctor-wheel-") as tmp:
        for member in [n for n in zf.namelist() if SHARED_RE.search(n)]:
            dest = Path(tmp) / "lib.so"
            with zf.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            item = _scan(ctx, str(dest))
            item["path"] = member
            files.append(item)
            dest.unlink()
    return {
        "kind": "wheel",
        "name": canonical(parts[0]),
        "version": parts[1] if len(parts) >= 3 else "",
        "files": files,
    }


def _distribution(ctx: Any, arg: str, distributions: Any) -> Optional[Dict[str, Any]]:
    """The ELF files an installed distribution owns (its RECORD), or None when it is not installed."""
    if isinstance(distributions, Unavailable) or not isinstance(distributions, list):
        return None
    d = next((d for d in distributions if isinstance(d, dict) and d.get("name") == canonical(arg)), None)
    if d is None:
        return None
    paths, err = installed_elf_files(ctx, d)
    out = {
        "kind": "distribution",
        "name": d["name"],
        "version": d.get("version", ""),
        "files": [_scan(ctx, p) for p in paths],
    }
    if err:
        out["problem"] = f"{arg}: {err}"
    return out


def read_artifact(ctx: Any, arg: str, distributions: Any, where: str) -> Dict[str, Any]:
    """One named input: {"arg", "kind", "name", "version", "files": [scan items], "problem"?}.

    Under --root an absolute path names a file of the tree (as `symbols` reads it) and files are reported by
    the paths the inspected machine gives them."""
    out = _read_artifact(ctx, arg, distributions, where)
    if ctx.in_tree and out["kind"] != "wheel":
        out["files"] = [dict(f, path=ctx.machine_path(f["path"])) for f in out["files"]]
    return out


def _read_artifact(ctx: Any, arg: str, distributions: Any, where: str) -> Dict[str, Any]:
    host = str(ctx.host_path(arg)) if ctx.in_tree and os.path.isabs(arg) else arg
    p = Path(host)
    out: Dict[str, Any]
    if p.is_dir():
        out = {
            "kind": "directory",
            "name": p.name,
            "version": "",
            "files": [_scan(ctx, str(f)) for f in iter_elf_files(p)],
        }
    elif p.is_file() and p.suffix == ".whl":
        try:
            out = _wheel(ctx, p)
        except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
            out = {"kind": "wheel", "name": p.name, "version": "", "files": [], "problem": f"{arg}: {exc}"}
    elif os.path.lexists(host):
        out = {
            "kind": "file" if is_elf(host) else "not-elf",
            "name": p.name.split(".")[0],
            "version": "",
            "files": [_scan(ctx, host)],
        }
    elif os.sep in arg or arg.endswith(".so") or ".so." in arg:
        out = {
            "kind": "missing",
            "name": arg,
            "version": "",
            "files": [],
            "problem": f"{arg}: no such file or directory",
        }
    else:
        out = _distribution(ctx, arg, distributions) or {
            "kind": "missing",
            "name": arg,
            "version": "",
            "files": [],
            "problem": f"{arg}: no such file, directory or installed distribution in {where}",
        }
    out["arg"] = arg
    return out


@probe("named_artifacts", budget=900.0)
def named_artifacts(ctx: Any, python_env: Any, distributions: Any) -> List[Dict[str, Any]]:
    """GPU code of the files, directories, wheels and installed distributions a command names."""
    where = (
        f"the environment of {python_env.get('executable')}"
        if isinstance(python_env, dict)
        else f"no Python environment ({python_env.reason})"
        if isinstance(python_env, Unavailable)
        else "the inspected environment"
    )
    return [read_artifact(ctx, str(a), distributions, where) for a in ctx.options.get("artifacts") or []]
