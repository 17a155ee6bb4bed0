"""Checks of the dynamic-link state of compiled extensions (family linking, BW4xx)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from bwdoctor.model import Pass, Problem, Skip
from bwdoctor.registry import check

from .linkcauses import (
    COMPANIONS,
    built_for_other_torch_slug,
    classify,
    companion_version,
    fix_for,
    fix_for_other_torch,
    torch_matches,
)

__all__ = ["built_for_other_torch", "companion_version", "extensions_load", "fix_for"]


def _consequence(f: dict, own: set) -> bool:
    """A file that fails only because a sibling library of the same package failed first."""
    miss = f.get("missing_libraries") or []
    return bool(miss) and all(m["name"] in own for m in miss)


@check("BW401", "extensions-load", severity="error", kb="undefined-symbol", optional=("torch_build",))
def extensions_load(extension_links, torch_build):
    """Every compiled extension of vLLM, flash-attn, xformers, torchvision, torchaudio... will load.

    One finding per distribution and cause, naming the import that fails (evidence.import); a library
    loaded inside try/except is a warning without an import; an extension that links but was built for
    another torch (pins, version tags, cpp_lib.json) is a finding without an import."""
    exts = extension_links.get("extensions") or []
    if not exts:
        return Skip("no compiled extension of vLLM, flash-attn, xformers, torchvision, torchaudio... installed")
    tv = torch_build.get("version") if isinstance(torch_build, dict) else extension_links.get("torch")
    cuda = torch_build.get("cuda") if isinstance(torch_build, dict) else None
    out = []
    pins = {p.evidence["distribution"]: p for p in built_for_other_torch(exts, tv)}
    for e in exts:
        if e["distribution"] in pins:  # links (or only optional parts fail), but built for another torch
            out.append(pins[e["distribution"]])
        for gap in e.get("missing_modules") or []:
            out.append(missing_module_problem(e, gap))
        if not e["files"]:
            if e["distribution"] in pins or e.get("missing_modules"):
                continue
            if e["checked"]:
                out.append(Pass(f"{e['distribution']} {e['version']}: all {e['checked']} libraries link"))
            else:  # nothing checked is never a pass
                out.append(
                    Skip(
                        f"{e['distribution']} {e['version']}: none of its libraries is the one its import loads here "
                        "(no library for this torch's CUDA), so nothing was checked"
                    )
                )
            continue
        own = {os.path.basename(f["path"]) for f in e["files"]}
        groups: Dict[Any, List[dict]] = {}  # one finding per cause (each has its own fix), naming what it breaks
        for raw in e["files"]:
            verdict = classify(raw, torch_build, e["distribution"], e.get("built_for"))
            if verdict is not None and not _consequence(raw, own):
                f = dict(raw, **verdict)
                groups.setdefault((f["cause"], bool(f.get("soft"))), []).append(f)
        for (cause, soft), files in groups.items():
            hard = [f for f in files if f.get("import")]
            f = min(hard, key=lambda x: (x["import"].count("."), x["import"])) if hard else files[0]
            imports = sorted({x["import"] for x in hard})
            more = f" (and {len(files) - 1} more file(s))" if len(files) > 1 else ""
            ev = {
                "distribution": e["distribution"],
                "version": e["version"],
                "path": f["path"],
                "cause": cause,
                "undefined": f["undefined"][:5],
                "undefined_count": f.get("undefined_count", len(f["undefined"])),
                "missing_libraries": f["missing_libraries"][:3],
                "missing_versions": f["missing_versions"][:3],
                "built_for": e.get("built_for"),
                "torch": tv,
                "fix": fix_for(cause, e["distribution"], tv, cuda, e.get("built_for")),
            }
            if f.get("package"):
                ev["package"] = f["package"]
                ev["fix"] = wheel_fix(f["package"], torch_build)
            if soft:
                out.append(
                    Problem(
                        f"{e['distribution']} {e['version']}: {f['soft']}: {f['summary']}{more}",
                        dict(ev, files=[x["path"] for x in files]),
                        severity="warning",
                        kb=cause,
                    )
                )
                continue
            ev["import"] = f["import"]
            if len(imports) > 1:
                ev["imports"] = imports
            out.append(Problem(f"import {f['import']} will fail: {f['summary']}{more}. Fix: {ev['fix']}", ev, kb=cause))
    return out


# The first release of a distribution that no longer imports the module (read from the PyPI wheels).
MODULE_FIXED_IN = {("bitsandbytes", "triton.ops"): "0.45.1"}


def missing_module_problem(e: dict, gap: dict) -> Problem:
    """`import X` fails on a pure-Python import before any library is loaded."""
    dist, module = e["distribution"], gap["module"]
    fixed = MODULE_FIXED_IN.get((dist, module))
    fix = (
        f"pip install '{dist}>={fixed}' (it no longer imports {module})"
        if fixed
        else f"install a {gap['provider']} release that has {module}, or a {dist} release that does not import it"
    )
    return Problem(
        f"import {dist} will fail: No module named '{module}' ({os.path.basename(gap['imported_by'])}:{gap['line']} "
        f"`{gap['text']}`; {gap['provider']} {gap['provider_version']} has no {module}). Fix: {fix}",
        {
            "distribution": dist,
            "version": e["version"],
            "import": dist,
            "path": gap["imported_by"],
            "cause": "missing-python-module",
            "module": module,
            "provider": gap["provider"],
            "provider_version": gap["provider_version"],
            "fix": fix,
        },
        kb="missing-library",
    )


# torch >= 2.11 for CUDA 13 requires the cuda-toolkit meta-package with one extra per library (its METADATA:
# cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.2)
TOOLKIT_EXTRA = {
    "cuda-runtime": "cudart",
    "cublas": "cublas",
    "cuda-nvrtc": "nvrtc",
    "cuda-cupti": "cupti",
    "cufft": "cufft",
    "curand": "curand",
    "cusolver": "cusolver",
    "cusparse": "cusparse",
    "nvjitlink": "nvjitlink",
    "nvtx": "nvtx",
    "cufile": "cufile",
}


def wheel_fix(package: str, torch_build) -> str:
    """Install the NVIDIA wheel that provides a missing CUDA library, at the version torch pins when it does."""
    from packaging.requirements import InvalidRequirement, Requirement

    component = package.rsplit("-cu", 1)[0].removeprefix("nvidia-")
    for line in (torch_build or {}).get("requires") or [] if isinstance(torch_build, dict) else []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.name.lower().replace("_", "-") == package.lower() and req.specifier:
            return f"pip install '{req.name}{req.specifier}' (the version torch pins)"
        extra = TOOLKIT_EXTRA.get(component)
        if req.name.lower() == "cuda-toolkit" and extra in req.extras and req.specifier:
            return f"pip install '{req.name}[{extra}]{req.specifier}' (the CUDA toolkit wheels torch pins)"
    return f"pip install {package}"


def built_for_other_torch(exts: list, tv: Optional[str]) -> list:
    """Findings for extensions that link but were built for another torch (Requires-Dist pins, version
    tags, cpp_lib.json): torchvision 0.23 (torch==2.8.0) under torch 2.9.1 links, then crashes at import."""
    if not tv:
        return []
    out = []
    for e in exts:
        built = e.get("built_for")
        if torch_matches(built, tv) is not False or not built:
            continue
        if any(not f.get("soft") for f in e["files"]):
            continue  # BW401 already reports this distribution, with the build it was made for
        want = built.get("torch") or built.get("range")
        fix = fix_for_other_torch(e["distribution"], tv, built)
        what = (
            "crash at import (a segmentation fault) or fail on first use"
            if e["distribution"] in COMPANIONS
            else "fail at import or on first use"
        )
        out.append(
            Problem(
                f"{e['distribution']} {e['version']} was built for torch {want} ({built['source']}), but torch {tv} is "
                f"installed: its compiled code links today yet may {what}. Fix: {fix}",
                {
                    "distribution": e["distribution"],
                    "version": e["version"],
                    "path": e.get("dist_info"),
                    "built_for": built,
                    "torch": tv,
                    "fix": fix,
                },
                kb=built_for_other_torch_slug(e["distribution"]),
            )
        )
    return out
