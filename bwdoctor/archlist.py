"""Parsing of GPU architecture lists as build systems take them: TORCH_CUDA_ARCH_LIST and
CMAKE_CUDA_ARCHITECTURES, in every legal form ("8.9;9.0+PTX", "12.0a", "10.0f", "8.0 8.6",
"Ampere", "120-real", "120a-virtual", "all", "all-major", "native")."""

from __future__ import annotations

import re
from typing import List, Optional

from . import lazyre

# torch.utils.cpp_extension._get_cuda_arch_flags accepts these names (each maps to its numbers).
NAMED = {
    "kepler+tesla": ["3.7"],
    "kepler": ["3.5+PTX"],
    "maxwell+tegra": ["5.3"],
    "maxwell": ["5.0", "5.2+PTX"],
    "pascal": ["6.0", "6.1+PTX"],
    "volta+tegra": ["7.2"],
    "volta": ["7.0+PTX"],
    "turing": ["7.5+PTX"],
    "ampere+tegra": ["8.7"],
    "ampere": ["8.0", "8.6+PTX"],
    "ada": ["8.9+PTX"],
    "hopper": ["9.0+PTX"],
    "blackwell+tegra": ["11.0"],
    "blackwell": ["10.0", "10.3", "12.0", "12.1+PTX"],
}
_TORCH_ITEM = lazyre.compile(r"^(\d+)\.(\d)([af]?)(\+PTX)?$", re.I)
_CMAKE_ITEM = lazyre.compile(r"^(\d+)(\d)([af]?)(-real|-virtual)?$", re.I)


class ArchListError(ValueError):
    """An arch list entry is not in any legal form."""


def _entry(major: int, minor: int, suffix: str, sass: bool, ptx: bool) -> dict:
    return {
        "arch": f"sm_{major}{minor}{suffix.lower()}",
        "cc": [major, minor],
        "suffix": suffix.lower(),
        "sass": sass,
        "ptx": ptx,
    }


def parse_torch_arch_list(text: str) -> Optional[List[dict]]:
    """Entries of a TORCH_CUDA_ARCH_LIST value (';' or spaces between items); None for "native", which torch
    (torch/utils/cpp_extension.py _get_cuda_arch_flags, torch 2.13: `_arch_list == "native"`) resolves at build time
    to the compute capabilities of the GPUs visible then (the last one +PTX)."""
    if (text or "").strip() == "native":
        return None
    out = []
    for item in re.split(r"[;\s,]+", (text or "").strip()):
        if not item:
            continue
        if item.lower() in NAMED:
            out += parse_torch_arch_list(";".join(NAMED[item.lower()])) or []
            continue
        m = _TORCH_ITEM.match(item)
        if not m:
            raise ArchListError(f"TORCH_CUDA_ARCH_LIST entry {item!r} is not like 8.6, 9.0+PTX, 12.0a or 10.0f")
        out.append(_entry(int(m.group(1)), int(m.group(2)), m.group(3), True, bool(m.group(4))))
    return out


def parse_cmake_architectures(text: str) -> Optional[List[dict]]:
    """Entries of CMAKE_CUDA_ARCHITECTURES; None for all / all-major / native (decided by CMake)."""
    val = (text or "").strip()
    if val.lower() in ("all", "all-major", "native"):
        return None
    out = []
    for item in re.split(r"[;\s,]+", val):
        if not item:
            continue
        m = _CMAKE_ITEM.match(item)
        if not m:
            raise ArchListError(
                f"CMAKE_CUDA_ARCHITECTURES entry {item!r} is not like 86, 90a, 120-real or 120f-virtual"
            )
        kind = (m.group(4) or "").lower()
        out.append(_entry(int(m.group(1)), int(m.group(2)), m.group(3), kind != "-virtual", kind != "-real"))
    return out


def covers(entries: List[dict], target: str) -> Optional[dict]:
    """The entry that gives a GPU of `target` (sm_XY) native code, else one giving PTX (returned with
    "via": "ptx"), else None."""
    n = int(target[3:])
    tmaj, tmin = n // 10, n % 10
    best = None
    for e in entries:
        maj, mnr = e["cc"]
        if e["sass"]:
            if e["suffix"] == "a" and (maj, mnr) == (tmaj, tmin):
                return dict(e, via="native")
            if e["suffix"] in ("", "f") and maj == tmaj and mnr <= tmin:
                return dict(e, via="native")
        if e["ptx"] and best is None:
            if e["suffix"] == "" and (maj, mnr) <= (tmaj, tmin):
                best = e
            elif e["suffix"] == "f" and maj == tmaj and mnr <= tmin:
                best = e
            elif e["suffix"] == "a" and (maj, mnr) == (tmaj, tmin):
                best = e
    return dict(best, via="ptx") if best else None
