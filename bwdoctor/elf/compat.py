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

import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple, Union

TARGET_RE = re.compile(r"^(sm|compute)_(\d{2,3})([af]?)$")
NATIVE, PTX_JIT, NONE = "native", "ptx-jit", "none"

CC = Tuple[int, int]


@dataclass(frozen=True)
class Target:
    """A compiled target: kind "sm" (cubin) or "compute" (PTX), compute capability and variant."""

    kind: str
    major: int
    minor: int
    variant: str  # "", "a" or "f"

    @property
    def name(self) -> str:
        """sm_120a / compute_90 as nvcc spells it."""
        return f"{self.kind}_{self.major}{self.minor}{self.variant}"


@dataclass(frozen=True)
class Verdict:
    """What a GPU can do with a binary: status native/ptx-jit/none and the entry that decides it."""

    status: str
    entry: Optional[str]  # the target name that decides (best cubin, else best PTX)
    section: Optional[str] = None  # "fatbin" or "relfatbin" when known


def parse_target(name: str) -> Target:
    """Target from "sm_120a" / "compute_90"; ValueError for anything else."""
    m = TARGET_RE.match(name.strip())
    if not m:
        raise ValueError(f"not a CUDA target name: {name!r}")
    number = int(m.group(2))
    return Target(kind=m.group(1), major=number // 10, minor=number % 10, variant=m.group(3))


def parse_cc(value: Union[str, Sequence[int]]) -> CC:
    """(major, minor) from [12, 0], "12.0", "sm_120" or "120"; ValueError otherwise."""
    if isinstance(value, str):
        text = value.strip().lower()
        m = re.match(r"^(\d+)\.(\d)$", text)
        if m:
            return int(m.group(1)), int(m.group(2))
        m = re.match(r"^(?:sm_|compute_)?(\d{2,3})[af]?$", text)
        if m:
            return int(m.group(1)) // 10, int(m.group(1)) % 10
        raise ValueError(f"not a compute capability: {value!r}")
    major, minor = value
    return int(major), int(minor)


def runs_on(target: Union[str, Target], cc: CC) -> bool:
    """True when the target's code can run on a GPU of compute capability cc (natively or by JIT)."""
    t = parse_target(target) if isinstance(target, str) else target
    major, minor = cc
    if t.variant == "a":
        return (major, minor) == (t.major, t.minor)
    if t.variant == "f" or t.kind == "sm":
        return major == t.major and minor >= t.minor
    return (major, minor) >= (t.major, t.minor)


def verdict(cc: CC, cubins: Iterable[str] = (), ptx: Iterable[str] = (),
            rel_cubins: Iterable[str] = (), rel_ptx: Iterable[str] = ()) -> Verdict:
    """Native if a cubin fits, else ptx-jit if a PTX fits, else none; with the deciding entry.

    Among fitting entries the newest one decides, as the CUDA runtime picks the closest match.
    Relocatable (RDC) entries count after the executable section's entries of the same kind;
    the runtime links them when the linked image has no fit (measured for PTX; assumed for
    relocatable cubins, which nvcc also links into `.nv_fatbin` anyway).
    """
    for status, groups in ((NATIVE, (("fatbin", cubins), ("relfatbin", rel_cubins))),
                           (PTX_JIT, (("fatbin", ptx), ("relfatbin", rel_ptx)))):
        for section, names in groups:
            best = _best_fit(cc, names)
            if best is not None:
                return Verdict(status, best, section)
    return Verdict(NONE, None, None)


def verdict_for_file(cc: CC, item: dict) -> Verdict:
    """Verdict for one `files[]` item of bwdoctor.cubins/1 (or the trimmed form with the same keys)."""
    fb = item.get("fatbin") or {}
    rel = item.get("relfatbin") or {}
    return verdict(cc, fb.get("elf", ()), fb.get("ptx", ()), rel.get("elf", ()), rel.get("ptx", ()))


def _best_fit(cc: CC, names: Iterable[str]) -> Optional[str]:
    fits = []
    for name in names:
        try:
            t = parse_target(name)
        except ValueError:
            continue
        if runs_on(t, cc):
            # prefer the highest CC; at equal CC an arch-specific build over family over plain
            fits.append(((t.major, t.minor, {"a": 2, "f": 1}.get(t.variant, 0)), name))
    return max(fits)[1] if fits else None


def build_targets_for(cc: CC) -> str:
    """The nvcc -gencode / TORCH_CUDA_ARCH_LIST spelling that gives native code for cc ("12.0")."""
    return f"{cc[0]}.{cc[1]}"


def cc_label(cc: CC) -> str:
    """sm_120 for (12, 0)."""
    return f"sm_{cc[0]}{cc[1]}"
