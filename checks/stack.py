"""Checks of the GPU software stack: toolkits, torch/vLLM pins, NCCL, Triton, drivers vs runtimes (BW5xx)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bwdoctor import lazyre
from bwdoctor.domain import specifiers
from bwdoctor.domain.cuda import min_driver_for, supports
from bwdoctor.domain.versions import driver_version_tuple, parse_version, version_key
from bwdoctor.model import Pass, Problem, Skip, Unavailable
from bwdoctor.registry import check

if TYPE_CHECKING:
    from packaging.version import Version

BLACKWELL_CONSUMER = lazyre.compile(r"sm_12\d")


def _nvcc_can(t: dict, target: str):
    return supports(t.get("archs") or [], t.get("version"), target)


def _used_nvcc(cuda_toolkits):
    return next((t for t in cuda_toolkits["toolkits"] if t["path"] == cuda_toolkits.get("used")), None)


@check("BW501", "nvcc-supports-target", severity="error", kb="nvcc-too-old", groups=("pre-build", "runtime"))
def nvcc_supports_target(targets, cuda_toolkits):
    """The nvcc that builds and JIT-compiles (CUDA_HOME, else first on PATH) can emit code for each target."""
    if not targets:
        return Skip("no target architecture (no GPU seen and no --target)")
    used = _used_nvcc(cuda_toolkits)
    if used is None:
        return Skip("no nvcc found (only needed for source builds and JIT compilation)")
    if not used.get("version"):
        return Skip(f"{used['path']}: {used.get('error') or 'version unknown'}")
    out = []
    for tgt in targets:
        ok = _nvcc_can(used, tgt)
        if ok is None:
            out.append(Skip(f"{used['path']} (CUDA {used['version']}): support for {tgt} unknown"))
        elif ok:
            out.append(Pass(f"{used['path']} (CUDA {used['version']}) can build {tgt}", {"path": used["path"]}))
        else:
            better = [t for t in cuda_toolkits["toolkits"] if t is not used and _nvcc_can(t, tgt)]
            fix = (
                f"export CUDA_HOME={better[0]['path'].rsplit('/bin/', 1)[0]} "
                f"PATH={better[0]['path'].rsplit('/', 1)[0]}:$PATH"
                if better
                else "install CUDA 12.8 or newer (12.9+ for sm_103/sm_121/'f' targets) and put its bin first on PATH"
            )
            out.append(
                Problem(
                    f"{used['path']} is CUDA {used['version']}, which cannot compile for {tgt} "
                    f"(nvcc fatal: Unsupported gpu architecture 'compute_{tgt[3:]}')"
                    + (f"; {better[0]['path']} (CUDA {better[0]['version']}) can" if better else ""),
                    {"path": used["path"], "nvcc_version": used["version"], "target": tgt, "fix": fix},
                )
            )
    return out


@check(
    "BW502",
    "nvcc-not-shadowed",
    severity="warning",
    kb="nvcc-too-old",
    groups=("pre-build",),
    optional=("torch_build", "targets"),
)
def nvcc_not_shadowed(cuda_toolkits, torch_build=None, targets=None):
    """The first nvcc on PATH is the toolkit builds should use: torch's CUDA major, able to build every target
    (the newest installed one when torch's CUDA is unknown)."""
    order = cuda_toolkits.get("path_order") or []
    tks = {t["path"]: t for t in cuda_toolkits["toolkits"]}
    if not order:
        return Skip("no nvcc on PATH")
    first = tks.get(order[0])
    if not first or not first.get("version"):
        return Skip("version of the first nvcc on PATH unknown")
    torch_cuda = torch_build.get("cuda") if isinstance(torch_build, dict) else None
    major = str(torch_cuda).split(".")[0] if torch_cuda else None
    tgts = targets if isinstance(targets, list) else []

    def fits(t: dict) -> bool:
        """Torch's CUDA major (when known) and no target it cannot build."""
        return (major is None or t["version"].split(".")[0] == major) and all(
            _nvcc_can(t, tgt) is not False for tgt in tgts
        )

    newer = [
        t
        for t in cuda_toolkits["toolkits"]
        if t.get("version") and version_key(t["version"]) > version_key(first["version"])
    ]
    if major is not None:
        if fits(first):  # an older nvcc first is right when it is torch's CUDA and builds the targets
            return Pass(
                f"{first['path']} (CUDA {first['version']}) comes first on PATH: torch's CUDA {torch_cuda} major"
                + (f", and it can build {', '.join(tgts)}" if tgts else ""),
                {"path": first["path"]},
            )
        newer = [t for t in newer if fits(t)]
    if not newer:
        return None
    best = max(newer, key=lambda t: version_key(t["version"]))
    return Problem(
        f"{first['path']} (CUDA {first['version']}) comes first on PATH and shadows {best['path']} "
        f"(CUDA {best['version']}): builds use the older compiler",
        {"path": first["path"], "shadowed": best["path"], "fix": f"export PATH={best['path'].rsplit('/', 1)[0]}:$PATH"},
    )


@check("BW503", "nvcc-matches-torch-cuda", severity="error", kb="cuda-major-mismatch", groups=("pre-build",))
def nvcc_matches_torch_cuda(cuda_toolkits, torch_build):
    """The nvcc used for extension builds has torch's CUDA major version."""
    used = _used_nvcc(cuda_toolkits)
    if used is None or not used.get("version"):
        return Skip("no usable nvcc found")
    if not torch_build.get("cuda"):
        return Skip(f"torch {torch_build['version']} is not a CUDA build")
    if used["version"].split(".")[0] == str(torch_build["cuda"]).split(".")[0]:
        return Pass(f"nvcc CUDA {used['version']} and torch CUDA {torch_build['cuda']} share a major version")
    return Problem(
        f"nvcc {used['path']} is CUDA {used['version']} but torch {torch_build['version']} was built with CUDA "
        f"{torch_build['cuda']}: torch.utils.cpp_extension refuses to build ('The detected CUDA version mismatches "
        "the version that was used to compile PyTorch')",
        {
            "path": used["path"],
            "nvcc_version": used["version"],
            "torch_cuda": torch_build["cuda"],
            "fix": f"install a CUDA {str(torch_build['cuda']).split('.')[0]}.x toolkit and point CUDA_HOME at it",
        },
    )


@check("BW504", "triton-ptxas-supports-target", severity="error", kb="triton-too-old-arch")
def triton_ptxas_supports_target(targets, triton_ptxas, cuda_toolkits):
    """The ptxas Triton uses accepts every target architecture."""
    if not targets:
        return Skip("no target architecture")
    if triton_ptxas.get("error"):
        return Skip(f"{triton_ptxas['path']}: {triton_ptxas['error']}")
    out = []
    for tgt in targets:
        ok = supports(triton_ptxas.get("archs"), triton_ptxas.get("version"), tgt)
        if ok is None:
            out.append(Skip(f"support of {tgt} by {triton_ptxas['path']} unknown"))
        elif ok:
            out.append(Pass(f"Triton's ptxas (CUDA {triton_ptxas.get('version')}) accepts {tgt}"))
        else:
            better = [t for t in cuda_toolkits["toolkits"] if t.get("path", "").endswith("/nvcc") and _nvcc_can(t, tgt)]
            fix = (
                f"export TRITON_PTXAS_PATH={better[0]['path'][:-4]}ptxas"
                if better
                else (
                    "install the Triton that matches torch >= 2.7 (cu128+), or point TRITON_PTXAS_PATH at a "
                    "CUDA 12.8+ ptxas"
                )
            )
            out.append(
                Problem(
                    f"Triton's ptxas {triton_ptxas['path']} ({triton_ptxas['via']}, CUDA "
                    f"{triton_ptxas.get('version')}) does not "
                    f"accept {tgt}: Triton kernels fail with \"ptxas fatal: Value '{tgt}' is not defined for option "
                    "'gpu-name'\"",
                    {
                        "path": triton_ptxas["path"],
                        "ptxas_version": triton_ptxas.get("version"),
                        "target": tgt,
                        "fix": fix,
                    },
                )
            )
    return out


def _driver_version(nvidia_driver, nvml):
    for src in (nvidia_driver, nvml):
        if not isinstance(src, Unavailable) and isinstance(src, dict):
            v = src.get("version") or src.get("driver")
            if v:
                return v
    return None


@check(
    "BW505", "driver-supports-cuda-runtime", severity="error", kb="driver-too-old", optional=("nvidia_driver", "nvml")
)
def driver_supports_cuda_runtime(cuda_runtimes, nvidia_driver, nvml):
    """The driver is new enough for the CUDA runtime of each installed wheel."""
    drv = _driver_version(nvidia_driver, nvml)
    if drv is None:
        return Skip("driver version unknown (no NVIDIA driver seen)")
    if not cuda_runtimes:
        return Skip("no CUDA runtime among the installed packages")
    dv = driver_version_tuple(str(drv))
    if dv is None:
        return Skip(f"driver version {drv!r} is not numeric")
    out = []
    for rt in cuda_runtimes:
        full, floor = min_driver_for(rt["cuda"])
        ev = {"distribution": rt["distribution"], "cuda": rt["cuda"], "driver": drv}
        if floor and dv < (driver_version_tuple(floor) or ()):
            out.append(
                Problem(
                    f"{rt['distribution']} {rt['version']} brings the CUDA {rt['cuda']} runtime, which needs driver "
                    f"≥ {floor}; "
                    f"driver {drv} is older: CUDA fails with 'CUDA driver version is insufficient for CUDA runtime "
                    "version'",
                    dict(
                        ev,
                        required=floor,
                        fix=f"upgrade the NVIDIA driver to {full or floor} or newer, "
                        "or install a build for an older CUDA",
                    ),
                )
            )
        elif full and dv < (driver_version_tuple(full) or ()):
            out.append(
                Problem(
                    f"{rt['distribution']} {rt['version']} brings CUDA {rt['cuda']}, released with driver {full}; "
                    f"driver {drv} runs "
                    "it only through minor-version compatibility: PTX from this toolkit cannot be JIT-compiled "
                    "('the provided PTX was compiled with an unsupported toolchain')",
                    dict(ev, required=full, fix=f"upgrade the NVIDIA driver to {full} or newer"),
                    severity="warning",
                )
            )
        else:
            out.append(Pass(f"driver {drv} supports the CUDA {rt['cuda']} runtime of {rt['distribution']}"))
    return out


_REQ_NAME = lazyre.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# The plain form of a Requires-Dist line: NAME [extras] SPECIFIERS [; MARKER], specifiers bare or in parentheses.
_PLAIN_REQ = lazyre.compile(
    r"\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[A-Za-z0-9._,\s-]*\]\s*)?"
    r"(?P<open>\(\s*)?(?P<spec>(?:(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*,?\s*)*)"
    r"(?(open)\)\s*)(?:;(?P<marker>[^;]*))?\s*"
)


class _Req:
    """What the checks read of a requirement (name, specifier, marker), made without packaging.requirements (its
    import costs more than every check together): the plain form only, anything else goes to packaging. Its text
    (a finding's message) and any other attribute come from packaging's Requirement, made when first asked."""

    def __init__(self, text: str, name: str, specifier, marker: str | None) -> None:
        self.text, self.name, self.specifier, self.marker = text, name, specifier, marker

    def _full(self):
        from packaging.requirements import Requirement

        return Requirement(self.text)

    def __str__(self) -> str:
        return str(self._full())

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._full(), attr)


def _parse_requirement(text: str):
    m = _PLAIN_REQ.fullmatch(text)
    if m is not None and not m.group("spec").rstrip().endswith(","):
        marker = (m.group("marker") or "").strip() or None
        plain = specifiers.parse(m.group("spec"))  # packaging.specifiers costs more to import than to use
        if plain is not None:
            return _Req(text, m.group("name"), plain, marker)
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            return _Req(text, m.group("name"), SpecifierSet(m.group("spec")), marker)
        except InvalidSpecifier:
            pass
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _requirement_on(dist: dict, name: str):
    for text in dist.get("requires") or []:
        head = _REQ_NAME.match(text)
        if head and re.sub(r"[-_.]+", "-", head.group(1)).lower() != name:
            continue  # on another distribution: not parsed (torch's own list has dozens)
        req = _parse_requirement(text)
        if req is None:
            continue
        if re.sub(r"[-_.]+", "-", req.name).lower() != name:
            continue
        if req.marker and "extra" in str(req.marker):
            continue
        return req
    return None


def companion_version(name: str, torch_version: Version):
    """The torchvision/torchaudio release that pairs with a torch release (0.(minor+15) / same minor)."""
    if torch_version.major != 2:
        return None
    if name == "torchvision":
        return f"0.{torch_version.minor + 15}"
    if name == "torchaudio":
        return f"2.{torch_version.minor}"
    return None


PIN_SLUG = {"torchvision": "torchvision-mismatch", "torchaudio": "torchvision-mismatch"}


@check("BW506", "torch-pin-conflict", severity="error", kb="torch-pin-conflict")
def torch_pin_conflict(distributions, torch_build):
    """Packages that pin torch (vLLM, xformers, flashinfer, sgl-kernel...) accept the installed torch."""
    tv = parse_version(torch_build["version"])
    out = []
    pinning = 0
    for d in distributions:
        if d["name"] in ("torch",) or d["name"] in PIN_SLUG:
            continue
        req = _requirement_on(d, "torch")
        if req is None or not str(req.specifier):
            continue
        pinning += 1
        if tv is not None and req.specifier.contains(tv, prereleases=True):
            continue
        pinned = str(req.specifier)
        fix = (
            f"pip install 'torch{pinned}' (for Blackwell the cu128+ build: --index-url https://download.pytorch.org/whl/cu128)"
            + (
                "; or build vLLM against this torch: python use_existing_torch.py && pip install "
                "--no-build-isolation -e ."
                if d["name"] == "vllm"
                else ""
            )
        )
        out.append(
            Problem(
                f"{d['name']} {d['version']} requires torch{pinned}, but torch {torch_build['version']} is installed: "
                f"{d['name']}'s compiled code expects the pinned torch (ImportError / undefined symbol at import)",
                {"distribution": d["name"], "requires": str(req), "torch": torch_build["version"], "fix": fix},
            )
        )
    if not pinning:  # nothing checked is never a pass
        return Skip("no installed package pins a torch version")
    return out or Pass(f"every package that pins torch accepts {torch_build['version']}")


@check("BW507", "torchvision-matches-torch", severity="error", kb="torchvision-mismatch")
def torchvision_matches_torch(distributions, torch_build):
    """torchvision and torchaudio are the releases paired with the installed torch."""
    tv = parse_version(torch_build["version"])
    out = []
    companions = [d for d in distributions if d["name"] in PIN_SLUG]
    if not companions:
        return Skip("neither torchvision nor torchaudio is installed")
    for d in companions:
        want = companion_version(d["name"], tv) if tv else None
        req = _requirement_on(d, "torch")
        bad_pin = (
            req is not None
            and str(req.specifier)
            and tv is not None
            and not req.specifier.contains(tv, prereleases=True)
        )
        dv = parse_version(d["version"])
        bad_pair = want is not None and dv is not None and f"{dv.major}.{dv.minor}" != want
        if not (bad_pin or bad_pair):
            continue
        local = tv.local if tv is not None and tv.local else None
        fix = f"pip install {d['name']}=={want}.*" + (
            f" --index-url https://download.pytorch.org/whl/{local}" if local else ""
        )
        why = (
            f"requires {req}"
            if bad_pin
            else f"pairs with torch 2.{(dv.minor - 15) if d['name'] == 'torchvision' else dv.minor}"
        )
        out.append(
            Problem(
                f"{d['name']} {d['version']} {why}, but torch {torch_build['version']} is installed: its compiled "
                f"ops do not register ('operator torchvision::nms does not exist') or it fails to import",
                {
                    "distribution": d["name"],
                    "version": d["version"],
                    "torch": torch_build["version"],
                    "import": d["name"],
                    "fix": fix,
                },
            )
        )
    return out or Pass(
        ", ".join(f"{d['name']} {d['version']}" for d in companions) + f" pair with torch {torch_build['version']}"
    )


@check(
    "BW508",
    "torch-is-cuda-build",
    severity="error",
    kb="cpu-torch-cuda-extension",
    optional=("gpus",),
    groups=("runtime", "pre-build"),
)
def torch_is_cuda_build(torch_build, gpus, distributions):
    """torch is a CUDA build when GPUs or CUDA packages (vLLM, flash-attn...) are present."""
    if torch_build.get("cuda") or torch_build.get("hip"):
        return Pass(f"torch {torch_build['version']} is a {torch_build['variant']} build")
    users = [
        d["name"]
        for d in distributions
        if d["name"] in ("vllm", "flash-attn", "flashinfer-python", "xformers", "bitsandbytes", "sgl-kernel")
    ]
    has_gpu = not isinstance(gpus, Unavailable) and bool(gpus)
    if not users and not has_gpu:
        return Skip("CPU torch on a machine without NVIDIA GPUs and no CUDA packages")
    return Problem(
        f"torch {torch_build['version']} is a CPU-only build"
        + (f", under {', '.join(users)}" if users else "")
        + (" on a machine with NVIDIA GPUs" if has_gpu else "")
        + ": torch.cuda.is_available() is False and CUDA extensions fail with 'libtorch_cuda.so: cannot open shared "
        "object file'",
        {
            "distribution": "torch",
            "version": torch_build["version"],
            "fix": "pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu128",
        },
    )
