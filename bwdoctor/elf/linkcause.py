"""Evidence about a compiled extension, read from its files: which import loads it (and whether inside
try/except), which torch it was built for where that is written down, and the other-std::string-ABI twin of a
symbol. No verdicts here: the causes (KB slugs, summaries, fixes) are made by checks/linkcauses.py."""

from __future__ import annotations

import os
import re
from typing import Callable, Optional

# std::string in the pre-C++11 ABI mangles as `Ss`; in the C++11 ABI as std::__cxx11::basic_string<char...>
CXX11_STRING = "NSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
VERSION_TAG = (
    re.compile(r"(?:^|[+.\-_])pt(\d)(\d+)"),  # +pt28cu128 (sgl-kernel, xformers)
    re.compile(r"torch[-_]?(\d+)\.(\d+)"),
)  # +cu12torch2.8cxx11abiTRUE
CXX11_TAG = re.compile(r"cxx11abi(TRUE|FALSE)", re.I)
SOFT_LOADS = {  # libraries a package loads inside try/except: a failure is a warning, not a failed import
    "xformers/_C.so": 'xFormers logs "can\'t load C++/CUDA extensions" and runs without its kernels',
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
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\.(cpython-[^.]+|abi3)\.so$", base) or re.match(
        r"^(?!lib)([A-Za-z_][A-Za-z0-9_]*)\.so$", base
    )
    if m and all(p.isidentifier() for p in parts[:-1]):
        return ".".join(parts[:-1] + [m.group(1)])
    return parts[0] if len(parts) > 1 else re.sub(r"\.so.*$", "", base)


def import_of(path: str, location: str, exports: Callable[[str], bool]) -> dict:
    """{'import': module or None, 'soft': reason or None} for a library that will not load.

    A Python extension module (it exports PyInit_<name>) fails its own import (`import vllm._C`); a plain
    library fails the import of the package that loads it unconditionally (torchaudio/lib/libtorchaudio.so
    fails `import torchaudio`; torchvision/_C.so fails `import torchvision` with "operator torchvision::nms
    does not exist"); a library loaded inside try/except fails no import (soft)."""
    rel = (
        os.path.relpath(path, location).replace(os.sep, "/")
        if location and path.startswith(location)
        else os.path.basename(path)
    )
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


def built_for_torch(
    version: str, url: Optional[str], cpp_lib: Optional[dict], torch_req: Optional[str]
) -> Optional[dict]:
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
                return {
                    "torch": f"{m.group(1)}.{m.group(2)}",
                    "source": f"{what} {text}",
                    "cxx11abi": (abi.group(1).upper() == "TRUE") if abi else None,
                }
    if torch_req:
        m = re.search(r"===?\s*([\d.]+)", torch_req)
        if m:
            return {"torch": m.group(1), "source": f"Requires-Dist {torch_req}", "cxx11abi": None}
        return {"torch": None, "range": torch_req, "source": f"Requires-Dist {torch_req}", "cxx11abi": None}
    return None


def swap_string_abi(name: str) -> Optional[str]:
    """The same symbol mangled with the other std::string ABI, or None when it has no std::string."""
    if CXX11_STRING in name:
        return name.replace(CXX11_STRING, "Ss")
    if "Ss" in name and name.startswith("_Z"):
        return name.replace("Ss", CXX11_STRING)
    return None
