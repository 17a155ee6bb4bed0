"""Why a compiled extension will not load: ONE table of link causes, read in order, the first row that applies wins.

Each row is (slug, predicate, summary template). The predicate reads the loader's raw result for one file (as the
`extension_links` fact records it, or as `Loader.check` returns it) together with the torch build and the
distribution; it returns the template's fields when the cause applies, else None. Each slug has one fix template
(FIXES). The table is the only place that knows which causes BW401 reports (LINK_CAUSE_SLUGS): the linking check,
`bwdoctor symbols` and `bwdoctor explain` all read it from here.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from bwdoctor import lazyre
from bwdoctor.domain.versions import parse_version
from bwdoctor.records import dataclass

CUDA_LIB = lazyre.compile(
    r"^lib(cudart|cublas|cublasLt|cudnn|nvrtc|cusparse|cufft|curand|cusolver|nvJitLink|nccl|"
    r"cupti|nvToolsExt|cufile|cusparseLt|nvshmem_host)\.so\.(\d+)"
)
# The libraries whose soname major IS the CUDA major (libcudart.so.12 ships with CUDA 12, libcublas.so.13 with
# CUDA 13). The others have their own numbering: libcudnn.so.9 (cuDNN 9), libnccl.so.2, libcufft.so.11 (CUDA 12)
# and .12 (CUDA 13), libcusolver.so.11, libcurand.so.10, libcusparse.so.12, libcusparseLt.so.0, libcufile.so.0,
# libnvToolsExt.so.1 - their major says nothing about the CUDA an extension was built for.
CUDA_MAJOR_LIB = lazyre.compile(r"^lib(cudart|cublas|cublasLt|nvrtc|nvJitLink|cupti)\.so\.(\d+)")
# The PyPI wheel that installs each CUDA library, as nvidia-<project>-cu<CUDA major> (torch's Requires-Dist).
CUDA_WHEEL = {
    "cudart": "cuda-runtime",
    "cublas": "cublas",
    "cublasLt": "cublas",
    "cudnn": "cudnn",
    "nvrtc": "cuda-nvrtc",
    "nvJitLink": "nvjitlink",
    "cupti": "cuda-cupti",
    "cufft": "cufft",
    "curand": "curand",
    "cusolver": "cusolver",
    "cusparse": "cusparse",
    "cusparseLt": "cusparselt",
    "nccl": "nccl",
    "cufile": "cufile",
    "nvToolsExt": "nvtx",
    "nvshmem_host": "nvshmem",
}
TORCH_CUDA_LIB = lazyre.compile(r"^lib(torch_cuda|c10_cuda|torch_cuda_cu|torch_cuda_cpp|torch_cuda_linalg)\.so$")
TORCH_NS = lazyre.compile(
    r"^_ZN?K?(3c10|2at|5torch|6caffe2)|^_ZN?K?\d+(c10|at|torch)_|^torch_c10_"
    r"|^_ZT[IVS]N?K?(3c10|2at|5torch)"
)
DRIVER_API = lazyre.compile(r"^cu[A-Z][A-Za-z0-9_]*$")
OLD_ABI_MARK = lazyre.compile(r"Ss|Sb|NSs")  # std::string in the pre-C++11 ABI mangles as `Ss`
CXX11_MARK = lazyre.compile(r"__cxx11|B5cxx11")
COMPANIONS = ("torchvision", "torchaudio")
Fields = Dict[str, Any]


@dataclass(frozen=True)
class Seen:
    """What one file's rules may read: the loader's raw result, the torch build, the distribution."""

    result: Mapping[str, Any]
    torch_build: Mapping[str, Any]
    distribution: Optional[str]
    built_for: Optional[Mapping[str, Any]]

    @property
    def torch_version(self) -> Optional[str]:
        return self.torch_build.get("version")

    @property
    def torch_cuda(self) -> Optional[str]:
        return self.torch_build.get("cuda")

    @property
    def cpu_torch(self) -> bool:
        tb = self.torch_build
        return bool(tb) and not tb.get("cuda") and not tb.get("hip")

    @property
    def missing(self) -> List[Mapping[str, Any]]:
        return list(self.result.get("missing_libraries") or [])

    @property
    def missing_names(self) -> List[str]:
        return [m["name"] for m in self.missing]

    @property
    def versions(self) -> List[Mapping[str, Any]]:
        return list(self.result.get("missing_versions") or [])

    @property
    def undefined(self) -> List[str]:
        """Every undefined symbol the probe recorded (undefined_names; a plain loader result has only undefined)."""
        names = self.result.get("undefined_names")
        return list(names) if names is not None else [u["symbol"] for u in self.result.get("undefined") or []]

    def torch_symbols(self) -> List[str]:
        return [n for n in self.undefined if TORCH_NS.match(n)]

    def pretty(self, name: str) -> str:
        """A symbol demangled as the probe recorded it (or demangled here when it was not recorded)."""
        for u in self.result.get("undefined") or []:
            if u.get("symbol") == name and u.get("demangled"):
                return str(u["demangled"])
        from bwdoctor.elf.demangle import demangle  # ctypes: only for a symbol the probe did not demangle

        return demangle(name) or name


def _version_key(text: str) -> List[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def needed_version(seen: Seen) -> Optional[Mapping[str, Any]]:
    """The missing symbol version that names the cause: the newest GLIBCXX_ one (GLIBCXX_3.4.30 = GCC 12),
    else the first."""
    vers = seen.versions
    if not vers:
        return None
    cxx = [v for v in vers if v["version"].startswith("GLIBCXX_")]
    return max(cxx, key=lambda x: _version_key(x["version"])) if cxx else vers[0]


def _built(built_for: Optional[Mapping[str, Any]]) -> str:
    if not built_for:
        return ""
    what = f"torch {built_for['torch']}" if built_for.get("torch") else f"torch{built_for.get('range', '')}"
    return f" (built for {what}, per {built_for['source']})"


# --- predicates: Seen -> template fields, or None when the row does not apply -----------------------------------


def loader_error(s: Seen) -> Optional[Fields]:
    return {"error": s.result["error"]} if s.result.get("error") else None


def torch_cuda_lib_missing(s: Seen) -> Optional[Fields]:
    names = s.missing_names
    torch_cuda = [n for n in names if TORCH_CUDA_LIB.match(n)]
    cuda = [n for n in names if CUDA_LIB.match(n)]
    if torch_cuda or (s.cpu_torch and cuda):
        return {"lib": (torch_cuda or cuda)[0], "torch": s.torch_version or ""}
    return None


def driver_lib_missing(s: Seen) -> Optional[Fields]:
    names = s.missing_names
    for n in ("libcuda.so.1", "libnvidia-ml.so.1"):
        if n in names:
            return {"lib": n}
    return None


def _cuda_lib_missing(s: Seen) -> Optional[Tuple[str, str, Optional[str]]]:
    """(library, the CUDA major it is for, torch's CUDA major) for the first missing CUDA library whose soname
    major is the CUDA major (libcudart.so.12; never libcudnn.so.9)."""
    cuda = [n for n in s.missing_names if CUDA_MAJOR_LIB.match(n)]
    if not cuda:
        return None
    m = CUDA_MAJOR_LIB.match(cuda[0])
    assert m is not None
    return cuda[0], m.group(2), str(s.torch_cuda).split(".")[0] if s.torch_cuda else None


def cuda_lib_of_other_major(s: Seen) -> Optional[Fields]:
    found = _cuda_lib_missing(s)
    if found and found[2] and found[2] != found[1]:
        return {"lib": found[0], "want": found[1], "torch": s.torch_version, "torch_cuda": s.torch_cuda}
    return None


def cuda_lib_without_cuda_torch(s: Seen) -> Optional[Fields]:
    found = _cuda_lib_missing(s)
    return {"lib": found[0], "want": found[1]} if found and not found[2] else None


def cuda_wheel(lib: str, torch_cuda: Optional[str]) -> Optional[str]:
    """The pip project that installs a CUDA library for torch's CUDA: libcudnn.so.9 -> nvidia-cudnn-cu12."""
    m = CUDA_LIB.match(lib)
    if not m:
        return None
    major = str(torch_cuda).split(".")[0] if torch_cuda else None
    return f"nvidia-{CUDA_WHEEL[m.group(1)]}-cu{major}" if major else f"nvidia-{CUDA_WHEEL[m.group(1)]}-cu<CUDA major>"


def cuda_wheel_lib_missing(s: Seen) -> Optional[Fields]:
    """A CUDA library that a pip wheel installs (cuDNN, NCCL, cuFFT...) is not found: its package is missing or
    not on the search path. Its soname major is not a CUDA version, so no CUDA is named from it."""
    for m in s.missing:
        if CUDA_LIB.match(m["name"]):
            where = m.get("found_elsewhere") or []
            note = f"; a copy is installed at {where[0]} but not on the search path" if where else ""
            return {
                "lib": m["name"],
                "needed_by": m["needed_by"],
                "package": cuda_wheel(m["name"], s.torch_cuda),
                "note": note,
            }
    return None


def torch_symbol_beside_found_cuda_lib(s: Seen) -> Optional[Fields]:
    """A CUDA library the model did not find but that IS installed (and in a real process often already loaded by
    another package), next to a symbol of torch that torch's libraries do not define: the symbol fails the import
    whichever way the library is found, so a build for another torch is the cause (vLLM 0.15.1's
    _flashmla_extension_C needs c10::cuda::c10_cuda_check_implementation(int, char const*, char const*, int, bool);
    torch 2.11's libc10_cuda.so defines it with `unsigned int`)."""
    miss = s.missing
    if not miss or not all(CUDA_LIB.match(m["name"]) and m.get("found_elsewhere") for m in miss):
        return None
    torch_syms = [n for n in s.result.get("undefined_beside_missing") or [] if TORCH_NS.match(n)]
    if not torch_syms:
        return None
    return {
        "symbol": s.pretty(torch_syms[0]),
        "torch": s.torch_version or "the installed one",
        "built": _built(s.built_for),
        "lib": miss[0]["name"],
        "where": miss[0]["found_elsewhere"][0],
    }


def companion_torch_symbol_beside_found_cuda_lib(s: Seen) -> Optional[Fields]:
    return torch_symbol_beside_found_cuda_lib(s) if s.distribution in COMPANIONS else None


def library_missing(s: Seen) -> Optional[Fields]:
    miss = s.missing
    return {"lib": miss[0]["name"], "needed_by": miss[0]["needed_by"]} if miss else None


def _version_fields(s: Seen) -> Fields:
    v = needed_version(s)
    assert v is not None
    n = len(s.versions)
    return {
        "version": v["version"],
        "file": v["file"],
        "provider": v["provider"],
        "required_by": v["required_by"],
        "required_by_name": os.path.basename(v["required_by"]),
        "more": f" (and {n - 1} more version(s))" if n > 1 else "",
    }


def libstdcxx_version_missing(s: Seen) -> Optional[Fields]:
    v = needed_version(s)
    if v and (v["version"].startswith(("GLIBCXX_", "CXXABI_", "GCC_")) or v["file"].startswith("libstdc++")):
        return _version_fields(s)
    return None


def glibc_version_missing(s: Seen) -> Optional[Fields]:
    v = needed_version(s)
    return _version_fields(s) if v and v["version"].startswith("GLIBC_") else None


def cuda_version_missing(s: Seen) -> Optional[Fields]:
    v = needed_version(s)
    if not v or (CUDA_LIB.match(v["file"]) and not CUDA_MAJOR_LIB.match(v["file"])):
        return None  # a cuDNN/NCCL/cuFFT... version is that library's own, not a CUDA one
    return _version_fields(s) if re.match(r"libcud|libcublas|libnv", v["file"]) else None


def version_missing(s: Seen) -> Optional[Fields]:
    return _version_fields(s) if s.versions else None


def driver_api_undefined(s: Seen) -> Optional[Fields]:
    driver = [n for n in s.undefined if DRIVER_API.match(n)]
    return {"symbol": driver[0]} if driver else None


def kernel_symbol_undefined(s: Seen) -> Optional[Fields]:
    cut = [n for n in s.undefined if "cutlass" in n.lower() and re.search(r"sm\d{2,3}", n)]
    return {"symbol": s.pretty(cut[0])} if cut else None


def other_string_abi(s: Seen) -> Optional[Fields]:
    """Torch symbols whose other-std::string-ABI twin the process defines, or all of them in the old ABI."""
    torch_syms = s.torch_symbols()
    if not torch_syms:
        return None
    twins = set(s.result.get("abi_twin_defined") or [])
    swapped = [n for n in torch_syms if n in twins]
    old_abi = [n for n in torch_syms if OLD_ABI_MARK.search(n) and not CXX11_MARK.search(n)]
    if not (swapped or (old_abi and len(old_abi) == len(torch_syms))):
        return None
    n = (swapped or old_abi)[0]
    ext_abi = "C++11" if CXX11_MARK.search(n) else "pre-C++11 (_GLIBCXX_USE_CXX11_ABI=0)"
    return {"symbol": s.pretty(n), "abi": ext_abi, "torch": s.torch_version or ""}


def companion_torch_symbol_undefined(s: Seen) -> Optional[Fields]:
    return torch_symbol_undefined(s) if s.distribution in COMPANIONS else None


def torch_symbol_undefined(s: Seen) -> Optional[Fields]:
    torch_syms = s.torch_symbols()
    if not torch_syms:
        return None
    return {
        "symbol": s.pretty(torch_syms[0]),
        "torch": s.torch_version or "the installed one",
        "built": _built(s.built_for),
    }


def python_api_undefined(s: Seen) -> Optional[Fields]:
    names = s.undefined
    return {"symbol": names[0]} if any(n.startswith(("Py", "_Py")) for n in names) else None


def symbol_undefined(s: Seen) -> Optional[Fields]:
    names = s.undefined
    return {"symbol": s.pretty(names[0])} if names else None


@dataclass(frozen=True)
class Row:
    slug: str
    when: Callable[[Seen], Optional[Fields]]
    summary: str


# Read in order; the first row whose predicate applies names the cause. A missing library stops dlopen before
# versions and symbols are looked at, so those rows come first.
CAUSES: Tuple[Row, ...] = (
    Row("missing-library", loader_error, "{error}"),
    Row(
        "cpu-torch-cuda-extension",
        torch_cuda_lib_missing,
        "{lib} is missing: torch {torch} is a CPU-only build and this is a CUDA extension",
    ),
    Row(
        "no-driver-in-container",
        driver_lib_missing,
        "{lib} (the NVIDIA driver's library) is not installed or not mounted",
    ),
    Row(
        "torchvision-mismatch",
        companion_torch_symbol_beside_found_cuda_lib,
        "undefined {symbol}: built against another torch than {torch}{built} ({lib} is installed, at {where})",
    ),
    Row(
        "undefined-symbol",
        torch_symbol_beside_found_cuda_lib,
        "undefined {symbol}: built against another torch than {torch}{built} ({lib} is installed, at {where})",
    ),
    Row(
        "cuda-major-mismatch",
        cuda_lib_of_other_major,
        "{lib} is missing: the extension was built for CUDA {want}, torch {torch} for CUDA {torch_cuda}",
    ),
    Row(
        "cuda-major-mismatch",
        cuda_lib_without_cuda_torch,
        "{lib} is missing: the extension was built for CUDA {want}; no CUDA {want} runtime is installed",
    ),
    Row(
        "missing-library",
        cuda_wheel_lib_missing,
        "{lib} is not found (needed by {needed_by}): it comes from the {package} wheel{note}",
    ),
    Row("missing-library", library_missing, "{lib} is not found (needed by {needed_by})"),
    Row(
        "libstdcxx-too-old",
        libstdcxx_version_missing,
        "version `{version}' not found in {provider} (required by {required_by}){more}",
    ),
    Row(
        "missing-library",
        glibc_version_missing,
        "version `{version}' not found in {provider}: the C library (glibc) is older than the one "
        "{required_by_name} was built on",
    ),
    Row("cuda-major-mismatch", cuda_version_missing, "{file} lacks version {version} (required by {required_by})"),
    Row("missing-library", version_missing, "{file} lacks version {version} (required by {required_by})"),
    Row(
        "driver-too-old",
        driver_api_undefined,
        "undefined driver API symbol {symbol}: libcuda.so.1 is older than the CUDA the extension was built with",
    ),
    Row(
        "sm12x-missing-kernel-symbol",
        kernel_symbol_undefined,
        "undefined {symbol}: a source build compiled the dispatcher but not this kernel",
    ),
    Row(
        "cxx11-abi-mismatch",
        other_string_abi,
        "undefined {symbol}: the extension uses the {abi} std::string ABI, torch {torch} the other one",
    ),
    Row(
        "torchvision-mismatch",
        companion_torch_symbol_undefined,
        "undefined {symbol}: built against another torch than {torch}{built}",
    ),
    Row(
        "undefined-symbol",
        torch_symbol_undefined,
        "undefined {symbol}: built against another torch than {torch}{built}",
    ),
    Row(
        "undefined-symbol",
        python_api_undefined,
        "undefined Python C-API symbol {symbol}: built for another Python version",
    ),
    Row("undefined-symbol", symbol_undefined, "undefined symbol {symbol}"),
)

# An extension that links but was written down as built for another torch (pins, version tags, cpp_lib.json).
BUILT_FOR_OTHER_TORCH = {"companion": "torchvision-mismatch", "other": "torch-pin-conflict"}


def classify(
    result: Mapping[str, Any],
    torch_build: Optional[Mapping[str, Any]],
    distribution: Optional[str] = None,
    built_for: Optional[Mapping[str, Any]] = None,
) -> Optional[Dict[str, str]]:
    """{'cause': slug, 'summary': text} for a failing loader result (the first row of CAUSES that applies);
    None when it loads."""
    seen = Seen(result, torch_build if isinstance(torch_build, dict) else {}, distribution, built_for)
    for row in CAUSES:
        fields = row.when(seen)
        if fields is not None:
            summary = row.summary.format(**fields)
            if row.slug == "cxx11-abi-mismatch":  # no torch version: one space, not two
                summary = summary.replace("  ", " ")
            verdict = {"cause": row.slug, "summary": summary}
            if fields.get("package"):
                verdict["package"] = str(fields["package"])
            return verdict
    return None


# --- versions (the one place this module orders or compares them) ------------------------------------------------


def torch_matches(built_for: Optional[Mapping[str, Any]], installed: Optional[str]) -> Optional[bool]:
    """Whether the installed torch is the one an extension was built for (None when unknowable)."""
    if not built_for or not installed:
        return None
    have = parse_version(installed)
    if have is None:
        return None
    if built_for.get("torch"):
        want = str(built_for["torch"]).split(".")
        got = [str(have.major), str(have.minor), str(have.micro)]
        return got[: len(want)] == want[:3]
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    spec = re.sub(r"^\s*torch\s*", "", built_for.get("range") or "").strip("() ")
    try:
        return SpecifierSet(spec).contains(have.public, prereleases=True) if spec else None
    except InvalidSpecifier:
        return None


def companion_version(name: str, torch_version: Optional[str]) -> Optional[str]:
    """The torchvision/torchaudio release paired with a torch 2.x.y: torchvision 0.(x+15).y, torchaudio 2.x.y."""
    m = re.match(r"^2\.(\d+)\.(\d+)", torch_version or "")
    if not m:
        return None
    minor, patch = int(m.group(1)), int(m.group(2))
    if name == "torchvision":
        return f"0.{minor + 15}.{patch}"
    return f"2.{minor}.{patch}" if name == "torchaudio" else None


def torch_index(torch_version: Optional[str]) -> str:
    """The PyTorch index of the installed torch's variant (+cu128 → .../whl/cu128), when it has one."""
    m = re.search(r"\+(cu\d+|cpu|rocm[\d.]+)$", torch_version or "")
    return f" --index-url https://download.pytorch.org/whl/{m.group(1)}" if m else ""


# --- fixes: one template per slug ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixFor:
    """What a fix template may name: the distribution, the installed torch and its CUDA, the torch it was built for."""

    dist: str
    torch: Optional[str]
    cuda: Optional[str]

    built: Optional[Mapping[str, Any]]

    @property
    def public(self) -> str:
        return (self.torch or "").split("+")[0]

    @property
    def companion(self) -> Optional[str]:
        return companion_version(self.dist, self.public) if self.dist in COMPANIONS else None

    @property
    def rebuild(self) -> str:
        return f"pip install --no-build-isolation --no-cache-dir --force-reinstall {self.dist}"


def _fix_cpu_torch(f: FixFor) -> str:
    cpu = f", or for CPU only: pip install {f.dist}=={f.companion}{torch_index(f.torch)}" if f.companion else ""
    return (
        f"pip install --force-reinstall 'torch=={f.public or '<version>'}' --index-url "
        f"https://download.pytorch.org/whl/cu128 (a CUDA build of torch){cpu}"
    )


def _fix_other_torch(f: FixFor) -> str:
    want = f.built.get("torch") if f.built else None
    alt = f"pip install 'torch=={want}' (the torch {f.dist} was built for), or " if want else ""
    return (
        f"{alt}install a {f.dist} release built for torch {f.public or '(installed)'}, or rebuild it against "
        f"this torch: {f.rebuild}"
    )


FIXES: Dict[str, Callable[[FixFor], str]] = {
    "cpu-torch-cuda-extension": _fix_cpu_torch,
    "undefined-symbol": _fix_other_torch,
    "torchvision-mismatch": _fix_other_torch,
    "cxx11-abi-mismatch": lambda f: (
        f"install a {f.dist} build with torch's std::string ABI (wheel names say cxx11abiTRUE/FALSE), or rebuild "
        f"it against this torch: {f.rebuild}"
    ),
    "cuda-major-mismatch": lambda f: (
        f"install the {f.dist} build for CUDA {f.cuda or 'of torch'} (from the same index as torch), or a torch for "
        "its CUDA"
    ),
    "libstdcxx-too-old": lambda f: (
        "put a newer libstdc++ first (conda install -c conda-forge 'libstdcxx-ng>=12' in conda, "
        "sudo apt install libstdc++6 elsewhere), or remove the older copy from LD_LIBRARY_PATH"
    ),
    "driver-too-old": lambda f: (
        f"upgrade the NVIDIA driver (CUDA 12.8 needs R570+, CUDA 13 R580+), or install a {f.dist} build for an "
        "older CUDA"
    ),
    "no-driver-in-container": lambda f: (
        "run with the NVIDIA driver visible: docker run --gpus all (NVIDIA Container Toolkit), or install the driver"
    ),
    "sm12x-missing-kernel-symbol": lambda f: (
        "rebuild with the kernels the dispatcher references (TORCH_CUDA_ARCH_LIST including 10.0 and 12.0), "
        "or use a vLLM revision whose CMake guards match the built kernels"
    ),
    "missing-library": lambda f: (
        f"install the package that provides the missing library, or reinstall {f.dist}: pip install "
        f"--force-reinstall {f.dist}"
    ),
}


def fix_for(
    cause: str, dist: str, torch: Optional[str], cuda: Optional[str], built: Optional[Mapping[str, Any]]
) -> str:
    """The command (or the action) that makes a distribution's extensions load again. A torchvision/torchaudio
    whose paired release is known gets that release, whatever the cause (but a CPU-only torch)."""
    f = FixFor(dist, torch, cuda, built)
    if cause != "cpu-torch-cuda-extension" and f.companion:
        return f"pip install {dist}=={f.companion}{torch_index(torch)}"
    return FIXES.get(cause, FIXES["missing-library"])(f)


def fix_for_other_torch(dist: str, torch: str, built: Mapping[str, Any]) -> str:
    """The fix for an extension that links but was built for another torch."""
    if dist not in COMPANIONS and built.get("torch"):
        return (
            f"pip install 'torch=={built['torch']}'{torch_index(torch)} (the torch it was built for), or a {dist} "
            f"release built for torch {torch.split('+')[0]}"
        )
    return fix_for("undefined-symbol", dist, torch, None, built)


def built_for_other_torch_slug(dist: str) -> str:
    return BUILT_FOR_OTHER_TORCH["companion" if dist in COMPANIONS else "other"]


def link_cause_slugs() -> Tuple[str, ...]:
    """Every KB slug BW401 reports, in table order (the single source for `explain`)."""
    slugs = [r.slug for r in CAUSES] + list(BUILT_FOR_OTHER_TORCH.values())
    return tuple(dict.fromkeys(slugs))


LINK_CAUSE_SLUGS = link_cause_slugs()
