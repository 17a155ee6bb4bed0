"""Which GPU code of a binary a GPU can run: native cubin, PTX JIT, or none.

Rules (NVIDIA CUDA C Programming Guide, "Binary Compatibility" and "PTX Compatibility"; NVIDIA
technical blog "NVIDIA Blackwell and NVIDIA CUDA 12.9 Introduce Family-Specific Architecture
Features"), confirmed on an H100 for the sm_80/sm_90/sm_90a/compute_* cases:

    sm_XY        runs on compute capability X.Z with Z >= Y (same major only)
    sm_XYa       runs only on exactly X.Y
    sm_XYf       runs on X.Z with Z >= Y (the family: same major)
    compute_XY   JIT-compiles on any X'.Z' >= X.Y, later majors too
    compute_XYa  JIT-compiles only on exactly X.Y
    compute_XYf  JIT-compiles on X.Z with Z >= Y (same major)

PTX in `__nv_relfatbin` (RDC builds) counts as JIT-able: the runtime links and JITs it (measured).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..records import dataclass
from .arch import CC, Target, parse_target

NATIVE, PTX_JIT, NONE = "native", "ptx-jit", "none"


@dataclass(frozen=True)
class Verdict:
    """What a GPU can do with a binary: status native/ptx-jit/none and the entry that decides it."""

    status: str
    entry: str | None  # the target name that decides (best cubin, else best PTX)
    section: str | None = None  # "fatbin" or "relfatbin" when known


def runs_on(target: str | Target, cc: CC) -> bool:
    """True when the target's code can run on a GPU of compute capability cc (natively or by JIT)."""
    t = parse_target(target) if isinstance(target, str) else target
    major, minor = cc
    if t.variant == "a":
        return (major, minor) == (t.major, t.minor)
    if t.variant == "f" or t.kind == "sm":
        return major == t.major and minor >= t.minor
    return (major, minor) >= (t.major, t.minor)


def verdict(
    cc: CC,
    cubins: Iterable[str] = (),
    ptx: Iterable[str] = (),
    rel_cubins: Iterable[str] = (),
    rel_ptx: Iterable[str] = (),
) -> Verdict:
    """Native if a cubin fits, else ptx-jit if a PTX fits, else none; with the deciding entry.

    Among fitting entries the newest one decides, as the CUDA runtime picks the closest match.
    Relocatable (RDC) entries count after the executable section's entries of the same kind;
    the runtime links them when the linked image has no fit (measured for PTX; assumed for
    relocatable cubins, which nvcc also links into `.nv_fatbin` anyway).
    """
    for status, groups in (
        (NATIVE, (("fatbin", cubins), ("relfatbin", rel_cubins))),
        (PTX_JIT, (("fatbin", ptx), ("relfatbin", rel_ptx))),
    ):
        for section, names in groups:
            best = _best_fit(cc, names)
            if best is not None:
                return Verdict(status, best, section)
    return Verdict(NONE, None, None)


def verdict_for_file(cc: CC, item: Mapping[str, Any]) -> Verdict:
    """Verdict for one `files[]` item of bwdoctor.cubins/1 (or the trimmed form with the same keys)."""
    fb: Mapping[str, Iterable[str]] = item.get("fatbin") or {}
    rel: Mapping[str, Iterable[str]] = item.get("relfatbin") or {}
    return verdict(cc, fb.get("elf", ()), fb.get("ptx", ()), rel.get("elf", ()), rel.get("ptx", ()))


def _best_fit(cc: CC, names: Iterable[str]) -> str | None:
    fits: list[tuple[tuple[int, int, int], str]] = []
    for name in names:
        try:
            t = parse_target(name)
        except ValueError:
            continue
        if runs_on(t, cc):
            # prefer the highest CC; at equal CC an arch-specific build over family over plain
            fits.append(((t.major, t.minor, {"a": 2, "f": 1}.get(t.variant, 0)), name))
    return max(fits)[1] if fits else None
