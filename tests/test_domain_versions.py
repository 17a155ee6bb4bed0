"""The one version helper: PEP 440 release order (local tag ignored), never raising; driver and kernel tuples."""

import itertools
import json
from pathlib import Path

import pytest

from bwdoctor.capacity.budget import PlanInput, overhead, vllm_at_least
from bwdoctor.capacity.model import load_model
from bwdoctor.domain.versions import (
    at_least,
    compare,
    driver_version_tuple,
    kernel_version_tuple,
    local,
    parse_version,
    public,
    release,
    same_release,
    version_key,
)
from bwdoctor.serve.releases import release_for

FIX = Path(__file__).parent / "fixtures" / "capacity"
ORDER = ["0.11.0rc1", "0.11.0", "0.11.1.dev45", "0.11.1"]


def test_release_order():
    assert sorted(reversed(ORDER), key=version_key) == ORDER
    for a, b in itertools.combinations(ORDER, 2):
        assert version_key(a) < version_key(b) and compare(a, b) == -1 and compare(b, a) == 1, (a, b)
    # a wheel's local tag names a build, not a later release
    assert version_key("0.15.1+cu129") == version_key("0.15.1") and compare("0.15.1+cu129", "0.15.1") == 0
    assert version_key("0.15.1+cu129") < version_key("0.15.2") and version_key("0.15.1+cu129") > version_key("0.15.0")
    assert version_key("2.9.1+cu128") == version_key("2.9.1+cpu")
    # numbers compare as numbers, and trailing zeros do not count
    assert version_key("0.9.2") < version_key("0.10.0") and version_key("12.10") > version_key("12.9")
    assert compare("12.8", "12.8.0") == 0


def test_the_budget_reader_no_longer_misreads_prereleases_and_local_tags():
    # the old reader took 0.11.0rc1 for (0, 11, 1) and 0.15.1+cu129 for (0, 15, 1129)
    assert vllm_at_least("0.11.0rc1", "0.11.0") is False and vllm_at_least("0.11.0", "0.11.0") is True
    assert vllm_at_least("0.15.1+cu129", "0.16.0") is False and vllm_at_least("0.15.1+cu129", "0.15.1") is True
    assert vllm_at_least(None, "0.15.1") and not vllm_at_least(None, "0.16.0")  # unknown: the fitted release
    # the CUDA-graph budget starts at 0.21.0: its release candidate is before it, a local build of it is it
    m = load_model(FIX / json.loads((FIX / "logs.json").read_text())["seed000-qwen72b-awq"]["model"])
    graphs = {
        v: overhead(m, PlanInput(gpu_memory_gib=80.0, vllm_version=v), 2048, 256)["cudagraph_gib"]
        for v in ("0.21.0rc1", "0.21.0", "0.21.0+cu129", "0.20.2")
    }
    assert graphs["0.21.0rc1"] == graphs["0.20.2"] == 0.0 and graphs["0.21.0"] == graphs["0.21.0+cu129"] > 0


def test_serve_release_table_lookup():
    assert release_for("0.15.1").exact and release_for("0.15.1").version == "0.15.1"
    r = release_for("0.15.1+cu129")
    assert r.version == "0.15.1" and r.exact
    r = release_for("0.16.0rc1")  # before 0.16.0: the facts of 0.15.1 stand in, not exactly
    assert r.version == "0.15.1" and not r.exact
    r = release_for("0.16.1.dev45+g1234abcd")  # after 0.16.0
    assert r.version == "0.16.0" and not r.exact
    assert release_for("not-a-version").index == 0 and not release_for("not-a-version").exact


def test_parts():
    assert parse_version("0.15.1+cu129").local == "cu129" and public("0.15.1+cu129") == "0.15.1"
    assert local("2.9.1+cu128") == "cu128" and local("2.9.1") is None
    assert release("12.8.93") == (12, 8, 93) and release("12.8", 3) == (12, 8, 0) and release("1.2.3.4", 2) == (1, 2)
    assert same_release("0.15.1+cu129", "0.15.1") and not same_release("0.15.1", "0.15.2")
    assert at_least("2.26.2", "2.26.2") and at_least("2.27.3+cu12", "2.26.2") and not at_least("2.26.2rc1", "2.26.2")
    assert at_least("abc", "1.0") is None


BAD = [
    None,
    "",
    " ",
    "abc",
    "1.2.3.4.5.6",
    "1" * 5000,
    "9" * 100 + ".1",
    "1." * 200,
    "v",
    "0.15.1-cu129",
    "+cu129",
    "\x00",
    "1.0\n2.0",
    12,
    1.5,
    b"1.0",
    [],
    {},
    object(),
    "𝟙.𝟚",
]


@pytest.mark.parametrize("text", BAD, ids=range(len(BAD)))
def test_bad_input_never_raises(text):
    v = parse_version(text)
    assert v is None or str(v)
    key = version_key(text)
    assert key <= version_key("999999") or key > version_key("0")
    assert compare(text, "1.0") in (-1, 0, 1) and compare("1.0", text) in (-1, 0, 1)
    assert at_least(text, "1.0") in (None, True, False)
    public(text), local(text), release(text), release(text, 3), same_release(text, "1.0")
    driver_version_tuple(text), kernel_version_tuple(text)


def test_bad_input_sorts_first_and_prefixes_count():
    assert version_key("abc") < version_key("0") and version_key(None) == version_key("") == version_key("abc")
    assert version_key("1.2.3.4.5.6") > version_key("1.2.3.4.5")
    assert version_key("0.15.1-cu129") == version_key("0.15.1")  # not PEP 440: its leading numbers
    assert parse_version("1" * 5000) is None and parse_version("99999999999999999999.1") is not None


def test_driver_and_kernel_tuples():
    assert kernel_version_tuple("6.18.44-fc-v657-gpu") == (6, 18)
    assert kernel_version_tuple("6.14.0-15-generic") >= (6, 14) > kernel_version_tuple("6.8.0-60-generic")
    assert kernel_version_tuple("") is None
    assert driver_version_tuple("580.159.04") == (580, 159, 4)
    assert driver_version_tuple("abc") is None
    # driver versions are not PEP 440 numbers to be reordered: 580.65.06 keeps its parts
    assert driver_version_tuple("570.26") < driver_version_tuple("570.124.06") < driver_version_tuple("580.65.06")
