"""Compute capabilities and GPU target names: the one parser of `sm_120`, `12.0`, `sm_120a`, `compute_90`…

A compute capability (CC) is a (major, minor) pair. A target name is how nvcc and users spell code for
a CC: `sm_XY` (cubin), `compute_XY` (PTX), `lto_XY` (LTO-IR), with an optional variant `a` (arch-specific)
or `f` (family); users also write `12.0`, `120`, `sm120`. Every spelling goes through `split_target`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .. import lazyre
from ..records import dataclass

CC = tuple[int, int]

# [kind[_]] major[.]minor [variant]: one digit of minor, one or two of major ("90", "9.0", "120", "12.0").
_TARGET_RE = lazyre.compile(
    r"^(?:(?P<kind>sm|compute|lto)(?P<sep>_?))?(?P<major>\d{1,2})(?P<dot>\.?)(?P<minor>\d)"
    r"(?P<variant>[af]?)$",
    re.IGNORECASE,
)
_NAME_IN_TEXT_RE = lazyre.compile(r"\b(?:compute|sm|lto)_\d+[af]?\b")

# Compute capability → architecture family (NVIDIA's CUDA GPU list, developer.nvidia.com/cuda-gpus).
FAMILIES = {
    (3, 5): "Kepler",
    (3, 7): "Kepler",
    (5, 0): "Maxwell",
    (5, 2): "Maxwell",
    (5, 3): "Maxwell",
    (6, 0): "Pascal",
    (6, 1): "Pascal",
    (6, 2): "Pascal",
    (7, 0): "Volta",
    (7, 2): "Volta",
    (7, 5): "Turing",
    (8, 0): "Ampere",
    (8, 6): "Ampere",
    (8, 7): "Ampere",
    (8, 9): "Ada",
    (9, 0): "Hopper",
    (10, 0): "Blackwell",
    (10, 1): "Blackwell",
    (10, 3): "Blackwell",
    (11, 0): "Blackwell",
    (12, 0): "Blackwell",
    (12, 1): "Blackwell",
}
BLACKWELL_MAJORS = (10, 11, 12)


@dataclass(frozen=True)
class Target:
    """A compiled target: kind "sm" (cubin), "compute" (PTX) or "lto", compute capability and variant."""

    kind: str
    major: int
    minor: int
    variant: str  # "", "a" or "f"

    @property
    def name(self) -> str:
        """sm_120a / compute_90 as nvcc spells it."""
        return f"{self.kind}_{self.major}{self.minor}{self.variant}"

    @property
    def cc(self) -> CC:
        return self.major, self.minor


@dataclass(frozen=True)
class _Spelling:
    target: Target
    prefixed: bool  # written with a kind ("sm", "compute", "lto")
    underscore: bool  # "sm_120", not "sm120"
    dotted: bool  # "12.0", not "120"


def _split(text: object) -> _Spelling | None:
    """The one parser of target names; None for anything that is not one."""
    if not isinstance(text, str) or len(text) > 32:
        return None
    m = _TARGET_RE.match(text.strip())
    if not m:
        return None
    kind = (m["kind"] or "").lower()
    target = Target(kind or "sm", int(m["major"]), int(m["minor"]), m["variant"].lower())
    return _Spelling(target, bool(kind), bool(m["sep"]), bool(m["dot"]))


def split_target(text: object) -> Target | None:
    """Any spelling of a target ("sm_120a", "compute_90", "12.0", "120", "sm120") as a Target, or None.

    A spelling without a kind ("12.0") is taken as "sm"."""
    s = _split(text)
    return s.target if s else None


def parse_target(name: str) -> Target:
    """Target from nvcc's spelling "sm_120a" / "compute_90"; ValueError for anything else."""
    s = _split(name)
    if s is None or not s.prefixed or not s.underscore or s.dotted or s.target.kind == "lto":
        raise ValueError(f"not a CUDA target name: {name!r}")
    return s.target


def _ambiguous(s: _Spelling, text: str) -> str | None:
    """Why a bare two-digit spelling cannot be read: "12" is CC 1.2 by the digits, but people mean 12.0."""
    if s.dotted or s.target.major >= 10:
        return None
    whole = (s.target.major * 10 + s.target.minor, 0)
    if s.target.cc not in FAMILIES and whole in FAMILIES:
        if s.prefixed:  # sm_12 is CC 1.2, which no GPU has
            cc = f"{s.target.major}.{s.target.minor}"
            return f"no GPU has compute capability {cc} ({text.strip()!r}): did you mean {s.target.kind}_{whole[0]}0?"
        return f"ambiguous GPU architecture {text.strip()!r}: write {whole[0]}.0 or {cc_label(whole)}"
    return None


def known_cc(cc: Sequence[int]) -> bool:
    """Whether a compute capability is one NVIDIA has shipped (the FAMILIES table)."""
    return (int(cc[0]), int(cc[1])) in FAMILIES


def normalize_target(text: str) -> str:
    """'sm_120', '12.0', '120', 'sm120a', 'compute_120' → 'sm_120'; ValueError on anything else, on a compute
    capability no GPU has (sm_999, 9.9) and on an ambiguous bare "12" (CC 1.2 by its digits)."""
    s = _split(text)
    if s is None or s.target.kind == "lto":
        raise ValueError(f"not a GPU architecture: {text!r} (expected e.g. sm_120 or 12.0)")
    why = _ambiguous(s, text)
    if why:
        raise ValueError(why)
    if not known_cc(s.target.cc):
        known = ", ".join(f"{a}.{b}" for a, b in sorted(FAMILIES))
        raise ValueError(f"no GPU has compute capability {s.target.major}.{s.target.minor} ({text!r}); known: {known}")
    return cc_label(s.target.cc)


def normalize_targets(values: Sequence[str]) -> list[str]:
    """Every --target value (each may hold several, comma-separated; repeats folded) as 'sm_XY', in order."""
    out: list[str] = []
    for value in values:
        for part in str(value).split(","):
            if part.strip():
                t = normalize_target(part)
                if t not in out:
                    out.append(t)
    return out


def parse_cc(value: str | Sequence[int]) -> CC:
    """(major, minor) from [12, 0], "12.0", "sm_120" or "120"; ValueError otherwise."""
    if isinstance(value, str):
        s = _split(value)
        if s is None or s.target.kind == "lto" or (s.prefixed and (s.dotted or not s.underscore)):
            raise ValueError(f"not a compute capability: {value!r}")
        if s.dotted and s.target.variant:
            raise ValueError(f"not a compute capability: {value!r}")
        why = _ambiguous(s, value)
        if why:
            raise ValueError(why)
        return s.target.cc
    major, minor = value
    return int(major), int(minor)


def cc_label(cc: Sequence[int]) -> str:
    """sm_120 for (12, 0)."""
    return f"sm_{int(cc[0])}{int(cc[1])}"


def arch_of(cc: object) -> str | None:
    """'sm_XY' for a compute capability (major, minor); None for anything else."""
    if not isinstance(cc, (list, tuple)) or len(cc) != 2:
        return None
    try:
        return cc_label((int(cc[0]), int(cc[1])))
    except (TypeError, ValueError):
        return None


def cc_of(arch: str) -> CC | None:
    """(12, 0) for 'sm_120' (any spelling split_target takes); None when it is not a target."""
    t = split_target(arch)
    return t.cc if t else None


def is_blackwell(cc: object) -> bool:
    """True for compute capability 10.x, 11.x and 12.x (Blackwell data-centre, Thor, RTX/GB10)."""
    if not isinstance(cc, (list, tuple)) or not cc:
        return False
    try:
        return int(cc[0]) in BLACKWELL_MAJORS
    except (TypeError, ValueError):
        return False


def family_of(cc: object) -> str | None:
    """'Hopper' for (9, 0), 'Blackwell' for (12, 0)…; None when unknown."""
    if not isinstance(cc, (list, tuple)) or len(cc) != 2:
        return None
    try:
        key = (int(cc[0]), int(cc[1]))
    except (TypeError, ValueError):
        return None
    return FAMILIES.get(key) or ("Blackwell" if key[0] in BLACKWELL_MAJORS else None)


def build_targets_for(cc: Sequence[int]) -> str:
    """The nvcc -gencode / TORCH_CUDA_ARCH_LIST spelling that gives native code for cc ("12.0")."""
    return f"{int(cc[0])}.{int(cc[1])}"


def arch_sort_key(name: str) -> tuple[int, str, str]:
    """Order of target names: by compute capability, then variant, then kind; non-targets first."""
    s = _split(name)
    if s is None or not s.prefixed:
        return 0, "", name
    t = s.target
    return t.major * 10 + t.minor, t.variant, t.kind


def arch_key(arch: str) -> CC:
    """Order of 'sm_XY' names by compute capability; (0, 0) for anything else."""
    return cc_of(arch) or (0, 0)


def target_names_in(text: str) -> list[str]:
    """Every target name ("sm_90a", "compute_120", "lto_89") written in a text, sorted and unique."""
    return sorted({t for t in _NAME_IN_TEXT_RE.findall(text or "") if split_target(t)}, key=arch_sort_key)
