"""PEP 440 version specifiers (`>=2.4,<2.6`, `==2.5.*`, `~=0.11.0`) without packaging.specifiers, whose import
(with packaging.tags, logging and sysconfig behind it) costs more than the checks that read a pin.

`parse(text)` gives a Specifiers for text made only of the standard operators with valid versions, else None, and
the caller falls back to packaging's SpecifierSet (which also owns every error message). Matching follows the
"Version specifiers" specification (packaging.python.org/en/latest/specifications/version-specifiers/), as
packaging implements it, always admitting pre-releases (what an installed version is checked with):

- `==V` / `!=V`: equal public versions when V has no local tag (a candidate's `+cu130` is ignored), else equal.
- `==V.*` / `!=V.*`: the candidate's release (padded with zeros), pre/post/dev segments included, starts with V.
- `<=V`, `>=V`: the candidate's public version against V.
- `<V`: less, and not a pre-release of V itself (V a final release).
- `>V`: greater, and not a post-release of V, nor V with a local tag (V a final release).
- `~=V`: `>=V` and `==P.*` where P is V's release without its last number (V a final release).
- `<V`, `>V`, `~=V` with a pre-, post- or dev-release V are declined: packaging's releases disagree on them.
- `===V`: the same string, ignoring case.

tests/test_specifiers.py compares every answer with packaging's on the requirements of real distributions.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from packaging.version import InvalidVersion, Version

from .. import lazyre

_ONE = lazyre.compile(r"\s*(~=|===|==|!=|<=|>=|<|>)\s*([^,\s;]+)\s*")
_PREFIX = lazyre.compile(r"^(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*$")


class Specifiers:
    """A parsed specifier set: each (operator, version text) in canonical order, as str() writes them."""

    def __init__(self, specs: List[Tuple[str, str]]) -> None:
        self._specs = sorted(dict.fromkeys(specs), key=lambda s: s[0] + s[1])

    def __str__(self) -> str:
        return ",".join(op + v for op, v in self._specs)

    def __repr__(self) -> str:
        return f"<Specifiers({str(self)!r})>"

    def contains(self, version: Version, prereleases: bool = True) -> bool:
        """Whether `version` satisfies every specifier (pre-releases always admitted)."""
        return all(_matches(op, text, version) for op, text in self._specs)


def parse(text: str) -> Optional[Specifiers]:
    """The Specifiers of `text` (comma-separated, may be empty), or None for anything beyond the plain forms."""
    specs: List[Tuple[str, str]] = []
    for part in text.split(","):
        if not part.strip():
            if text.strip():  # an empty piece between commas: packaging's error to give
                return None
            continue
        m = _ONE.fullmatch(part)
        if m is None or not _valid(m.group(1), m.group(2)):
            return None
        specs.append((m.group(1), m.group(2)))
    return Specifiers(specs)


def _valid(op: str, text: str) -> bool:
    if op == "===":
        return False  # arbitrary equality: rare, left to packaging
    wildcard = text.endswith(".*")
    if wildcard:
        return op in ("==", "!=") and bool(_PREFIX.match(text[:-2]))
    try:
        v = Version(text)
    except InvalidVersion:
        return False
    if op in ("<", ">", "~=") and (v.pre is not None or v.post is not None or v.dev is not None):
        return False  # how these exclude a bound's own pre/post-releases differs between packaging releases
    if op == "~=":
        return v.local is None and len(v.release) >= 2
    return v.local is None or op in ("==", "!=")


def _release_prefix_match(prefix_text: str, version: Version) -> bool:
    """==PREFIX.*: the candidate's public version, split into release numbers and then its other segments,
    starts with the prefix's numbers (the candidate's release padded with zeros to the prefix's length)."""
    epoch, _, rest = prefix_text.rpartition("!")
    if int(epoch or 0) != version.epoch:
        return False
    want = [int(x) for x in rest.split(".")]
    have = list(version.release)
    if len(have) < len(want):
        have += [0] * (len(want) - len(have))
    return have[: len(want)] == want


def _matches(op: str, text: str, cand: Version) -> bool:
    if text.endswith(".*"):
        hit = _release_prefix_match(text[:-2], cand)
        return hit if op == "==" else not hit
    spec = Version(text)
    public = Version(cand.public) if cand.local is not None else cand
    if op == "==":
        return (cand if spec.local is not None else public) == spec
    if op == "!=":
        return (cand if spec.local is not None else public) != spec
    if op == "<=":
        return public <= spec
    if op == ">=":
        return public >= spec
    if op == "<":
        if not cand < spec:
            return False
        if not spec.is_prerelease and cand.is_prerelease and Version(cand.base_version) == Version(spec.base_version):
            return False
        return True
    if op == ">":
        if not cand > spec:
            return False
        base_equal = Version(cand.base_version) == Version(spec.base_version)
        if not spec.is_postrelease and cand.is_postrelease and base_equal:
            return False
        if cand.local is not None and base_equal:
            return False
        return True
    if op == "~=":
        prefix = ".".join(str(n) for n in spec.release[:-1])
        if spec.epoch:
            prefix = f"{spec.epoch}!{prefix}"
        return public >= spec and _release_prefix_match(prefix, cand)
    return False
