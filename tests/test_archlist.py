"""Arch lists in every legal form, and which entry covers a target GPU."""

import pytest

from bwdoctor.archlist import ArchListError, covers, parse_cmake_architectures, parse_torch_arch_list


def names(entries):
    return [(e["arch"], e["sass"], e["ptx"]) for e in entries]


def test_torch_forms():
    assert names(parse_torch_arch_list("8.9;9.0+PTX")) == [("sm_89", True, False), ("sm_90", True, True)]
    assert names(parse_torch_arch_list(" 12.0a 10.0f ")) == [("sm_120a", True, False), ("sm_100f", True, False)]
    assert [e["arch"] for e in parse_torch_arch_list("Ampere;Hopper")] == ["sm_80", "sm_86", "sm_90"]
    with pytest.raises(ArchListError):
        parse_torch_arch_list("sm_120")


def test_cmake_forms():
    assert names(parse_cmake_architectures("80;90a;120-real;120f-virtual")) == [
        ("sm_80", True, True),
        ("sm_90a", True, True),
        ("sm_120", True, False),
        ("sm_120f", False, True),
    ]
    assert parse_cmake_architectures("native") is None
    with pytest.raises(ArchListError):
        parse_cmake_architectures("12.0")


@pytest.mark.parametrize(
    "value,target,arch",
    [
        ("8.0;8.6;8.9;9.0", "sm_120", None),  # the seeds' pre-Blackwell list
        ("8.0;9.0+PTX", "sm_120", "sm_90"),  # PTX only
        ("12.0", "sm_120", "sm_120"),
        ("12.0", "sm_121", "sm_120"),
        ("12.0a", "sm_121", None),
        ("12.0f", "sm_121", "sm_120f"),
        ("10.0", "sm_120", None),
    ],
)
def test_covers(value, target, arch):
    e = covers(parse_torch_arch_list(value), target)
    assert (e["arch"] if e else None) == arch
