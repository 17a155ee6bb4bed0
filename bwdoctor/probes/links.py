"""Would each compiled extension of the inspected environment load? (dynamic-link model, nothing loaded)"""
from __future__ import annotations

import os
from typing import List

from ..elf.demangle import demangle
from ..elf.distfiles import record_elf_files
from ..elf.dynlink import interpreter_loader
from ..elf.linkcause import classify, module_of
from ..model import Unavailable
from ..registry import probe

EXTENSION_DISTS = ("vllm", "flash-attn", "flashinfer-python", "xformers", "torchvision", "torchaudio",
                   "bitsandbytes", "sgl-kernel", "vllm-flash-attn", "flash-attn-3", "deep-gemm")
MAX_SYMBOLS = 20


def _requires_torch(d: dict) -> bool:
    return any(r.split(";")[0].strip().lower().startswith("torch") and
               not r.split(";")[0].strip().lower().startswith(("torchvision", "torchaudio", "torchao"))
               for r in d.get("requires") or [])


def link_result(ld, path: str, location: str, torch_build) -> dict:
    """One file's verdict: missing libraries, versions and symbols (demangled), and the cause."""
    r = ld.check(path)
    cause = classify(r, torch_build)
    und = [{"symbol": u["symbol"], "demangled": demangle(u["symbol"]), "version": u["version"],
            "required_by": u["required_by"]} for u in r["undefined"][:MAX_SYMBOLS]]
    return {"path": path, "import": module_of(path, location), "loads": cause is None,
            "cause": cause["cause"] if cause else None, "summary": cause["summary"] if cause else None,
            "missing_libraries": r["missing_libraries"][:5], "missing_versions": r["missing_versions"][:5],
            "undefined": und, "undefined_count": len(r["undefined"]), "error": r["error"]}


def dist_results(ld, paths, location, torch_build) -> List[dict]:
    """Results for one distribution's libraries. A package loads its own libraries first (torchaudio
    loads lib/libtorchaudio.so before _torchaudio.so), so libraries that link become available by
    soname to the others, until nothing changes."""
    added = []
    results = {p: link_result(ld, p, location, torch_build) for p in paths}
    for _ in range(len(paths)):
        fresh = [p for p, r in results.items() if r["loads"] and p not in added]
        if not fresh:
            break
        for p in fresh:
            obj = ld.open(p)
            if hasattr(obj, "needed"):
                for key in {obj.soname, os.path.basename(p)} - {None}:
                    if key not in ld.loaded:
                        ld.loaded[key] = obj
                        added.append((key, p))
        added_paths = {a[1] for a in added}
        results = {p: (r if r["loads"] else link_result(ld, p, location, torch_build)) for p, r in results.items()}
        added = [a for a in added] + [(None, p) for p in fresh if p not in added_paths]
    for key, _ in added:
        if key:
            ld.loaded.pop(key, None)
    own = {os.path.basename(p) for p in paths}

    def root_cause_first(r):  # a file that fails only because a sibling failed is listed after it
        return (r["loads"], bool(r["missing_libraries"]) and r["missing_libraries"][0]["name"] in own)

    return sorted((results[p] for p in paths), key=root_cause_first)


@probe("extension_links", budget=15.0)
def extension_links(ctx, python_env, distributions, torch_build):
    """Compiled extensions of vLLM, flash-attn, xformers, torchvision, torchaudio... that will not load, and why."""
    if isinstance(distributions, Unavailable) or isinstance(python_env, Unavailable):
        return Unavailable("the inspected environment is unknown")
    torch_dir = None
    if not isinstance(torch_build, Unavailable):
        torch_dir = os.path.join(torch_build["location"], "torch")
    ld_plain, notes = interpreter_loader(python_env, str(ctx.root), dict(ctx.env))
    ld_torch = None
    out: List[dict] = []
    for d in distributions:
        if d["name"] == "torch" or not (d["name"] in EXTENSION_DISTS or _requires_torch(d)):
            continue
        if not d.get("dist_info"):
            continue
        paths, err = record_elf_files(d["dist_info"], d.get("location"), shared_only=True)
        if not paths:
            continue
        if torch_dir and _requires_torch(d) or d["name"] in ("torchvision", "torchaudio", "xformers"):
            if ld_torch is None:
                ld_torch, n2 = interpreter_loader(python_env, str(ctx.root), dict(ctx.env), torch_dir)
                notes += n2
            ld = ld_torch
        else:
            ld = ld_plain
        files = dist_results(ld, paths, d["location"], torch_build)
        out.append({"distribution": d["name"], "version": d["version"], "requires_torch": _requires_torch(d),
                    "files": [f for f in files if not f["loads"]], "checked": len(files)})
    return {"extensions": out, "notes": notes}
