"""Why a compiled extension will not load: the cause behind missing libraries, versions and symbols."""
from __future__ import annotations

import re
from typing import Optional

from .demangle import demangle

CUDA_LIB = re.compile(r"^lib(cudart|cublas|cublasLt|cudnn|nvrtc|cusparse|cufft|curand|cusolver|nvJitLink|nccl)\.so\.(\d+)")
TORCH_CUDA_LIB = re.compile(r"^lib(torch_cuda|c10_cuda|torch_cuda_cu|torch_cuda_cpp)\.so$")
TORCH_NS = re.compile(r"^_ZN?K?(3c10|2at|5torch|6caffe2)")
DRIVER_API = re.compile(r"^cu[A-Z][A-Za-z0-9_]*$")
OLD_ABI_STRING = re.compile(r"Ss|Sb|NSs|ERKSs")


def module_of(path: str, location: str) -> str:
    """The module a user imports that loads this file: vllm._C, flash_attn_2_cuda, or the package."""
    import os

    rel = os.path.relpath(path, location) if location and path.startswith(location) else os.path.basename(path)
    parts = rel.split(os.sep)
    base = parts[-1]
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\.(cpython-[^.]+|abi3)\.so$", base) or \
        re.match(r"^(?!lib)([A-Za-z_][A-Za-z0-9_]*)\.so$", base)
    if m and all(p.isidentifier() for p in parts[:-1]):
        return ".".join(parts[:-1] + [m.group(1)])
    return parts[0] if len(parts) > 1 else re.sub(r"\.so.*$", "", base)


def classify(result: dict, torch_build: Optional[dict]) -> Optional[dict]:
    """{'cause': slug, 'summary': text, ...} for a failing loader result; None when it loads."""
    torch_cuda = (torch_build or {}).get("cuda") if isinstance(torch_build, dict) else None
    torch_ver = (torch_build or {}).get("version") if isinstance(torch_build, dict) else None
    if result.get("error"):
        return {"cause": "missing-library", "summary": result["error"]}
    miss = result.get("missing_libraries") or []
    if miss:
        name = miss[0]["name"]
        if name in ("libcuda.so.1", "libnvidia-ml.so.1"):
            return {"cause": "no-driver-in-container", "summary": f"{name} (the NVIDIA driver's library) is not installed"}
        if TORCH_CUDA_LIB.match(name):
            return {"cause": "cpu-torch-cuda-extension",
                    "summary": f"{name} is missing: torch {torch_ver or ''} is not a CUDA build".strip()}
        m = CUDA_LIB.match(name)
        if m:
            want = m.group(2)
            have = f"torch is CUDA {torch_cuda}" if torch_cuda else "no such CUDA runtime is installed"
            return {"cause": "cuda-major-mismatch", "cuda_major": want,
                    "summary": f"{name} is missing: the extension was built for CUDA {want}; {have}"}
        return {"cause": "missing-library", "summary": f"{name} is not found (needed by {miss[0]['needed_by']})"}
    vers = result.get("missing_versions") or []
    if vers:
        v = vers[0]
        if v["version"].startswith(("GLIBCXX_", "CXXABI_", "GLIBC_", "GCC_")):
            return {"cause": "libstdcxx-too-old",
                    "summary": f"version `{v['version']}' not found in {v['provider']} (required by {v['required_by']})"}
        return {"cause": "cuda-major-mismatch" if "cud" in v["file"] else "missing-library",
                "summary": f"{v['file']} lacks version {v['version']} (required by {v['required_by']})"}
    und = result.get("undefined") or []
    if not und:
        return None
    names = [u["symbol"] for u in und]
    driver = [n for n in names if DRIVER_API.match(n)]
    if driver:
        return {"cause": "driver-too-old", "summary": f"undefined driver API symbol {driver[0]}: libcuda is older than "
                "the CUDA the extension was built with"}
    cut = [n for n in names if "cutlass" in n.lower() and re.search(r"sm\d{2,3}", n)]
    if cut:
        return {"cause": "sm12x-missing-kernel-symbol",
                "summary": f"undefined {demangle(cut[0]) or cut[0]}: a source build compiled the dispatcher but not "
                           "this kernel"}
    torch_syms = [n for n in names if TORCH_NS.match(n)]
    if torch_syms:
        old_abi = [n for n in torch_syms if OLD_ABI_STRING.search(n) and "cxx11" not in n]
        if old_abi and len(old_abi) == len(torch_syms):
            return {"cause": "cxx11-abi-mismatch",
                    "summary": f"undefined {demangle(old_abi[0]) or old_abi[0]}: built with the pre-C++11 string ABI "
                               f"(_GLIBCXX_USE_CXX11_ABI=0), torch {torch_ver or ''} uses the C++11 ABI"}
        return {"cause": "undefined-symbol",
                "summary": f"undefined {demangle(torch_syms[0]) or torch_syms[0]}: built against another torch than "
                           f"{torch_ver or 'the installed one'}"}
    if any(n.startswith(("Py", "_Py")) for n in names):
        return {"cause": "undefined-symbol", "summary": f"undefined Python C-API symbol {names[0]}: built for another "
                "Python version"}
    return {"cause": "undefined-symbol", "summary": f"undefined symbol {demangle(names[0]) or names[0]}"}
