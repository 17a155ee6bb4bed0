"""Checks of the dynamic-link state of compiled extensions (family linking, BW4xx)."""
from __future__ import annotations

import os
import re
from typing import Optional

from bwdoctor.model import Pass, Problem, Skip
from bwdoctor.registry import check

COMPANIONS = ("torchvision", "torchaudio")


def companion_version(name: str, torch_version: Optional[str]) -> Optional[str]:
    """The torchvision/torchaudio release paired with a torch 2.x.y: torchvision 0.(x+15).y, torchaudio 2.x.y."""
    m = re.match(r"^2\.(\d+)\.(\d+)", torch_version or "")
    if not m:
        return None
    minor, patch = int(m.group(1)), int(m.group(2))
    return f"0.{minor + 15}.{patch}" if name == "torchvision" else f"2.{minor}.{patch}" if name == "torchaudio" else None


def _index(torch_version: Optional[str]) -> str:
    """The PyTorch index of the installed torch's variant (+cu128 → .../whl/cu128), when it has one."""
    m = re.search(r"\+(cu\d+|cpu|rocm[\d.]+)$", torch_version or "")
    return f" --index-url https://download.pytorch.org/whl/{m.group(1)}" if m else ""


def fix_for(cause: str, dist: str, torch: Optional[str], cuda: Optional[str], built: Optional[dict]) -> str:
    """The command (or the action) that makes a distribution's extensions load again."""
    public = (torch or "").split("+")[0]
    want = built.get("torch") if built else None
    if cause == "cpu-torch-cuda-extension":
        cpu = (f", or for CPU only: pip install {dist}=={companion_version(dist, public)}{_index(torch)}"
               if dist in COMPANIONS and companion_version(dist, public) else "")
        return (f"pip install --force-reinstall 'torch=={public or '<version>'}' --index-url "
                f"https://download.pytorch.org/whl/cu128 (a CUDA build of torch){cpu}")
    if dist in COMPANIONS and companion_version(dist, public):
        return f"pip install {dist}=={companion_version(dist, public)}{_index(torch)}"
    if cause in ("undefined-symbol", "torchvision-mismatch"):
        alt = f"pip install 'torch=={want}' (the torch {dist} was built for), or " if want else ""
        return (f"{alt}install a {dist} release built for torch {public or '(installed)'}, or rebuild it against "
                f"this torch: pip install --no-build-isolation --no-cache-dir --force-reinstall {dist}")
    if cause == "cxx11-abi-mismatch":
        return (f"install a {dist} build with torch's std::string ABI (wheel names say cxx11abiTRUE/FALSE), or rebuild "
                f"it against this torch: pip install --no-build-isolation --no-cache-dir --force-reinstall {dist}")
    if cause == "cuda-major-mismatch":
        return f"install the {dist} build for CUDA {cuda or 'of torch'} (from the same index as torch), or a torch for its CUDA"
    if cause == "libstdcxx-too-old":
        return ("put a newer libstdc++ first (conda install -c conda-forge 'libstdcxx-ng>=12' in conda, "
                "sudo apt install libstdc++6 elsewhere), or remove the older copy from LD_LIBRARY_PATH")
    if cause == "driver-too-old":
        return f"upgrade the NVIDIA driver (CUDA 12.8 needs R570+, CUDA 13 R580+), or install a {dist} build for an older CUDA"
    if cause == "no-driver-in-container":
        return "run with the NVIDIA driver visible: docker run --gpus all (NVIDIA Container Toolkit), or install the driver"
    if cause == "sm12x-missing-kernel-symbol":
        return ("rebuild with the kernels the dispatcher references (TORCH_CUDA_ARCH_LIST including 10.0 and 12.0), "
                "or use a vLLM revision whose CMake guards match the built kernels")
    return f"install the package that provides the missing library, or reinstall {dist}: pip install --force-reinstall {dist}"


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
        if not e["files"]:
            if e["distribution"] not in pins:
                out.append(Pass(f"{e['distribution']} {e['version']}: all {e['checked']} libraries link"))
            continue
        own = {os.path.basename(f["path"]) for f in e["files"]}
        groups: dict = {}  # one finding per cause (each has its own fix), naming the imports it breaks
        for f in e["files"]:
            if not _consequence(f, own):
                groups.setdefault((f["cause"], bool(f.get("soft"))), []).append(f)
        for (cause, soft), files in groups.items():
            hard = [f for f in files if f.get("import")]
            f = min(hard, key=lambda x: (x["import"].count("."), x["import"])) if hard else files[0]
            imports = sorted({x["import"] for x in hard})
            more = f" (and {len(files) - 1} more file(s))" if len(files) > 1 else ""
            ev = {"distribution": e["distribution"], "version": e["version"], "path": f["path"], "cause": cause,
                  "undefined": f["undefined"][:5], "undefined_count": f.get("undefined_count", len(f["undefined"])),
                  "missing_libraries": f["missing_libraries"][:3], "missing_versions": f["missing_versions"][:3],
                  "built_for": e.get("built_for"), "torch": tv,
                  "fix": fix_for(cause, e["distribution"], tv, cuda, e.get("built_for"))}
            if soft:
                out.append(Problem(f"{e['distribution']} {e['version']}: {f['soft']}: {f['summary']}{more}",
                                   dict(ev, files=[x["path"] for x in files]), severity="warning", kb=cause))
                continue
            ev["import"] = f["import"]
            if len(imports) > 1:
                ev["imports"] = imports
            out.append(Problem(f"import {f['import']} will fail: {f['summary']}{more}. Fix: {ev['fix']}", ev, kb=cause))
    return out


def built_for_other_torch(exts: list, tv: Optional[str]) -> list:
    """Findings for extensions that link but were built for another torch (Requires-Dist pins, version
    tags, cpp_lib.json): torchvision 0.23 (torch==2.8.0) under torch 2.9.1 links, then crashes at import."""
    if not tv:
        return []
    out = []
    for e in exts:
        built = e.get("built_for")
        if e.get("torch_matches") is not False or not built:
            continue
        if any(not f.get("soft") for f in e["files"]):
            continue  # BW401 already reports this distribution, with the build it was made for
        want = built.get("torch") or built.get("range")
        fix = fix_for("undefined-symbol", e["distribution"], tv, None, built)
        if e["distribution"] not in COMPANIONS and built.get("torch"):
            fix = f"pip install 'torch=={built['torch']}'{_index(tv)} (the torch it was built for), or a {e['distribution']} release built for torch {tv.split('+')[0]}"
        what = "crash at import (a segmentation fault) or fail on first use" if e["distribution"] in COMPANIONS \
            else "fail at import or on first use"
        out.append(Problem(
            f"{e['distribution']} {e['version']} was built for torch {want} ({built['source']}), but torch {tv} is "
            f"installed: its compiled code links today yet may {what}. Fix: {fix}",
            {"distribution": e["distribution"], "version": e["version"], "path": e.get("dist_info"),
             "built_for": built, "torch": tv, "fix": fix},
            kb="torchvision-mismatch" if e["distribution"] in COMPANIONS else "torch-pin-conflict"))
    return out
