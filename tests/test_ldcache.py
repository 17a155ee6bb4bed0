"""The ld.so.cache parser agrees with `ldconfig -p` on real caches, and survives garbage."""
import shutil
import subprocess
from pathlib import Path

import pytest

from bwdoctor.elf.ldcache import parse, read

ROOT = Path(__file__).parent / "fixtures" / "roots" / "h100-box"


def ldconfig_p(text):
    out = set()
    for line in text.splitlines():
        if "=>" in line:
            out.add((line.split(" (")[0].strip(), line.split("=> ")[1].strip()))
    return out


def test_captured_cache_matches_captured_ldconfig_p():
    entries, err = read(str(ROOT / "etc/ld.so.cache"))
    assert err is None and len(entries) == 520
    assert {(e["soname"], e["path"]) for e in entries} == ldconfig_p((ROOT / "cmd/ldconfig-p.txt").read_text())


@pytest.mark.skipif(not (shutil.which("ldconfig") and Path("/etc/ld.so.cache").exists()), reason="no ldconfig")
def test_this_machine():
    entries, err = read("/etc/ld.so.cache")
    res = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=30)
    assert err is None and {(e["soname"], e["path"]) for e in entries} == ldconfig_p(res.stdout)


@pytest.mark.parametrize("data,needle", [
    (b"", "unknown magic"), (b"glibc-ld.so.cache1.1", "truncated"),
    (b"glibc-ld.so.cache1.1" + b"\xff" * 40, "claims"), (b"ld.so-1.7.0\0\x05\0\0\0", "past the end"),
])
def test_garbage(data, needle):
    entries, err = parse(data)
    assert entries == [] and needle in err


def test_truncated_real_cache_keeps_what_it_read():
    buf = (ROOT / "etc/ld.so.cache").read_bytes()
    entries, err = parse(buf[:2000])  # the string table lives at the end: names are gone
    assert "outside the string table" in err and len(entries) < 520
    entries, err = parse(buf[:-100])
    assert err and 400 < len(entries) < 520
    assert read("/nonexistent/ld.so.cache")[1].endswith("does not exist")
