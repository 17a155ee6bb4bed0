"""The one parser of GPU target names, and the compute-capability vocabulary built on it."""

import pytest

from bwdoctor.domain.arch import (
    arch_key,
    arch_of,
    arch_sort_key,
    cc_label,
    cc_of,
    family_of,
    is_blackwell,
    normalize_target,
    parse_cc,
    parse_target,
    split_target,
    target_names_in,
)


@pytest.mark.parametrize(
    "text,sm",
    [
        ("sm_120", "sm_120"),
        ("12.0", "sm_120"),
        ("120", "sm_120"),
        ("sm120a", "sm_120"),
        ("compute_120", "sm_120"),
        ("SM_90a", "sm_90"),
        (" 9.0 ", "sm_90"),
        ("90", "sm_90"),
        ("compute_100f", "sm_100"),
        ("sm_12.1", "sm_121"),
        ("8.9", "sm_89"),
        ("compute86", "sm_86"),
    ],
)
def test_normalize_user_targets(text, sm):
    assert normalize_target(text) == sm


@pytest.mark.parametrize(
    "text", ["", "sm_", "120.0", "1", "sm_1200", "lto_90", "hopper", "sm_12.10", "12.0.1", "sm_90b", "sm__90"]
)
def test_not_a_target(text):
    with pytest.raises(ValueError):
        normalize_target(text)


def test_nvcc_spelling_is_strict():
    t = parse_target("sm_120a")
    assert (t.kind, t.major, t.minor, t.variant, t.name, t.cc) == ("sm", 12, 0, "a", "sm_120a", (12, 0))
    assert parse_target("compute_90").name == "compute_90" and parse_target("compute_103f").variant == "f"
    for bad in ("12.0", "120", "sm120", "lto_90", "sm_12.0", "compute_"):
        with pytest.raises(ValueError):
            parse_target(bad)


def test_compute_capabilities():
    assert parse_cc("12.0") == parse_cc("sm_120") == parse_cc("120") == parse_cc([12, 0]) == (12, 0)
    assert parse_cc("compute_90a") == (9, 0) and parse_cc("SM_121") == (12, 1)
    for bad in ("sm120", "12.0a", "lto_90", "x"):
        with pytest.raises(ValueError):
            parse_cc(bad)
    assert cc_label((12, 0)) == arch_of([12, 0]) == "sm_120" and arch_of((9, 0)) == "sm_90"
    assert arch_of(None) is None and arch_of([12]) is None and arch_of(["x", 1]) is None
    assert cc_of("sm_103") == (10, 3) and cc_of("nope") is None


def test_families():
    assert [
        family_of(cc) for cc in ((7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (10, 3), (12, 0), (12, 1))
    ] == ["Volta", "Turing", "Ampere", "Ampere", "Ada", "Hopper", "Blackwell", "Blackwell", "Blackwell", "Blackwell"]
    assert family_of([11, 0]) == "Blackwell" and family_of((4, 0)) is None and family_of(None) is None
    assert is_blackwell([12, 0]) and is_blackwell((10, 3)) and not is_blackwell([9, 0])
    assert not is_blackwell(None) and not is_blackwell([]) and not is_blackwell(["x"])
    assert all(is_blackwell(cc) == (family_of(cc) == "Blackwell") for cc in ((9, 0), (10, 0), (11, 0), (12, 1)))


def test_orders():
    names = ["sm_90a", "compute_120", "sm_120", "sm_75", "lto_90", "sm_90", "compute_90", "sm_120f"]
    assert sorted(names, key=arch_sort_key) == [
        "sm_75",
        "compute_90",
        "lto_90",
        "sm_90",
        "sm_90a",
        "compute_120",
        "sm_120",
        "sm_120f",
    ]
    assert sorted(["sm_120", "sm_89", "sm_100", "sm_90"], key=arch_key) == ["sm_89", "sm_90", "sm_100", "sm_120"]
    assert arch_sort_key("garbage") == (0, "", "garbage")


def test_names_in_text_use_the_same_grammar():
    text = "compute_75\ncompute_120f\nsm_1000\nsm_90a (sm_90a)\nlto_89\nfoo_90\n"
    assert target_names_in(text) == ["compute_75", "lto_89", "sm_90a", "compute_120f"]
    assert all(split_target(n) for n in target_names_in(text))
