"""CUDA version facts: what each toolkit release can compile for, and the driver each runtime needs.

Architectures per release were measured with the ptxas of each release (tests/fixtures/toolkit);
driver minimums are NVIDIA's CUDA release notes, table "CUDA Toolkit and Corresponding Driver Versions"
(https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/index.html).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .versions import release

Release = tuple[int, int]

# First toolkit release that can emit code for an architecture (real: sm_XY; a/f suffix noted separately).
FIRST_RELEASE: dict[str, Release] = {
    "sm_75": (10, 0),
    "sm_80": (11, 0),
    "sm_86": (11, 1),
    "sm_87": (11, 4),
    "sm_89": (11, 8),
    "sm_90": (11, 8),
    "sm_90a": (12, 0),
    "sm_100": (12, 8),
    "sm_100a": (12, 8),
    "sm_101": (12, 8),
    "sm_120": (12, 8),
    "sm_120a": (12, 8),
    "sm_103": (12, 9),
    "sm_103a": (12, 9),
    "sm_121": (12, 9),
    "sm_121a": (12, 9),
    "sm_100f": (12, 9),
    "sm_103f": (12, 9),
    "sm_120f": (12, 9),
    "sm_121f": (12, 9),
    "sm_110": (13, 0),
    "sm_110a": (13, 0),
    "sm_110f": (13, 0),
    "sm_88": (13, 0),
}
# CUDA 13.0 dropped Maxwell, Pascal and Volta (sm_50 … sm_72): nvcc 13.0 --list-gpu-arch starts at compute_75.
LAST_RELEASE: dict[str, Release] = {
    a: (12, 9) for a in ("sm_50", "sm_52", "sm_53", "sm_60", "sm_61", "sm_62", "sm_70", "sm_72")
}

# Minimum Linux driver for each CUDA toolkit release (GA), from the release notes table.
TOOLKIT_DRIVER: dict[Release, str] = {
    (11, 8): "520.61.05",
    (12, 0): "525.60.13",
    (12, 1): "530.30.02",
    (12, 2): "535.54.03",
    (12, 3): "545.23.06",
    (12, 4): "550.54.14",
    (12, 5): "555.42.02",
    (12, 6): "560.28.03",
    (12, 8): "570.26",
    (12, 9): "575.51.03",
    (13, 0): "580.65.06",
}
# Minor-version compatibility: a runtime of a major runs on any driver at or above that major's floor
# (same release notes, "CUDA minor version compatibility"); below it the runtime cannot start at all.
MAJOR_DRIVER_FLOOR: dict[int, str] = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
# Releases before minor-version compatibility (CUDA 10 and older need their own release's driver), from the same
# table; kept apart from TOOLKIT_DRIVER, which lists the toolkits a machine can be given today.
LEGACY_TOOLKIT_DRIVER: dict[Release, str] = {
    (9, 0): "384.81",
    (9, 1): "390.46",
    (9, 2): "396.26",
    (10, 0): "410.48",
    (10, 1): "418.39",
    (10, 2): "440.33",
}


def cuda_release(version: object) -> Release | None:
    """(major, minor) of a CUDA version ("12.8", "12.8.93", "13.0"); None when it has no minor."""
    nums = release(version)
    if nums is None or len(nums) < 2:
        return None
    return nums[0], nums[1]


def release_supports(version: str, arch: str) -> bool | None:
    """Whether toolkit release 'X.Y' can emit sm_XY[a|f] code; None when unknown."""
    nums = release(version)
    if not nums:
        return None
    v = nums[:2]
    if arch in LAST_RELEASE and v > LAST_RELEASE[arch]:
        return False
    first = FIRST_RELEASE.get(arch)
    if first is None:
        first = FIRST_RELEASE.get(re.sub(r"[af]$", "", arch))
        if first is None:
            return None
    return v >= first


def supports(archs: Iterable[str] | None, version: str | None, target: str) -> bool | None:
    """Whether a compiler with these listed archs (or, failing that, this release) can build `target` (sm_XY)."""
    listed = list(archs or [])
    if listed:
        n = target.split("_", 1)[1]
        return f"sm_{n}" in listed or f"compute_{n}" in listed
    return release_supports(version, target) if version else None


def min_driver_for(cuda: object) -> tuple[str | None, str | None]:
    """(driver for full support of this CUDA release, driver floor of its major) — None when unknown."""
    v = cuda_release(cuda)
    if v is None:
        return None, None
    full = TOOLKIT_DRIVER.get(v) or LEGACY_TOOLKIT_DRIVER.get(v)
    if full is None:  # a release newer than the table: the newest known of that major
        known = [k for k in TOOLKIT_DRIVER if k[0] == v[0] and k <= v]
        full = TOOLKIT_DRIVER[max(known)] if known else None
    return full, MAJOR_DRIVER_FLOOR.get(v[0])
