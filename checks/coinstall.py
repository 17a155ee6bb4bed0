"""Checks of what two installs left in one environment: files owned by two distributions, two CUDA majors in one
process (BW515, BW516)."""

from __future__ import annotations

import os
import re
from typing import Dict, List, Tuple

from bwdoctor.model import Pass, Problem, Skip
from bwdoctor.registry import check

CUDA_SONAME = re.compile(r"^(lib[A-Za-z_]+)\.so\.(\d+)$")
SHOWN = 5


def _is_library(path: str) -> bool:
    return bool(re.search(r"\.so(\.\d+)*$", os.path.basename(path)))


def _list(paths: List[str]) -> str:
    return ", ".join(paths[:SHOWN]) + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


@check("BW515", "files-owned-by-one-distribution", severity="warning", kb="files-owned-by-two-distributions")
def files_owned_by_one_distribution(shared_files):
    """No file on disk belongs to one installed distribution while another's RECORD lists other contents for it
    (a cu13 wheel installed over a cu12 one replaces its libnccl.so.2, libcudnn*.so.9 at the same paths)."""
    files = shared_files.get("files") or []
    if not files:
        return Pass(
            f"no file is listed by two distributions with different contents "
            f"({shared_files.get('distributions_checked', 0)} RECORD files compared)"
        )
    pairs: Dict[Tuple[str, str], dict] = {}
    unowned: List[dict] = []
    for f in files:
        if f.get("owner") is None:
            if f.get("how") in ("size", "hash"):
                unowned.append(f)
            continue
        for other in f.get("listed_by") or []:
            if other["distribution"] == f["owner"]:
                continue
            key = (f["owner"], other["distribution"])
            pair = pairs.setdefault(
                key, {"owner_version": f.get("owner_version"), "version": other.get("version"), "paths": []}
            )
            pair["paths"].append(f["path"])
    out: List[Problem] = []
    for (owner, victim), pair in sorted(pairs.items()):
        paths = pair["paths"]
        libs = [p for p in paths if _is_library(p)]
        shown = libs or paths
        out.append(
            Problem(
                f"{len(paths)} file(s) of {victim} {pair['version']} now hold {owner} {pair['owner_version']}'s bytes "
                f"({_list([os.path.basename(p) for p in shown])}): both wheels install to the same paths, so the last "
                f"one installed overwrote the other's files. What loads {victim}'s libraries gets {owner}'s build "
                f"(another version, possibly another CUDA major), and uninstalling either one deletes the file the "
                "other still lists",
                {
                    "owner": owner,
                    "owner_version": pair["owner_version"],
                    "overwritten": victim,
                    "overwritten_version": pair["version"],
                    "paths": paths[:50],
                    "count": len(paths),
                    "fix": f"keep one of them: pip uninstall -y {victim} {owner}, then pip install --force-reinstall "
                    "--no-deps the one the installed torch requires (pip show torch lists it); a stack for another "
                    "CUDA major goes in its own virtual environment",
                },
                severity="error" if libs else None,
            )
        )
    if unowned:
        names = sorted({e["distribution"] for f in unowned for e in f.get("listed_by") or []})
        out.append(
            Problem(
                f"{len(unowned)} file(s) listed by {', '.join(names)} match none of their RECORDs "
                f"({_list([os.path.basename(f['path']) for f in unowned])}): installed by one, overwritten by "
                "something else since",
                {
                    "paths": [f["path"] for f in unowned][:50],
                    "listed_by": names,
                    "fix": f"pip install --force-reinstall --no-deps {' '.join(names)} "
                    "(one CUDA major per environment)",
                },
            )
        )
    return out


def _majors(libs: Dict[str, str]) -> Dict[str, Dict[str, str]]:
    """{family: {major: path}} of CUDA libraries given as {soname: path}."""
    out: Dict[str, Dict[str, str]] = {}
    for soname, path in libs.items():
        m = CUDA_SONAME.match(soname)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = path
    return out


def _by_torch(torch_libs: Dict[str, str], soname: str, path: str, dist: str) -> str:
    return ", loaded by torch" if dist != "torch" and torch_libs.get(soname) == path else ""


@check("BW516", "one-cuda-major-per-process", severity="warning", kb="two-cuda-runtimes")
def one_cuda_major_per_process(extension_links):
    """Importing torch and each compiled extension maps one CUDA major: never libcudart.so.12 and libcudart.so.13
    (or cuBLAS 12 and 13...) into the same process."""
    torch_libs = extension_links.get("torch_cuda_libraries") or {}
    exts = extension_links.get("extensions") or []
    out: List[Problem] = []
    groups = [("torch", None, torch_libs)] + [
        (e["distribution"], e.get("version"), e.get("cuda_libraries")) for e in exts
    ]
    seen = 0
    for dist, version, libs in groups:
        if libs is None:
            continue
        seen += 1
        both = {fam: m for fam, m in _majors({**torch_libs, **libs}).items() if len(m) > 1}
        if not both:
            continue
        fam = "libcudart" if "libcudart" in both else sorted(both)[0]
        listed = "; ".join(
            f"{f}.so.{major} ({path}{_by_torch(torch_libs, f'{f}.so.{major}', path, dist)})"
            for f, majors in sorted(both.items())
            for major, path in sorted(majors.items())
        )
        who = "import torch" if dist == "torch" else f"importing {dist} {version or ''} after torch".replace("  ", " ")
        out.append(
            Problem(
                f"{who} maps two CUDA major versions into one process: {listed}. Each runtime keeps its own state; "
                "memory, streams and handles made by one are used by code built for the other, and the mixed stack "
                f"fails at run time ({fam} {' and '.join(sorted(both[fam]))})",
                {
                    "distribution": dist,
                    "libraries": {f: majors for f, majors in sorted(both.items())},
                    "fix": f"install the {dist} build for torch's CUDA major (or the torch build for {dist}'s), in an "
                    "environment with one CUDA major: pip install --force-reinstall the matching wheels "
                    "(e.g. the cu12x or cu13x index of each), or a fresh virtual environment",
                },
            )
        )
    if out:
        return out
    if not seen or (not exts and not torch_libs):
        return Skip("no compiled extension or torch CUDA library was read")
    return Pass("each import maps one CUDA major")
