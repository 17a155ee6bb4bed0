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


@pytest.mark.parametrize(
    "data,needle",
    [
        (b"", "unknown magic"),
        (b"glibc-ld.so.cache1.1", "truncated"),
        (b"glibc-ld.so.cache1.1" + b"\xff" * 40, "claims"),
        (b"ld.so-1.7.0\0\x05\0\0\0", "past the end"),
    ],
)
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


@pytest.mark.skipif(not shutil.which("ldconfig"), reason="no ldconfig")
@pytest.mark.parametrize(
    "fmt,magic", [("old", b"ld.so-1.7.0"), ("compat", b"ld.so-1.7.0"), ("new", b"glibc-ld.so.cache1.1")]
)
def test_every_format_ldconfig_writes(tmp_path, fmt, magic):
    """Caches written here by ldconfig in the old, combined (old table + new table) and new formats."""
    cache = tmp_path / f"{fmt}.cache"
    conf = tmp_path / "empty.conf"
    conf.write_text("")
    # -X: leave the library directories' symlinks alone; -f: only the trusted directories
    res = subprocess.run(
        ["ldconfig", "-X", "-f", str(conf), "-c", fmt, "-C", str(cache)], capture_output=True, text=True, timeout=60
    )
    if res.returncode != 0 or not cache.exists():
        pytest.skip(f"ldconfig cannot write a {fmt} cache here: {res.stderr.strip()[:200]}")
    buf = cache.read_bytes()
    assert buf.startswith(magic)
    if fmt == "compat":
        assert b"glibc-ld.so.cache1.1" in buf  # the combined form really holds both tables
    entries, err = read(str(cache))
    listed = subprocess.run(["ldconfig", "-p", "-C", str(cache)], capture_output=True, text=True, timeout=30)
    assert err is None and entries
    assert {(e["soname"], e["path"]) for e in entries} == ldconfig_p(listed.stdout)
    assert all(e["arch"] != "?" for e in entries)


def test_garbage_never_raises():
    """Random and bit-flipped real caches give entries or an error, never an exception."""
    import random

    rnd = random.Random(7)
    real = (ROOT / "etc/ld.so.cache").read_bytes()
    for i in range(300):
        buf = bytearray(real if i % 2 else real[: rnd.randrange(len(real))])
        for _ in range(rnd.randrange(1, 20)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        entries, err = parse(bytes(buf))
        assert isinstance(entries, list) and (err is None or isinstance(err, str))
    assert parse(bytes(rnd.randrange(256) for _ in range(4096)))[1]
