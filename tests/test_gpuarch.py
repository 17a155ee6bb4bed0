"""Device-id ranges agree with the product names NVIDIA publishes for every id in the table."""

import re

import pytest

from bwdoctor.domain import arch
from bwdoctor.domain import gpus as gpuarch
from bwdoctor.domain.pci_ids import NAMES

# Product-name patterns → compute capability (NVIDIA's CUDA GPU list, developer.nvidia.com/cuda-gpus)
EXPECT = [
    (r"\bGB10\b", (12, 1)),
    (r"GeForce RTX 50\d\d|RTX PRO \d+ Blackwell|RTX 6000D|RTX PRO 500 ", (12, 0)),
    (r"RTX 2050", (8, 6)),  # GA107-based despite the name
    (r"RTX 3050 A ", (8, 9)),  # AD10x-based laptop part
    (r"\bG?B300\b", (10, 3)),
    (r"\bG?B200\b", (10, 0)),
    (r"\bH100|\bH200|\bH800|\bH20\b|H20[- ]|GH200", (9, 0)),
    (r"RTX 40\d\d|\bL40|\bL4\b|\bL20\b|RTX \d+ Ada|RTX 2000E? Ada", (8, 9)),
    (r"\bA100\b|\bA800\b|\bA30\b", (8, 0)),
    (r"RTX 30\d\d|\bA10\b|\bA40\b|RTX A\d+|\bA2\b|\bA16\b", (8, 6)),
    (r"RTX 20\d\d|GTX 16\d\d|\bT4\b|Quadro RTX|TITAN RTX|\bT\d{3,4}\b", (7, 5)),
]


def expected(name):
    for pat, cc in EXPECT:
        if re.search(pat, name):
            return cc
    return None


def test_ranges_match_product_names():
    checked = 0
    for dev, name in NAMES.items():
        want = expected(name)
        if want is None:
            continue
        _, chip, cc = gpuarch.lookup(dev)
        assert cc == want, f"0x{dev:04x} {name}: range says {cc} ({chip}), name says {want}"
        checked += 1
    assert checked > 150


@pytest.mark.parametrize(
    "dev,cc",
    [(0x2B85, (12, 0)), (0x2BB1, (12, 0)), (0x2E12, (12, 1)), (0x2330, (9, 0)), (0x2901, (10, 0)), (0x3182, (10, 3))],
)
def test_key_devices(dev, cc):
    assert gpuarch.lookup(dev)[2] == cc


def test_unknown_device():
    assert gpuarch.lookup(0x0001) == (None, None, None)
    assert arch.arch_of([12, 1]) == "sm_121" and arch.arch_of(None) is None
