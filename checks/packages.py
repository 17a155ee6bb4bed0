"""Checks of installed packages against the GPU: NCCL, bitsandbytes, duplicate copies, local patches (BW51x)."""

from __future__ import annotations

import re

from bwdoctor.domain.versions import at_least
from bwdoctor.model import Pass, Problem, Skip, Unavailable
from bwdoctor.registry import check

NCCL_MIN_BLACKWELL = "2.26.2"
BNB_MIN_BLACKWELL = "0.45.3"


def _sm12x(targets):
    return [t for t in targets if re.match(r"sm_12\d$", t)]


@check(
    "BW511",
    "nccl-supports-blackwell",
    severity="warning",
    kb="nccl-too-old-blackwell",
    optional=("gpus", "nccl_libraries"),
)
def nccl_supports_blackwell(targets, distributions, gpus, nccl_libraries):
    """The NCCL wheel is 2.26.2 or newer where the target is an RTX 50xx / RTX PRO Blackwell (sm_12x).

    The version is the one of the libnccl.so on disk (its own banner) when that differs from the wheel's: another
    wheel installed at the same path (nvidia-nccl-cu13 over nvidia-nccl-cu12) replaced the library."""
    bw = _sm12x(targets)
    if not bw:
        return Skip("no sm_12x target")
    nccl = [d for d in distributions if re.match(r"nvidia-nccl(-cu\d+)?$", d["name"])]
    if not nccl:
        return Skip("no NCCL wheel installed (torch may link a system NCCL)")
    multi = not isinstance(gpus, Unavailable) and len(gpus) > 1
    libs = {} if isinstance(nccl_libraries, Unavailable) else {e["distribution"]: e for e in nccl_libraries or []}
    out = []
    for d in nccl:
        lib = libs.get(d["name"]) or {}
        on_disk = lib.get("library_version")
        version = on_disk or d["version"]
        what = f"{d['name']} {d['version']}"
        if on_disk and on_disk != d["version"]:
            what += (
                f" (its libnccl.so on disk is NCCL {on_disk}"
                + (f" for CUDA {lib['library_cuda']}" if lib.get("library_cuda") else "")
                + ": another wheel replaced it)"
            )
        if at_least(version, NCCL_MIN_BLACKWELL) is not False:
            out.append(Pass(f"{what} supports {', '.join(bw)}"))
            continue
        out.append(
            Problem(
                f"{what} predates 2.26.2: on RTX 50xx it asks for more shared memory than the "
                "GPU has "
                "('ncclMaxSharedMem 82240 exceeds device/fn maxSharedMem 79856'), so tensor-parallel runs hang or fail",
                {
                    "distribution": d["name"],
                    "version": d["version"],
                    "library_version": on_disk,
                    "fix": f"pip install -U '{d['name']}>=2.26.2'",
                },
                severity="error" if multi else "warning",
            )
        )
    return out


@check("BW512", "bitsandbytes-supports-blackwell", severity="error", kb="bitsandbytes-sm120")
def bitsandbytes_supports_blackwell(targets, distributions, native_libraries, torch_build):
    """bitsandbytes has a native library for torch's CUDA where the target is sm_12x."""
    bw = _sm12x(targets)
    bnb = next((d for d in distributions if d["name"] == "bitsandbytes"), None)
    if not bnb:
        return Skip("bitsandbytes is not installed")
    if not bw:
        return Skip("no sm_12x target")
    if at_least(bnb["version"], BNB_MIN_BLACKWELL) is False:
        return Problem(
            f"bitsandbytes {bnb['version']} predates 0.45.3, the first release with a CUDA 12.8 build for Blackwell: "
            "it falls back to 'compiled without GPU support' and 8-bit optimizers fail "
            "(NameError: name 'str2optimizer8bit_blockwise' is not defined)",
            {"distribution": "bitsandbytes", "version": bnb["version"], "fix": "pip install -U 'bitsandbytes>=0.45.3'"},
        )
    cuda = torch_build.get("cuda")
    libs = native_libraries.get("bitsandbytes", [])
    if cuda and libs:
        want = f"libbitsandbytes_cuda{str(cuda).replace('.', '')}"
        if not any(name.startswith(want) for name in libs):
            return Problem(
                f"bitsandbytes {bnb['version']} has no {want}.so for torch's CUDA {cuda} (it ships "
                f"{', '.join(sorted(libs))}): it loads without GPU support ('Configured CUDA binary not found')",
                {
                    "distribution": "bitsandbytes",
                    "version": bnb["version"],
                    "cuda": cuda,
                    "fix": "pip install -U bitsandbytes (a release with a build for this CUDA), or "
                    "BNB_CUDA_VERSION=<a shipped one>",
                },
            )
    return Pass(f"bitsandbytes {bnb['version']} supports {', '.join(bw)}")


@check("BW513", "single-copy-of-torch-and-vllm", severity="warning", kb="duplicate-packages")
def single_copy(distributions):
    """torch, vLLM and their GPU companions are installed once on sys.path."""
    out = []
    for d in distributions:
        if d["name"] in (
            "torch",
            "vllm",
            "triton",
            "flashinfer-python",
            "xformers",
            "flash-attn",
            "torchvision",
            "torchaudio",
        ) and d.get("shadowed"):
            others = ", ".join(f"{s['version']} ({s['dist_info']})" for s in d["shadowed"])
            out.append(
                Problem(
                    f"{d['name']} is installed more than once on sys.path: {d['version']} in {d['location']} wins over "
                    f"{others}; a reinstall or an import order change silently switches versions",
                    {
                        "distribution": d["name"],
                        "path": d["location"],
                        "fix": f"pip uninstall {d['name']} (repeat until none is left), then reinstall once",
                    },
                )
            )
    return out or None


@check("BW514", "no-local-patches", severity="warning", kb="local-patch-drift")
def no_local_patches(record_drift):
    """Installed vLLM/torch files match their RECORD (no hand patches a reinstall would lose)."""
    out = []
    for r in record_drift:
        if r.get("error"):
            continue
        if r.get("modified_count"):
            files = ", ".join(r["modified"][:5]) + (" …" if r["modified_count"] > 5 else "")
            out.append(
                Problem(
                    f"{r['modified_count']} file(s) of {r['distribution']} {r['version']} differ from what was "
                    f"installed ({files}): a reinstall or upgrade silently drops these patches",
                    {
                        "distribution": r["distribution"],
                        "modified": r["modified"],
                        "fix": f"save the patch (pip download {r['distribution']}=={r['version']} --no-deps; diff) "
                        "before reinstalling",
                    },
                )
            )
    if out:
        return out
    if not record_drift:
        return Skip("none of vllm, torch, flashinfer, xformers, flash-attn is installed")
    return Pass("no locally modified files in " + ", ".join(r["distribution"] for r in record_drift))
