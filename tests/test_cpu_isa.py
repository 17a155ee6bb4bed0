"""ISA-level notes read from real gcc-built libraries, and the CPU check."""

import shutil
import subprocess

import pytest

from bwdoctor.checks import host
from bwdoctor.domain.isa import LEVEL_FLAGS
from bwdoctor.probes import cpuisa
from bwdoctor.testing import run_check, statuses

needs_gcc = pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")


@needs_gcc
@pytest.mark.parametrize("march,level", [("x86-64-v4", "x86-64-v4"), ("x86-64-v3", "x86-64-v3"), ("x86-64", "x86-64")])
def test_isa_note_from_gcc(tmp_path, march, level):
    src = tmp_path / "isa.c"
    src.write_text("int f(int x){return x*2;}\n")
    out = tmp_path / "libisa.so"
    res = subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", f"-march={march}", "-mneeded", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if res.returncode != 0:
        pytest.skip(f"gcc cannot emit ISA notes here: {res.stderr[:200]}")
    assert cpuisa.isa_needed(str(out)) == level


def test_isa_needed_on_non_elf(tmp_path):
    p = tmp_path / "x.so"
    p.write_bytes(b"\x7fELF garbage")
    assert cpuisa.isa_needed(str(p)) is None


def test_cpu_check():
    lib = [{"distribution": "vllm", "path": "/x/vllm/_C.abi3.so", "isa": "x86-64-v4"}]
    no512 = {"cpu": {"flags": ["sse4_2", "avx2", "fma"]}}
    f = run_check(host.cpu_isa_supported, {"host": no512, "cpu_isa_needed": lib})
    assert statuses(f) == ["fail"] and "avx512f" in f[0].message and f[0].evidence["import"] == "vllm"
    full = {"cpu": {"flags": list(LEVEL_FLAGS["x86-64-v2"] + LEVEL_FLAGS["x86-64-v3"] + LEVEL_FLAGS["x86-64-v4"])}}
    assert statuses(run_check(host.cpu_isa_supported, {"host": full, "cpu_isa_needed": lib})) == ["pass"]
    assert statuses(run_check(host.cpu_isa_supported, {"host": no512, "cpu_isa_needed": []})) == ["pass"]


@needs_gcc
def test_cet_feature_note_is_not_an_isa_level(tmp_path):
    """-fcf-protection writes GNU_PROPERTY_X86_FEATURE_1_AND (0xc0000002): not an ISA requirement."""
    src = tmp_path / "cet.c"
    src.write_text("int f(int x){return x+1;}\n")
    out = tmp_path / "libcet.so"
    res = subprocess.run(
        ["gcc", "-shared", "-fPIC", "-fcf-protection=full", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if res.returncode != 0:
        pytest.skip("gcc without -fcf-protection")
    assert cpuisa.isa_needed(str(out)) is None
