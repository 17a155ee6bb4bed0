"""The fatbin reader against real nvcc-built fixtures, cuobjdump's listings, and hostile files."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from bwdoctor.elf.fatbin import FatbinFormatError, read_fatbins, scan_file, walk_section

FIX = Path(__file__).parent / "fixtures" / "cuda"
REAL = sorted(FIX.glob("*.so"))
HOSTILE = sorted((FIX / "hostile").glob("*.so"))


def cuobjdump_listing(so: Path) -> dict:
    """{"--list-elf": [names], ...} from the committed NAME.cuobjdump.txt."""
    out, cur = {}, None
    for line in so.with_suffix(".cuobjdump.txt").read_text().splitlines():
        if line.startswith("$ cuobjdump "):
            cur = line[len("$ cuobjdump ") :].rsplit(" ", 1)[0]
            out[cur] = []
            continue
        m = re.match(r"(ELF|PTX) file\s+\d+: .*\.(sm_\d+[af]?)\.(cubin|ptx)$", line)
        if m and cur is not None:
            out[cur].append(m.group(2))
    return out


def drop_f(names):
    """cuobjdump --list-elf prints sm_120f as sm_120."""
    return {n[:-1] if n.endswith("f") else n for n in names}


def as_ptx_names(names):
    """cuobjdump names PTX sm_120f; bwdoctor says compute_120f."""
    return {n.replace("sm_", "compute_", 1) for n in names}


def test_fixtures_exist():
    assert len(REAL) >= 15 and len(HOSTILE) >= 10


@pytest.mark.parametrize("so", REAL, ids=lambda p: p.stem)
def test_arch_sets_match_cuobjdump(so):
    got = scan_file(so)
    lst = cuobjdump_listing(so)
    assert got["error"] is None
    fb, rel = got["fatbin"], got["relfatbin"]
    # cuobjdump's default listing shows .nv_fatbin only
    assert drop_f(fb["elf"]) == set(lst["--list-elf"])
    assert set(fb["ptx"]) == as_ptx_names(lst["--list-ptx"])
    # -all adds the relocatable fatbins
    assert drop_f(fb["elf"]) | drop_f(rel["elf"]) == set(lst["-all --list-elf"])
    assert set(fb["ptx"]) | set(rel["ptx"]) == as_ptx_names(lst["-all --list-ptx"])
    # one listed line per ELF/PTX entry
    assert got["entries"] == len(lst["-all --list-elf"]) + len(lst["-all --list-ptx"])


@pytest.mark.parametrize(
    "stem,elf,ptx",
    [
        ("sm80", ["sm_80"], []),
        ("sm90a", ["sm_90a"], []),
        ("sm100", ["sm_100"], []),
        ("sm120", ["sm_120"], []),
        ("sm120a", ["sm_120a"], []),
        ("sm120f", ["sm_120f"], []),
        ("sm121", ["sm_121"], []),
        ("ptx120", [], ["compute_120"]),
        ("mix", ["sm_80", "sm_90", "sm_120"], ["compute_120"]),
        ("mix_af", ["sm_90a", "sm_100f", "sm_121a"], ["compute_100f"]),
    ],
)
def test_names_keep_a_and_f_as_built(stem, elf, ptx):
    """The gencode options in tools/build_cuda_fixtures.sh, read back in order (f kept)."""
    got = scan_file(FIX / f"{stem}.so")
    assert got["fatbin"] == {"elf": elf, "ptx": ptx}
    assert got["relfatbin"] == {"elf": [], "ptx": []}


def test_rdc_ptx_lives_only_in_relfatbin():
    got = scan_file(FIX / "rdc80.so")
    assert got["fatbin"] == {"elf": ["sm_80"], "ptx": []}
    assert got["relfatbin"] == {"elf": ["sm_80"], "ptx": ["compute_80"]}
    mixed = scan_file(FIX / "rdc_mix.so")
    assert mixed["relfatbin"]["ptx"] == ["compute_120f"]
    assert "sm_120f" in mixed["fatbin"]["elf"]


@pytest.mark.parametrize(
    "stem,zstd,lz4,none",
    [
        ("mix_lz4", 0, 5, 0),  # -Xfatbin -compress-all --compress-mode=speed: everything LZ4
        ("mix_zstd", 5, 0, 0),  # --compress-mode=size: cubins too
        ("mix_plain", 0, 0, 5),  # --no-compress
        ("mix", 1, 0, 6),  # nvcc 13 default: only PTX compressed
    ],
)
def test_codec_counts(stem, zstd, lz4, none):
    scan = read_fatbins(FIX / f"{stem}.so")
    assert scan.codec_counts() == {"zstd": zstd, "lz4": lz4, "none": none}
    assert scan_file(FIX / f"{stem}.so")["compressed"] == {"zstd": zstd, "lz4": lz4}


def test_cubin_abi_and_ptx_isa_from_entry_header():
    scan = read_fatbins(FIX / "mix.so")
    elf = [e for e in scan.entries if e.kind == "elf"]
    ptx = [e for e in scan.entries if e.kind == "ptx"]
    assert elf and {e.cubin_abi for e in elf} == {2}  # ptxas 13 writes ABI v2 for every SM
    assert ptx and all(e.cubin_abi is None and e.version[0] >= 8 for e in ptx)


def test_one_step_build_has_a_dlink_container_and_ptx_only_an_empty_one():
    assert read_fatbins(FIX / "sm120.so").containers == {".nv_fatbin": 2}
    ptx_only = read_fatbins(FIX / "ptx120.so")
    assert ptx_only.containers == {".nv_fatbin": 2} and len(ptx_only.entries) == 1


def _section_bytes(so: Path, name: str) -> bytes:
    import io

    from elftools.elf.elffile import ELFFile

    data = so.read_bytes()
    sec = ELFFile(io.BytesIO(data)).get_section_by_name(name)
    return data[sec["sh_offset"] : sec["sh_offset"] + sec["sh_size"]]


def test_zero_padding_between_containers_is_skipped():
    raw = _section_bytes(FIX / "two_tu.so", ".nv_fatbin")
    first = 16 + int.from_bytes(raw[8:16], "little")
    padded = raw[:first] + b"\0" * 16 + raw[first:] + b"\0" * 8
    plain, pad = [], []
    assert walk_section(raw, ".nv_fatbin", 0, len(raw), plain) == 3
    assert walk_section(padded, ".nv_fatbin", 0, len(padded), pad) == 3
    assert [(e.name, e.codec) for e in pad] == [(e.name, e.codec) for e in plain]


def test_garbage_after_last_container_is_an_error():
    raw = _section_bytes(FIX / "sm120.so", ".nv_fatbin") + b"\x01" * 8
    with pytest.raises(FatbinFormatError, match="stray bytes"):
        walk_section(raw, ".nv_fatbin", 0, len(raw), [])


EXPECTED_HOSTILE = {
    "zero_length": "empty file",
    "not_elf": "not an ELF file",
    "truncated_header": "truncated ELF header",
    "truncated_half": "truncated ELF",
    "elf32": "32-bit ELF",
    "big_endian": "big-endian ELF",
    "section_past_end": "runs past the end of the file",
    "container_past_end": "past the end of the section",
    "container_terabyte": "past the end of the section",
    "container_max": "past the end of the section",
    "container_header_zero": "0-byte header",
    "entry_header_zero": "0-byte header",
    "entry_payload_terabyte": "past the end of its container",
    "bad_magic_second": "bad container magic 0x466243b1",
}


@pytest.mark.parametrize("so", HOSTILE, ids=lambda p: p.stem)
def test_hostile_files_give_an_error_string(so):
    got = scan_file(so)
    assert got["error"] and EXPECTED_HOSTILE[so.stem] in got["error"]
    assert set(got) == {"path", "distribution", "fatbin", "relfatbin", "entries", "compressed", "error"}


def test_entries_before_a_bad_container_are_kept():
    got = scan_file(FIX / "hostile" / "bad_magic_second.so")
    assert got["fatbin"]["elf"] == ["sm_90", "sm_120"]


def test_missing_directory_and_unreadable_paths(tmp_path):
    assert scan_file(tmp_path / "nope.so")["error"] == "file not found"
    assert scan_file(tmp_path)["error"] == "is a directory"


def test_elf_without_fatbin_has_no_archs_and_no_error():
    plain = Path(shutil.which("ls") or "/bin/ls").resolve()
    got = scan_file(plain)
    assert got["error"] is None and got["entries"] == 0
    assert got["fatbin"] == {"elf": [], "ptx": []}


def test_random_corruption_never_raises(tmp_path):
    """Flip bytes inside the fatbin and the headers of a real fixture; the reader must answer."""
    src = (FIX / "mix_af.so").read_bytes()
    fatbin_at = src.find(_section_bytes(FIX / "mix_af.so", ".nv_fatbin"))
    assert fatbin_at > 0
    rng = random.Random(1234)
    target = tmp_path / "fuzz.so"
    for _ in range(300):
        data = bytearray(src)
        for _ in range(rng.randint(1, 8)):
            where = rng.choice(
                [
                    rng.randrange(0, 64),
                    rng.randrange(fatbin_at, fatbin_at + 600),
                    rng.randrange(len(src) - 2048, len(src)),
                ]
            )
            data[where] = rng.randrange(256)
        target.write_bytes(bytes(data))
        got = scan_file(target)
        assert got["error"] is None or isinstance(got["error"], str)
        assert isinstance(got["entries"], int)
