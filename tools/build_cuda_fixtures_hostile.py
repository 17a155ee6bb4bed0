#!/usr/bin/env python3
"""Derive hostile fixtures (truncated, empty, not ELF, lying headers) from the real CUDA fixtures.

    python3 tools/build_cuda_fixtures_hostile.py tests/fixtures/cuda

Each output is a copy of a real nvcc-built .so with a few bytes changed, written to
DIR/hostile/NAME.so; DIR/hostile/README.txt says what each one is and what a reader should say.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from elftools.elf.elffile import ELFFile

TB = 1 << 40


def section(data: bytes, name: str):
    """(header offset, file offset, size) of a named section in an ELF image."""
    import io

    elf = ELFFile(io.BytesIO(data))
    for i, sec in enumerate(elf.iter_sections()):
        if sec.name == name:
            hdr = elf.header["e_shoff"] + i * elf.header["e_shentsize"]
            return hdr, sec["sh_offset"], sec["sh_size"]
    raise SystemExit(f"no section {name}")


def patch(data: bytes, offset: int, fmt: str, *values) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, *values)
    return bytes(buf)


def main(out_dir: str) -> None:
    base = Path(out_dir)
    real = (base / "sm120.so").read_bytes()
    two = (base / "two_tu.so").read_bytes()
    hdr, fb_off, fb_size = section(real, ".nv_fatbin")
    _, two_off, two_size = section(two, ".nv_fatbin")
    # second container of two_tu.so: right after the first one
    first_len = 16 + struct.unpack_from("<Q", two, two_off + 8)[0]
    cases = {
        "zero_length": (b"", "empty file"),
        "not_elf": (b"#!/bin/sh\necho this is a shell script, not a shared object\n" * 4, "not an ELF file"),
        "truncated_header": (real[:40], "ELF header cut at 40 bytes"),
        "truncated_half": (real[: len(real) // 2], "first half of sm120.so: section headers are gone"),
        "elf32": (patch(real, 4, "<B", 1), "EI_CLASS set to 1 (32-bit)"),
        "big_endian": (patch(real, 5, "<B", 2), "EI_DATA set to 2 (big-endian)"),
        "section_past_end": (patch(real, hdr + 0x20, "<Q", TB), ".nv_fatbin section header claims 1 TiB"),
        "container_past_end": (
            patch(real, fb_off + 8, "<Q", fb_size * 4),
            "first container's fat_size points past the section end",
        ),
        "container_terabyte": (patch(real, fb_off + 8, "<Q", TB), "first container claims 1 TiB"),
        "container_max": (patch(real, fb_off + 8, "<Q", (1 << 64) - 1), "fat_size = 2**64-1"),
        "container_header_zero": (
            patch(real, fb_off + 6, "<H", 0),
            "container header_size 0 (a naive walker loops in place)",
        ),
        "entry_header_zero": (
            patch(real, fb_off + 16 + 4, "<I", 0),
            "entry header_size 0 (a naive walker loops in place)",
        ),
        "entry_payload_terabyte": (patch(real, fb_off + 16 + 8, "<Q", TB), "entry payload_size 1 TiB"),
        "bad_magic_second": (
            patch(two, two_off + first_len, "<I", 0x466243B1),
            "second container starts with the wrapper magic, not 0xBA55ED50",
        ),
    }
    out = base / "hostile"
    out.mkdir(exist_ok=True)
    lines = ["Hostile fixtures derived from the real ones by tools/build_cuda_fixtures_hostile.py", ""]
    for name, (data, what) in cases.items():
        (out / f"{name}.so").write_bytes(data)
        lines.append(f"{name}.so: {what}")
    (out / "README.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/cuda")
