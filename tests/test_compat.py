"""Compatibility rules for every real compute capability, against a table written out by hand."""

from __future__ import annotations

import itertools

import pytest

from bwdoctor.domain.arch import parse_cc, parse_target
from bwdoctor.domain.compat import NATIVE, NONE, PTX_JIT, runs_on, verdict, verdict_for_file

ALL_CCS = ["7.0", "7.2", "7.5", "8.0", "8.6", "8.7", "8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1"]

# Where each target runs, written out from NVIDIA's rules (not computed): cubins within the major
# for a minor >= theirs, `a` only on its own CC, `f` within the family, plain PTX on anything newer.
RUNS_ON = {
    "sm_70": {"7.0", "7.2", "7.5"},
    "sm_72": {"7.2", "7.5"},
    "sm_75": {"7.5"},
    "sm_80": {"8.0", "8.6", "8.7", "8.9"},
    "sm_86": {"8.6", "8.7", "8.9"},
    "sm_87": {"8.7", "8.9"},
    "sm_89": {"8.9"},
    "sm_90": {"9.0"},
    "sm_90a": {"9.0"},
    "sm_100": {"10.0", "10.3"},
    "sm_100a": {"10.0"},
    "sm_100f": {"10.0", "10.3"},
    "sm_103": {"10.3"},
    "sm_103a": {"10.3"},
    "sm_103f": {"10.3"},
    "sm_110": {"11.0"},
    "sm_110f": {"11.0"},
    "sm_120": {"12.0", "12.1"},
    "sm_120a": {"12.0"},
    "sm_120f": {"12.0", "12.1"},
    "sm_121": {"12.1"},
    "sm_121a": {"12.1"},
    "sm_121f": {"12.1"},
    "compute_70": set(ALL_CCS),
    "compute_75": set(ALL_CCS) - {"7.0", "7.2"},
    "compute_80": {"8.0", "8.6", "8.7", "8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1"},
    "compute_89": {"8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1"},
    "compute_90": {"9.0", "10.0", "10.3", "11.0", "12.0", "12.1"},
    "compute_90a": {"9.0"},
    "compute_100": {"10.0", "10.3", "11.0", "12.0", "12.1"},
    "compute_100a": {"10.0"},
    "compute_100f": {"10.0", "10.3"},
    "compute_103f": {"10.3"},
    "compute_120": {"12.0", "12.1"},
    "compute_120a": {"12.0"},
    "compute_120f": {"12.0", "12.1"},
    "compute_121": {"12.1"},
    "compute_121a": {"12.1"},
}


def cc(text):
    major, minor = text.split(".")
    return int(major), int(minor)


@pytest.mark.parametrize("target,ccs", sorted(RUNS_ON.items()))
def test_each_target_on_every_real_cc(target, ccs):
    for c in ALL_CCS:
        assert runs_on(target, cc(c)) == (c in ccs), (target, c)


def test_verdict_for_every_pair_of_entries_on_every_cc():
    cubins = [t for t in RUNS_ON if t.startswith("sm_")]
    ptxs = [t for t in RUNS_ON if t.startswith("compute_")]
    for c in ALL_CCS:
        for sm, ptx in itertools.product(cubins + [None], ptxs + [None]):
            v = verdict(cc(c), [sm] if sm else [], [ptx] if ptx else [])
            if sm and c in RUNS_ON[sm]:
                assert (v.status, v.entry) == (NATIVE, sm)
            elif ptx and c in RUNS_ON[ptx]:
                assert (v.status, v.entry) == (PTX_JIT, ptx)
            else:
                assert (v.status, v.entry) == (NONE, None)


def test_best_entry_decides():
    v = verdict((12, 1), ["sm_80", "sm_90", "sm_120", "sm_121"], ["compute_90"])
    assert (v.status, v.entry, v.section) == (NATIVE, "sm_121", "fatbin")
    # GB10 cannot use sm_120a, but plain PTX still JITs
    v = verdict((12, 1), ["sm_120a", "sm_100a"], ["compute_90"])
    assert (v.status, v.entry) == (PTX_JIT, "compute_90")
    # H100 with only Blackwell code
    assert verdict((9, 0), ["sm_100", "sm_120"], ["compute_120"]).status == NONE


def test_relocatable_ptx_counts_as_jit():
    v = verdict_for_file(
        (9, 0), {"fatbin": {"elf": ["sm_80"], "ptx": []}, "relfatbin": {"elf": ["sm_80"], "ptx": ["compute_80"]}}
    )
    assert (v.status, v.entry, v.section) == (PTX_JIT, "compute_80", "relfatbin")
    v = verdict_for_file((8, 6), {"fatbin": {"elf": ["sm_80"], "ptx": []}, "relfatbin": {}})
    assert (v.status, v.entry) == (NATIVE, "sm_80")


@pytest.mark.parametrize(
    "text,want",
    [("12.0", (12, 0)), ("sm_120", (12, 0)), ("sm_121a", (12, 1)), ("90", (9, 0)), ("10.3", (10, 3)), ([8, 6], (8, 6))],
)
def test_parse_cc(text, want):
    assert parse_cc(text) == want


@pytest.mark.parametrize("bad", ["sm120", "sm_12x", "compute_", "lto_90", "sm_120af"])
def test_parse_target_rejects(bad):
    with pytest.raises(ValueError):
        parse_target(bad)


def test_unknown_names_are_ignored_not_fatal():
    assert verdict((12, 0), ["lto_120", "sm_120"]).entry == "sm_120"


# Measured on an H100 (CC 9.0) with binaries built like these fixtures (research notes, §11):
# which launches returned cudaErrorNoKernelImageForDevice and which ran.
H100_MEASURED = {
    "sm80": NONE,
    "sm90a": NATIVE,
    "ptx80": PTX_JIT,
    "sm100": NONE,
    "ptx120": NONE,
    "mix": NATIVE,
    "rdc80": PTX_JIT,
    "mix_lz4": NONE,
}


@pytest.mark.parametrize("stem,status", sorted(H100_MEASURED.items()))
def test_fixture_verdicts_on_h100_match_measurements(stem, status):
    from pathlib import Path

    from bwdoctor.elf.fatbin import scan_file

    item = scan_file(Path(__file__).parent / "fixtures" / "cuda" / f"{stem}.so")
    assert verdict_for_file((9, 0), item).status == status
