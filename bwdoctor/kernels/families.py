"""Kernel families: a name for what a kernel is for, read from its mangled symbol, and the vLLM features that
need each family (data in bwdoctor/data/kernel_families.json, with the upstream sources it was read from).

A family is the first rule of the data file whose pattern occurs in the mangled name (`marlin`, `machete`,
`flash`, `moe`, `fp4`, `cutlass`, ...); failing that, the kernel's own leading name (its namespace path past
`vllm::` and anonymous namespaces, `_kernel` suffix dropped), so every kernel has a family and unknown code
is still grouped by what it is called.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, List, Tuple

GENERIC_NAMESPACES = {"vllm", "at", "native", "c10", "cub", "thrust", "std", "cuda", "detail", "kernels", "impl", "_v2"}
_SOURCE_NAME = re.compile(r"(\d{1,6})")
_IGNORED = re.compile(r"_GLOBAL__N|CUB_\d|THRUST_\d|sm\d+$")  # anonymous namespaces, CUB's versioned namespace, sm100::


@lru_cache(maxsize=1)
def table() -> Dict[str, Any]:
    """The family data file: {"sources": [...], "families": [{"name", "patterns", "features", ...}]}."""
    text = resources.files("bwdoctor.data").joinpath("kernel_families.json").read_text(encoding="utf-8")
    data: Dict[str, Any] = json.loads(text)
    return data


@lru_cache(maxsize=1)
def _rules() -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    return tuple((f["name"], tuple(p.lower() for p in f["patterns"])) for f in table()["families"])


def leading_names(mangled: str, limit: int = 4) -> List[str]:
    """The first source names of an Itanium-mangled symbol (`_ZN4vllm8rms_norm...` -> ["vllm", "rms_norm"]).

    A C symbol (not starting with _Z) is its own single name."""
    if not mangled.startswith("_Z"):
        return [mangled]
    nested = mangled.startswith("_ZN")
    i = 3 if nested else 2
    out: List[str] = []
    while i < len(mangled) and len(out) < limit:
        if mangled[i] in "KVrL":  # cv-qualifiers and the L of an internal-linkage name
            i += 1
            continue
        m = _SOURCE_NAME.match(mangled, i)
        if not m:
            break
        n = int(m.group(1))
        i = m.end()
        if n == 0 or i + n > len(mangled):
            break  # a length past the end: not a real mangled name
        out.append(mangled[i : i + n])
        i += n
        if not nested:
            break
    return out


def family_of(mangled: str) -> str:
    """The family of one kernel, from its mangled name."""
    low = mangled[:2000].lower()
    for name, patterns in _rules():
        if any(p in low for p in patterns):
            return name
    names = [n for n in leading_names(mangled) if n and not _IGNORED.match(n) and n not in GENERIC_NAMESPACES]
    if not names:
        return "other"
    head = names[0]
    if head.endswith("_kernel") and len(head) > len("_kernel"):
        head = head[: -len("_kernel")]
    return head


def features_of(family: str) -> List[Dict[str, str]]:
    """The vLLM features that need this family ([] when none is known)."""
    for f in table()["families"]:
        if f["name"] == family:
            return list(f.get("features", []))
    return []


def arch_specific(family: str) -> bool:
    """True when the family is built only for some GPUs by design (dispatched only there)."""
    for f in table()["families"]:
        if f["name"] == family:
            return bool(f.get("arch_specific"))
    return False
