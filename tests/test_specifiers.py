"""bwdoctor.domain.specifiers answers as packaging's SpecifierSet does (pre-releases admitted), on the requirements
of real distributions and on the versions around each bound; and it declines (None) what it does not read."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import pytest
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from bwdoctor.domain.specifiers import parse

# torch pins of real wheels (their METADATA Requires-Dist lines), and other real forms
REAL = [
    "==2.9.0",  # vllm 0.11.x
    "==2.8.0",  # xformers 0.0.32
    ">=2.4.0",
    "<2.6,>=2.4",
    ">=2.1.0,<2.9",
    "~=2.2.0",
    "==2.5.*",
    "!=2.0.1,>=1.13",
    "==2.7.0+cu126",
    ">2.3",
    "<3",
    ">=0.0.post1",
    "~=1.4.0rc1",
    "~=1.4.post2",
    "==1!2.0",
    ">=1!1.0",
    "!=2.*",
    "== 2.6.0",
    ">=2.2.0a0,<2.3.0a0",
    "",
]


def _installed_specifiers() -> list:
    """Every specifier text in the Requires-Dist lines of the distributions this interpreter has."""
    out = set()
    for entry in sys.path:
        p = Path(entry)
        if not p.is_dir():
            continue
        for meta in p.glob("*.dist-info/METADATA"):
            for line in meta.read_text(errors="replace").splitlines():
                if line.startswith("Requires-Dist:"):
                    req = line.split(":", 1)[1].split(";", 1)[0]
                    m = re.match(r"\s*[A-Za-z0-9._-]+\s*(\[[^\]]*\])?\s*\(?([^)]*)\)?", req)
                    if m and m.group(2).strip():
                        out.add(m.group(2).strip())
    return sorted(out)


def _around(spec_text: str) -> list:
    """Versions at and around every bound of a specifier: pre, post, dev, local, shorter and longer releases."""
    vs = {"0", "1.0", "2.5.1", "2.9.0+cu130", "2.10.0.dev20250101", "3.0rc1"}
    for raw in re.findall(r"(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*", spec_text):
        for suffix in ("", ".0", ".1", "rc1", "a1", ".post1", ".dev1", "+cu128", ".post1+local", "rc1.post2"):
            vs.add(raw + suffix)
        parts = raw.split("!")[-1].split(".")
        vs.add(".".join(parts[:-1]) or "0")
        vs.add(".".join(parts[:-1] + [str(int(parts[-1]) + 1)]))
        vs.add(".".join(parts[:-1] + [str(max(int(parts[-1]) - 1, 0))]))
    return sorted(vs)


def _agree(spec_text: str) -> int:
    mine = parse(spec_text)
    try:
        theirs = SpecifierSet(spec_text)
    except InvalidSpecifier:
        assert mine is None, spec_text
        return 0
    if mine is None:
        return 0  # declined: the caller asks packaging
    assert str(mine) == str(theirs), spec_text
    n = 0
    for v in _around(spec_text):
        try:
            version = Version(v)
        except Exception:
            continue
        assert mine.contains(version) == theirs.contains(version, prereleases=True), (spec_text, v)
        n += 1
    return n


@pytest.mark.parametrize("spec_text", REAL)
def test_real_pins_match_packaging(spec_text):
    _agree(spec_text)


def test_every_installed_requirement_matches_packaging():
    texts = _installed_specifiers()
    assert len(texts) > 20  # the test environment's own distributions (pytest, mypy, ruff, packaging ...)
    checked = sum(_agree(t) for t in texts)
    assert checked > 500


def test_declines_what_it_does_not_read():
    declined = ("===2.0", "==v2.5.*", ">=2.4,,<3", "<=2.5+cu128", "~=2", "==2.5.*.1", ">= 2.4 <3", "<2.5.post1")
    for text in declined + ("~=1.4rc1",):
        assert parse(text) is None, text


def test_combinations_of_real_bounds():
    ops = ["==", "!=", "<=", ">=", "<", ">", "~="]
    versions = ["2.5", "2.5.0", "2.5.1rc1", "2.5.post1", "2.5.0.dev3", "1!2.5", "2.5.*"]
    n = 0
    for op, v in itertools.product(ops, versions):
        n += _agree(op + v)
    assert n > 200
