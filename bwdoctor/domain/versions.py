"""Version ordering: one helper for PEP 440 versions (built on `packaging`), and the tuple parsers of
NVIDIA driver and Linux kernel versions, which are not PEP 440.

Release order is PEP 440 order with the local tag ignored: 0.11.0rc1 < 0.11.0 < 0.11.1.dev45 < 0.11.1,
and 0.15.1+cu129 == 0.15.1 (a wheel's +cu129 / +cpu tag names a build, not a newer release). No
function here raises, whatever it is given.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

MAX_LEN = 256  # longer text is no version anyone wrote
_PREFIX_RE = re.compile(r"\s*[vV]?(\d{1,18}(?:\.\d{1,18}){0,9})")

# A release-order key: (0, None) for text that has no version in it (sorts first), else (1, public version).
VersionKey = tuple[int, Version | None]


def parse_version(text: object) -> Version | None:
    """The PEP 440 version of `text` (local tag kept), or None when it is not one."""
    if isinstance(text, Version):
        return text
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_LEN:
        return None
    try:
        return Version(text)
    except (InvalidVersion, ValueError, OverflowError):  # ValueError: integers past Python's digit limit
        return None


def public(text: object) -> str | None:
    """'0.15.1' for '0.15.1+cu129': the version without its local tag; None when not PEP 440."""
    v = parse_version(text)
    return v.public if v is not None else None


def local(text: object) -> str | None:
    """'cu129' for '0.15.1+cu129'; None without a local tag or when not PEP 440."""
    v = parse_version(text)
    return v.local if v is not None else None


def version_key(text: object) -> VersionKey:
    """Sort key in release order, for any input: PEP 440 text by its public version; other text by its
    leading numbers ("0.15.1-cu129" as 0.15.1); text without a version before every version."""
    v = parse_version(text)
    if v is None and isinstance(text, str):
        m = _PREFIX_RE.match(text[:MAX_LEN])
        v = parse_version(m.group(1)) if m else None
    if v is None:
        return 0, None
    return 1, (Version(v.public) if v.local is not None else v)


def compare(a: object, b: object) -> int:
    """-1, 0 or 1 as `a` comes before, with or after `b` in release order (see version_key)."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def at_least(text: object, floor: object) -> bool | None:
    """Whether version `text` is `floor` or later in release order; None when `text` is not PEP 440."""
    if parse_version(text) is None:
        return None
    return version_key(text) >= version_key(floor)


def release(text: object, parts: int | None = None) -> tuple[int, ...] | None:
    """The release numbers of a version ('12.8.93' → (12, 8, 93)); with `parts`, cut or padded with zeros
    to that many. None when `text` is not PEP 440."""
    v = parse_version(text)
    if v is None:
        return None
    nums = tuple(v.release)
    if parts is not None:
        nums = (nums + (0,) * parts)[:parts]
    return nums


def same_release(a: object, b: object, parts: int = 3) -> bool:
    """True when both versions have the same first `parts` release numbers (0.15.1+cu129 and 0.15.1.post1)."""
    ka, kb = version_key(a)[1], version_key(b)[1]
    if ka is None or kb is None:
        return ka is kb
    return (ka.release + (0,) * parts)[:parts] == (kb.release + (0,) * parts)[:parts]


def driver_version_tuple(version: object) -> tuple[int, ...] | None:
    """Numeric tuple of a driver version like '580.159.04' → (580, 159, 4); None when not all numbers."""
    if not isinstance(version, str) or len(version) > MAX_LEN:
        return None
    try:
        return tuple(int(x) for x in version.strip().split("."))
    except ValueError:
        return None


def kernel_version_tuple(release_text: object) -> tuple[int, int] | None:
    """(major, minor) of a kernel release string like '6.14.0-24-generic', or None."""
    if not isinstance(release_text, str):
        return None
    m = re.match(r"(\d+)\.(\d+)", release_text[:MAX_LEN].strip())
    return (int(m.group(1)), int(m.group(2))) if m else None
