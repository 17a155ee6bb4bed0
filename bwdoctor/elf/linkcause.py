"""Why a compiled extension will not load: the cause (a KB slug) behind missing libraries, versions and
symbols; which import fails; and which torch the extension was built for, where that is written down."""
from __future__ import annotations

import os
import re
from typing import Callable, Optional

from .demangle import demangle

CUDA_LIB = re.compile(r"^lib(cudart|cublas|cublasLt|cudnn|nvrtc|cusparse|cufft|curand|cusolver|nvJitLink|nccl|"
                      r"cupti|nvToolsExt|cufile|cusparseLt)\.so\.(\d+)")
TORCH_CUDA_LIB = re.compile(r"^lib(torch_cuda|c10_cuda|torch_cuda_cu|torch_cuda_cpp|torch_cuda_linalg)\.so$")
TORCH_NS = re.compile(r"^_ZN?K?(3c10|2at|5torch|6caffe2)|^_ZN?K?\d+(c10|at|torch)_|^torch_c10_|^_ZT[IVS]N?K?(3c10|2at|5torch)")
DRIVER_API = re.compile(r"^cu[A-Z][A-Za-z0-9_]*$")
# std::string in the pre-C++11 ABI mangles as `Ss`; in the C++11 ABI as std::__cxx11::basic_string<char...>
CXX11_STRING = "NSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
OLD_ABI_MARK = re.compile(r"Ss|Sb|NSs")
CXX11_MARK = re.compile(r"__cxx11|B5cxx11")
VERSION_TAG = (re.compile(r"(?:^|[+.\-_])pt(\d)(\d+)"),                     # +pt28cu128 (sgl-kernel, xformers)
               re.compile(r"torch[-_]?(\d+)\.(\d+)"))                         # +cu12torch2.8cxx11abiTRUE
CXX11_TAG = re.compile(r"cxx11abi(TRUE|FALSE)", re.I)
SOFT_LOADS = {  # libraries a package loads inside try/except: a failure is a warning, not a failed import
    "xformers/_C.so": "xFormers logs \"can't load C++/CUDA extensions\" and runs without its kernels",
    "torchvision/image.so": "torchvision.io image decoding is unavailable (a warning at import)",
    "torio/lib/": "an optional FFmpeg backend is unavailable",
    "torchaudio/lib/_torchaudio_sox": "the optional sox backend is unavailable",
    "torchaudio/lib/libtorchaudio_sox": "the optional sox backend is unavailable",
}
FAMILY_IMPORT = {"torchvision/_C.so": "torchvision", "torchaudio/lib/": "torchaudio"}


def module_of(path: str, location: str) -> str:
    """The module a user imports that loads this file: vllm._C, flash_attn_2_cuda, or the package."""
    rel = os.path.relpath(path, location) if location and path.startswith(location) else os.path.basename(path)
    parts = rel.split(os.sep)
    base = parts[-1]
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\.(cpython-[^.]+|abi3)\.so$", base) or \
        re.match(r"^(?!lib)([A-Za-z_][A-Za-z0-9_]*)\.so$", base)
    if m and all(p.isidentifier() for p in parts[:-1]):
        return ".".join(parts[:-1] + [m.group(1)])
    return parts[0] if len(parts) > 1 else re.sub(r"\.so.*$", "", base)


def import_of(path: str, location: str, exports: Callable[[str], bool]) -> dict:
    """{'import': module or None, 'soft': reason or None} for a library that will not load.

    A Python extension module (it exports PyInit_<name>) fails its own import (`import vllm._C`); a plain
    library fails the import of the package that loads it unconditionally (torchaudio/lib/libtorchaudio.so
    fails `import torchaudio`; torchvision/_C.so fails `import torchvision` with "operator torchvision::nms
    does not exist"); a library loaded inside try/except fails no import (soft)."""
    rel = os.path.relpath(path, location).replace(os.sep, "/") if location and path.startswith(location) \
        else os.path.basename(path)
    for key, why in SOFT_LOADS.items():
        if rel.startswith(key):
            return {"import": None, "soft": why}
    name = module_of(path, location)
    stem = name.rsplit(".", 1)[-1]
    if stem.isidentifier() and exports("PyInit_" + stem):
        return {"import": name, "soft": None}
    for key, mod in FAMILY_IMPORT.items():
        if rel.startswith(key):
            return {"import": mod, "soft": None}
    return {"import": rel.split("/")[0] if "/" in rel else name, "soft": None}


def built_for_torch(version: str, url: Optional[str], cpp_lib: Optional[dict], torch_req: Optional[str]) -> Optional[dict]:
    """{'torch': 'X.Y[.Z]', 'source': where it is written, 'cxx11abi': bool|None} for an extension, or None.

    Sources, most precise first: xformers' cpp_lib.json (the exact torch it was compiled against), a local
    version tag (+pt28cu128, +cu12torch2.8cxx11abiTRUE) in the version or the wheel name of direct_url.json,
    an exact Requires-Dist pin (torch==2.8.0), then a version range (torch>=2.10)."""
    if isinstance(cpp_lib, dict) and isinstance(cpp_lib.get("version"), dict):
        tv = cpp_lib["version"].get("torch")
        if isinstance(tv, str) and re.match(r"^\d+\.\d+", tv):
            return {"torch": tv.split("+")[0], "source": f"cpp_lib.json (built with torch {tv})", "cxx11abi": None}
    for text, what in ((version or "", "version tag"), (os.path.basename(url or ""), "wheel name")):
        local = text.split("+", 1)[1] if what == "version tag" and "+" in text else text
        for rx in VERSION_TAG:
            m = rx.search(local)
            if m:
                abi = CXX11_TAG.search(local)
                return {"torch": f"{m.group(1)}.{m.group(2)}", "source": f"{what} {text}",
                        "cxx11abi": (abi.group(1).upper() == "TRUE") if abi else None}
    if torch_req:
        m = re.search(r"===?\s*([\d.]+)", torch_req)
        if m:
            return {"torch": m.group(1), "source": f"Requires-Dist {torch_req}", "cxx11abi": None}
        return {"torch": None, "range": torch_req, "source": f"Requires-Dist {torch_req}", "cxx11abi": None}
    return None


def torch_matches(built_for: Optional[dict], installed: Optional[str]) -> Optional[bool]:
    """Whether the installed torch is the one an extension was built for (None when unknowable)."""
    if not built_for or not installed:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        have = Version(installed)
    except InvalidVersion:
        return None
    if built_for.get("torch"):
        want = built_for["torch"].split(".")
        got = [str(have.major), str(have.minor), str(have.micro)]
        return got[:len(want)] == want[:3]
    spec = re.sub(r"^\s*torch\s*", "", built_for.get("range") or "").strip("() ")
    try:
        return SpecifierSet(spec).contains(Version(have.public), prereleases=True) if spec else None
    except InvalidSpecifier:
        return None


def swap_string_abi(name: str) -> Optional[str]:
    """The same symbol mangled with the other std::string ABI, or None when it has no std::string."""
    if CXX11_STRING in name:
        return name.replace(CXX11_STRING, "Ss")
    if "Ss" in name and name.startswith("_Z"):
        return name.replace("Ss", CXX11_STRING)
    return None


def _built(built_for: Optional[dict]) -> str:
    if not built_for:
        return ""
    what = f"torch {built_for['torch']}" if built_for.get("torch") else f"torch{built_for.get('range', '')}"
    return f" (built for {what}, per {built_for['source']})"


def classify(result: dict, torch_build: Optional[dict], distribution: Optional[str] = None,
             built_for: Optional[dict] = None, defined: Optional[Callable[[str], bool]] = None) -> Optional[dict]:
    """{'cause': slug, 'summary': text, ...} for a failing loader result; None when it loads.

    defined(name): whether the process (torch included) defines a symbol — used to tell a C++11-ABI
    mismatch (torch defines the same function with the other std::string) from a version mismatch."""
    tb = torch_build if isinstance(torch_build, dict) else {}
    torch_cuda, torch_ver = tb.get("cuda"), tb.get("version")
    cpu_torch = bool(tb) and not tb.get("cuda") and not tb.get("hip")
    if result.get("error"):
        return {"cause": "missing-library", "summary": result["error"]}
    miss = result.get("missing_libraries") or []
    if miss:
        names = [m["name"] for m in miss]
        torch_cuda_miss = [n for n in names if TORCH_CUDA_LIB.match(n)]
        cuda_miss = [n for n in names if CUDA_LIB.match(n)]
        if torch_cuda_miss or (cpu_torch and cuda_miss):
            n = (torch_cuda_miss or cuda_miss)[0]
            return {"cause": "cpu-torch-cuda-extension",
                    "summary": f"{n} is missing: torch {torch_ver or ''} is a CPU-only build and this is a CUDA "
                               "extension"}
        if "libcuda.so.1" in names or "libnvidia-ml.so.1" in names:
            n = "libcuda.so.1" if "libcuda.so.1" in names else "libnvidia-ml.so.1"
            return {"cause": "no-driver-in-container",
                    "summary": f"{n} (the NVIDIA driver's library) is not installed or not mounted"}
        if cuda_miss:
            n = cuda_miss[0]
            want = CUDA_LIB.match(n).group(2)
            have_major = str(torch_cuda).split(".")[0] if torch_cuda else None
            if have_major and have_major != want:
                return {"cause": "cuda-major-mismatch", "cuda_major": want,
                        "summary": f"{n} is missing: the extension was built for CUDA {want}, torch "
                                   f"{torch_ver} for CUDA {torch_cuda}"}
            if not have_major:
                return {"cause": "cuda-major-mismatch", "cuda_major": want,
                        "summary": f"{n} is missing: the extension was built for CUDA {want}; no CUDA {want} "
                                   "runtime is installed"}
        return {"cause": "missing-library", "summary": f"{names[0]} is not found (needed by {miss[0]['needed_by']})"}
    vers = result.get("missing_versions") or []
    if vers:
        # the newest GLIBCXX_ missing says which libstdc++ is needed (GLIBCXX_3.4.30 = GCC 12)
        cxx = [v for v in vers if v["version"].startswith("GLIBCXX_")]
        v = max(cxx, key=lambda x: [int(n) for n in re.findall(r"\d+", x["version"])]) if cxx else vers[0]
        if v["version"].startswith(("GLIBCXX_", "CXXABI_", "GCC_")) or v["file"].startswith("libstdc++"):
            more = f" (and {len(vers) - 1} more version(s))" if len(vers) > 1 else ""
            return {"cause": "libstdcxx-too-old",
                    "summary": f"version `{v['version']}' not found in {v['provider']} (required by "
                               f"{v['required_by']}){more}"}
        if v["version"].startswith("GLIBC_"):
            return {"cause": "missing-library",
                    "summary": f"version `{v['version']}' not found in {v['provider']}: the C library (glibc) "
                               f"is older than the one {os.path.basename(v['required_by'])} was built on"}
        if re.match(r"libcud|libcublas|libnv", v["file"]):
            return {"cause": "cuda-major-mismatch",
                    "summary": f"{v['file']} lacks version {v['version']} (required by {v['required_by']})"}
        return {"cause": "missing-library",
                "summary": f"{v['file']} lacks version {v['version']} (required by {v['required_by']})"}
    und = result.get("undefined") or []
    if not und:
        return None
    names = [u["symbol"] for u in und]
    driver = [n for n in names if DRIVER_API.match(n)]
    if driver:
        return {"cause": "driver-too-old", "summary": f"undefined driver API symbol {driver[0]}: libcuda.so.1 is "
                "older than the CUDA the extension was built with"}
    cut = [n for n in names if "cutlass" in n.lower() and re.search(r"sm\d{2,3}", n)]
    if cut:
        return {"cause": "sm12x-missing-kernel-symbol",
                "summary": f"undefined {demangle(cut[0]) or cut[0]}: a source build compiled the dispatcher but not "
                           "this kernel"}
    torch_syms = [n for n in names if TORCH_NS.match(n)]
    if torch_syms:
        swapped = [n for n in torch_syms if defined and swap_string_abi(n) and defined(swap_string_abi(n))]
        old_abi = [n for n in torch_syms if OLD_ABI_MARK.search(n) and not CXX11_MARK.search(n)]
        if swapped or (old_abi and len(old_abi) == len(torch_syms)):
            n = (swapped or old_abi or torch_syms)[0]
            ext_abi = "C++11" if CXX11_MARK.search(n) else "pre-C++11 (_GLIBCXX_USE_CXX11_ABI=0)"
            return {"cause": "cxx11-abi-mismatch",
                    "summary": f"undefined {demangle(n) or n}: the extension uses the {ext_abi} std::string ABI, "
                               f"torch {torch_ver or ''} the other one".replace("  ", " ")}
        cause = "torchvision-mismatch" if distribution in ("torchvision", "torchaudio") else "undefined-symbol"
        return {"cause": cause,
                "summary": f"undefined {demangle(torch_syms[0]) or torch_syms[0]}: built against another torch than "
                           f"{torch_ver or 'the installed one'}{_built(built_for)}"}
    if any(n.startswith(("Py", "_Py")) for n in names):
        return {"cause": "undefined-symbol", "summary": f"undefined Python C-API symbol {names[0]}: built for another "
                "Python version"}
    return {"cause": "undefined-symbol", "summary": f"undefined symbol {demangle(names[0]) or names[0]}"}
