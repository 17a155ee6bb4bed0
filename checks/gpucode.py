"""Checks of the GPU code compiled into CUDA libraries (family gpu-code, BW3xx).

Each check reads the `cuda_binaries` fact (the cubin/PTX targets found in each .so by
bwdoctor.elf.fatbin) and asks, per target GPU, whether the library has native code (cubin),
only PTX that the driver must JIT-compile, or nothing: the last one is the run-time error
"CUDA error: no kernel image is available for execution on the device".
"""

from __future__ import annotations

import os
import re

from bwdoctor import lazyre
from bwdoctor.domain.arch import cc_label, parse_cc
from bwdoctor.domain.compat import NATIVE, NONE, PTX_JIT, verdict_for_file
from bwdoctor.model import Pass, Problem, Skip
from bwdoctor.registry import check

RANK = {NONE: 0, PTX_JIT: 1, NATIVE: 2}


def _archs(item: dict) -> list:
    """Every target name of one file, both sections, cubins first."""
    names = []
    for key in ("elf", "ptx"):
        for sec in ("fatbin", "relfatbin"):
            names += [n for n in (item.get(sec) or {}).get(key, []) if n not in names]
    return names


def _short(path: str, dist_root: str = "") -> str:
    return os.path.relpath(path, dist_root) if dist_root and path.startswith(dist_root) else os.path.basename(path)


def file_verdicts(cc, files: list) -> list:
    """[(file item, Verdict)] for the readable files with GPU code."""
    out = []
    for item in files:
        if item.get("error") or not _archs(item):
            continue
        out.append((item, verdict_for_file(cc, item)))
    return out


def _targets_or_skip(targets):
    if not targets:
        return None, Skip("no target GPU: run on the GPU machine or pass --target (e.g. --target sm_120)")
    try:
        return [(t, parse_cc(t)) for t in targets], None
    except ValueError as exc:
        return None, Skip(str(exc))


def library_findings(
    dist_name: str, label: str, targets, cuda_binaries, fix_for, core=None, aux_severity=None, pick_files=None
) -> list:
    """Findings for one library and each target: error when no code runs, warning for PTX-only.

    fix_for(cc) -> the install advice. core(path) -> whether a file decides the verdict (default:
    every file). The other files are reported one by one when they are not native, with the
    severity aux_severity(path, status, cc) gives (None = say nothing). pick_files(files) -> the
    files that will really be loaded (default: all).
    """
    tcc, skip = _targets_or_skip(targets)
    if skip:
        return [skip]
    info = cuda_binaries.get(dist_name)
    if info is None:
        return [Skip(f"{label} is not installed")]
    version = info.get("version", "")
    who = f"{label} {version}".strip()
    files = pick_files(info.get("files", [])) if pick_files else info.get("files", [])
    unreadable = [f for f in files if f.get("error")]
    results: list = []
    for _target, cc in tcc:
        arch = cc_label(cc)
        verdicts = file_verdicts(cc, files)
        if not verdicts:
            if unreadable:
                results.append(
                    Problem(
                        f"{who}: its CUDA libraries could not be read: "
                        + "; ".join(f"{_short(f['path'])}: {f['error']}" for f in unreadable[:3]),
                        {"distribution": dist_name, "version": version, "target": arch, "path": unreadable[0]["path"]},
                        severity="warning",
                    )
                )
            else:
                results.append(Skip(f"{who} has no prebuilt GPU code to check"))
            continue
        per_file = {f["path"]: {"status": v.status, "entry": v.entry, "archs": _archs(f)} for f, v in verdicts}
        essential = [(f, v) for f, v in verdicts if core is None or core(f["path"])]
        others = [(f, v) for f, v in verdicts if not (core is None or core(f["path"]))]
        f, v = min(essential or verdicts, key=lambda fv: RANK[fv[1].status])
        evidence = {
            "distribution": dist_name,
            "version": version,
            "target": arch,
            "path": f["path"],
            "archs": _archs(f),
            "files": per_file,
            "fix": fix_for(cc),
        }
        have = " ".join(_archs(f)) or "nothing"
        if v.status == NONE:
            results.append(
                Problem(
                    f"{who} has no GPU code for {arch}: {_short(f['path'])} holds {have}. "
                    f"Kernels fail with 'no kernel image is available for execution on the device'. "
                    f"Fix: {fix_for(cc)}",
                    evidence,
                )
            )
        elif v.status == PTX_JIT:
            results.append(
                Problem(
                    f"{who} has no {arch} cubin, only PTX ({v.entry}) in {_short(f['path'])}: "
                    f"{_JIT_NOTE} Fix: {fix_for(cc)}",
                    evidence,
                    severity="warning",
                )
            )
        else:
            results.append(Pass(f"{who} has native {arch} code ({v.entry})", evidence))
        for of, ov in others:
            sev = aux_severity(of["path"], ov.status, cc) if aux_severity and ov.status != NATIVE else None
            if sev is None:
                continue
            have = " ".join(_archs(of))
            if ov.status == NONE:
                text = f"{who}: {_short(of['path'])} has no code for {arch} ({have})"
                if sev == "error":
                    text += (
                        ". Kernels fail with 'no kernel image is available for execution on the "
                        f"device'. Fix: {fix_for(cc)}"
                    )
            else:
                text = f"{who}: {_short(of['path'])} has only PTX for {arch} ({ov.entry}): {_JIT_NOTE}"
            results.append(
                Problem(
                    text,
                    {
                        "distribution": dist_name,
                        "version": version,
                        "target": arch,
                        "path": of["path"],
                        "archs": _archs(of),
                        "status": ov.status,
                    },
                    severity=sev,
                )
            )
    return results


_JIT_NOTE = (
    "the driver JIT-compiles it at first use (a slow first start, repeated whenever the JIT "
    "cache in ~/.nv/ComputeCache is lost or too small; arch-specific kernels may be missing)."
)


def torch_fix(cc) -> str:
    """Where to get a torch build with code for this compute capability."""
    major = cc[0]
    if major in (10, 12):
        return (
            "install torch >= 2.7 built for CUDA 12.8 or newer, e.g. "
            "pip install torch --index-url https://download.pytorch.org/whl/cu128"
        )
    if major == 11:
        return "install a torch built for CUDA 13 (https://download.pytorch.org/whl/cu130) that lists sm_110"
    return (
        f"install a CUDA build of torch that lists {cc_label(cc)} (check with "
        f"`bwdoctor cubins torch --target {cc_label(cc)}`)"
    )


@check("BW301", "torch-has-native-code", severity="error", kb="no-kernel-image", groups=("runtime", "pre-build"))
def torch_has_native_code(targets, cuda_binaries):
    """torch has native GPU code for every target GPU."""
    info = cuda_binaries.get("torch")
    if (
        info is not None
        and not any(_archs(f) for f in info.get("files", []))
        and not any(f.get("error") for f in info.get("files", []))
        and targets
    ):
        return Problem(
            f"torch {info.get('version', '')} has no GPU code at all: it is a CPU-only build "
            f"({info.get('elf_files', 0)} ELF files, none with a fatbin). Fix: "
            f"{torch_fix(parse_cc(targets[0]))}",
            {
                "distribution": "torch",
                "version": info.get("version", ""),
                "target": targets[0],
                "fix": torch_fix(parse_cc(targets[0])),
            },
        )
    return library_findings("torch", "torch", targets, cuda_binaries, torch_fix)


# vLLM's core ops (_C, _moe_C, also the *_stable_libtorch builds) are needed on every GPU and decide.
# FlashAttention 2 is the first attention backend on every GPU >= 8.0, so missing code there is an
# error too; published wheels carry it as sm_80 + compute_80 PTX, so PTX-only is the normal case.
# The other extensions (FA3, FlashMLA, DeepGEMM-style and QuTLASS kernels) are built for the
# GPUs they serve only (sm_90a / sm_100f in vLLM 0.33) and are not used elsewhere.
_VLLM_CORE = lazyre.compile(r"^(_C|_moe_C)[._]")
_VLLM_FA2 = lazyre.compile(r"^_vllm_fa2_C[._]")


def _vllm_aux_severity(path: str, status: str, cc=(8, 0)):
    if _VLLM_FA2.search(os.path.basename(path)):
        if tuple(cc) < (8, 0):
            return None  # FlashAttention 2 needs CC >= 8.0; vLLM picks another backend on older GPUs
        return "error" if status == NONE else "info"
    return None  # built for other GPUs on purpose; the per-file verdicts stay in the evidence


def vllm_fix(cc) -> str:
    """Where to get a vLLM build with code for this compute capability."""
    base = f'or build from source with TORCH_CUDA_ARCH_LIST="{cc[0]}.{cc[1]}" (pip install vllm --no-binary vllm)'
    if cc[0] == 12:
        return "install vllm >= 0.9.2 (the first wheel with native sm_120 code), " + base
    return f"install a vllm wheel built for {cc_label(cc)}, " + base


@check("BW302", "vllm-has-native-code", severity="error", kb="no-kernel-image")
def vllm_has_native_code(targets, cuda_binaries):
    """vLLM's compiled kernels (_C, _moe_C, FlashAttention 2) have code for every target GPU."""
    return library_findings(
        "vllm",
        "vLLM",
        targets,
        cuda_binaries,
        vllm_fix,
        core=lambda p: bool(_VLLM_CORE.search(os.path.basename(p))),
        aux_severity=_vllm_aux_severity,
    )


def flash_attn_fix(cc) -> str:
    n = f"{cc[0]}{cc[1]}"
    return (
        f"build flash-attn for this GPU: FLASH_ATTN_CUDA_ARCHS={n} FLASH_ATTENTION_FORCE_BUILD=TRUE "
        "pip install flash-attn --no-build-isolation, or uninstall it (vLLM ships its own copy)"
    )


@check("BW303", "flash-attn-has-native-code", severity="error", kb="no-kernel-image")
def flash_attn_has_native_code(targets, cuda_binaries):
    """flash-attn has GPU code for every target GPU."""
    return library_findings("flash-attn", "flash-attn", targets, cuda_binaries, flash_attn_fix)


def xformers_fix(cc) -> str:
    return (
        "install the xformers wheel made for your torch from the same PyTorch index (e.g. "
        "https://download.pytorch.org/whl/cu128), or build it with "
        f'TORCH_CUDA_ARCH_LIST="{cc[0]}.{cc[1]}"'
    )


@check("BW304", "xformers-has-native-code", severity="error", kb="no-kernel-image")
def xformers_has_native_code(targets, cuda_binaries):
    """xformers has GPU code for every target GPU."""
    return library_findings("xformers", "xformers", targets, cuda_binaries, xformers_fix)


def flashinfer_fix(cc) -> str:
    return (
        f"remove the stale prebuilt kernels (flashinfer-jit-cache for another CUDA/GPU, or "
        f"~/.cache/flashinfer) so FlashInfer JIT-compiles for {cc_label(cc)}, or install the "
        "flashinfer-jit-cache wheel that matches your CUDA version"
    )


@check("BW305", "flashinfer-has-native-code", severity="error", kb="no-kernel-image")
def flashinfer_has_native_code(targets, cuda_binaries):
    """FlashInfer's prebuilt kernels (jit-cache wheel, ~/.cache/flashinfer) have code for every target GPU."""
    out = []
    for dist in ("flashinfer-jit-cache", "flashinfer-cache"):
        if dist in cuda_binaries:
            label = "FlashInfer JIT cache (~/.cache/flashinfer)" if dist == "flashinfer-cache" else dist
            out += library_findings(dist, label, targets, cuda_binaries, flashinfer_fix)
    if "flashinfer-cubin" in cuda_binaries:
        out += flashinfer_cubin_findings(targets, cuda_binaries)
    if not out:
        if "flashinfer-python" in cuda_binaries:
            return Skip("FlashInfer compiles its kernels at run time; no prebuilt kernels are installed")
        return Skip("FlashInfer is not installed")
    return out


def flashinfer_cubin_findings(targets, cuda_binaries) -> list:
    """flashinfer-cubin's stand-alone .cubin files (TRT-LLM-gen GEMM, MoE and attention kernels, loaded at run time):
    a target they do not cover loses those kernels (FlashInfer JIT-compiles its other ones): a warning naming it."""
    out = []
    for r in library_findings("flashinfer-cubin", "flashinfer-cubin", targets, cuda_binaries, flashinfer_cubin_fix):
        if isinstance(r, Problem) and r.severity in (None, "error"):
            ev = r.evidence
            have = " ".join(ev.get("archs") or []) or "nothing"
            r = Problem(
                f"flashinfer-cubin {ev.get('version', '')} has no prebuilt kernels for {ev['target']}: its .cubin "
                f"files hold {have}. FlashInfer's TRT-LLM-gen kernels (FP8/FP4 GEMM and MoE, trtllm attention "
                f"backends) are unavailable there; the rest is JIT-compiled. Fix: {ev['fix']}",
                ev,
                severity="warning",
            )
        out.append(r)
    return out


def flashinfer_cubin_fix(cc) -> str:
    return (
        f"pick backends FlashInfer can JIT-compile for {cc_label(cc)} (not the trtllm-gen ones), or a flashinfer-cubin "
        "release whose .cubin files list it (`bwdoctor cubins flashinfer-cubin`)"
    )


def _bnb_cuda_tag(cuda_binaries, environment, torch_build=None) -> str:
    """The libbitsandbytes_cudaXYZ flavour that will load: BNB_CUDA_VERSION, else torch's CUDA as torch/version.py
    says it (cuda = '12.8' -> 128; a PyPI torch has no +cu128 tag in its version), else a +cuXYZ version tag."""
    env = environment if isinstance(environment, dict) else {}
    if env.get("BNB_CUDA_VERSION"):
        return env["BNB_CUDA_VERSION"]
    cuda = torch_build.get("cuda") if isinstance(torch_build, dict) else None
    if isinstance(cuda, str) and re.match(r"^\d+\.\d+", cuda):
        return "".join(cuda.split(".")[:2])
    m = re.search(r"\+cu(\d+)", (cuda_binaries.get("torch") or {}).get("version", ""))
    return m.group(1) if m else ""


def bnb_fix(cc) -> str:
    return (
        f"install a bitsandbytes release whose library for your CUDA version lists {cc_label(cc)} "
        f"(check with `bwdoctor cubins bitsandbytes --target {cc_label(cc)}`), or build it with "
        f"-DCOMPUTE_CAPABILITY={cc[0]}{cc[1]}"
    )


@check("BW306", "bitsandbytes-has-native-code", severity="error", kb="no-kernel-image", optional=("torch_build",))
def bitsandbytes_has_native_code(targets, cuda_binaries, environment, torch_build=None):
    """bitsandbytes' CUDA library for this torch has GPU code for every target GPU."""
    tag = _bnb_cuda_tag(cuda_binaries, environment, torch_build)

    def pick(files):
        # bitsandbytes ships one library per CUDA version and loads only the one for torch's CUDA
        if tag:
            chosen = [f for f in files if re.search(rf"libbitsandbytes_cuda{tag}[._]", f["path"])]
            if chosen:
                return chosen
        flavours = {}
        for f in files:
            m = re.search(r"libbitsandbytes_cuda(\d+)", f["path"])
            flavours.setdefault(int(m.group(1)) if m else -1, []).append(f)
        return flavours[max(flavours)] if flavours else files

    results = library_findings("bitsandbytes", "bitsandbytes", targets, cuda_binaries, bnb_fix, pick_files=pick)
    if not tag:
        return results
    for r in results:
        if isinstance(r, (Problem, Pass)):
            r.evidence["cuda_flavour"] = tag
    return results
