"""Checks of the dynamic-link state of compiled extensions (family linking, BW4xx)."""
from __future__ import annotations

from bwdoctor.model import Pass, Problem, Skip
from bwdoctor.registry import check

FIX = {
    "undefined-symbol": "install the {dist} build made for torch {torch} (pip install --force-reinstall --no-deps {dist}"
                        " built for it), or rebuild it: pip install --no-build-isolation --no-cache-dir {dist}",
    "cxx11-abi-mismatch": "install a {dist} build with the C++11 ABI (cxx11abiTRUE) for torch {torch}, or rebuild "
                          "it against this torch: pip install --no-build-isolation --no-cache-dir {dist}",
    "cuda-major-mismatch": "install the {dist} build for torch's CUDA ({cuda}), e.g. from the same index as torch",
    "cpu-torch-cuda-extension": "install a CUDA build of torch: pip install --force-reinstall torch "
                                "--index-url https://download.pytorch.org/whl/cu128",
    "libstdcxx-too-old": "use a newer libstdc++ (conda install -c conda-forge libstdcxx-ng, or a newer OS image), "
                         "or a {dist} build for this system",
    "driver-too-old": "upgrade the NVIDIA driver (CUDA 12.8+ needs R570+), or install a {dist} build for an older CUDA",
    "no-driver-in-container": "run with the NVIDIA driver visible (docker run --gpus all / the NVIDIA container toolkit)",
    "sm12x-missing-kernel-symbol": "rebuild with TORCH_CUDA_ARCH_LIST including 10.0 as well, or use a vLLM "
                                   "revision whose CMake guards match the built kernels",
    "missing-library": "install the package that provides the missing library, or reinstall {dist}",
}


@check("BW401", "extensions-load", severity="error", kb="undefined-symbol", optional=("torch_build",))
def extensions_load(extension_links, torch_build):
    """Every compiled extension of vLLM, flash-attn, xformers, torchvision, torchaudio... will load."""
    exts = extension_links.get("extensions") or []
    if not exts:
        return Skip("no compiled extension of vLLM, flash-attn, xformers, torchvision, torchaudio... installed")
    tv = torch_build.get("version") if isinstance(torch_build, dict) else "?"
    cuda = torch_build.get("cuda") if isinstance(torch_build, dict) else None
    out = []
    for e in exts:
        if not e["files"]:
            out.append(Pass(f"{e['distribution']} {e['version']}: all {e['checked']} libraries link"))
            continue
        f = e["files"][0]
        more = f" (and {len(e['files']) - 1} more file(s))" if len(e["files"]) > 1 else ""
        fix = FIX.get(f["cause"], FIX["missing-library"]).format(dist=e["distribution"], torch=tv, cuda=cuda)
        out.append(Problem(
            f"import {f['import']} will fail: {f['summary']}{more}",
            {"import": f["import"], "distribution": e["distribution"], "version": e["version"], "path": f["path"],
             "cause": f["cause"], "undefined": f["undefined"][:5], "missing_libraries": f["missing_libraries"][:3],
             "missing_versions": f["missing_versions"][:3], "fix": fix}, kb=f["cause"]))
    return out
