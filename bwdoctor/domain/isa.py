"""x86-64 micro-architecture levels (psABI): the bits ELF GNU property notes use and the CPU flags each adds."""

from __future__ import annotations

# GNU_PROPERTY_X86_ISA_1_NEEDED bit → level, highest first (a note's highest bit names its level).
LEVELS: tuple[tuple[int, str], ...] = ((8, "x86-64-v4"), (4, "x86-64-v3"), (2, "x86-64-v2"), (1, "x86-64"))
# The levels above baseline, in order.
ORDER: tuple[str, ...] = ("x86-64-v2", "x86-64-v3", "x86-64-v4")
# CPU flags (/proc/cpuinfo names) each level adds, from the x86-64 psABI micro-architecture levels.
LEVEL_FLAGS: dict[str, tuple[str, ...]] = {
    "x86-64-v2": ("cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"),
    "x86-64-v3": ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"),
    "x86-64-v4": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}


def level_from_bits(bits: int) -> str | None:
    """The level an ISA_1_NEEDED bit mask names (its highest bit), or None when no level bit is set."""
    return next((lvl for bit, lvl in LEVELS if bits & bit), None)


def flags_needed(level: str) -> frozenset[str]:
    """Every CPU flag a library built for `level` may use (that level's and those below it)."""
    if level not in ORDER:
        return frozenset()
    return frozenset(f for lvl in ORDER[: ORDER.index(level) + 1] for f in LEVEL_FLAGS[lvl])
