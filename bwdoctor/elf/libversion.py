"""The version a native library says it is, read from its own bytes (never from the package that installed it).

NCCL embeds its banner in .rodata: "NCCL version 2.27.5+cuda12.9" (checked on the PyPI wheels nvidia-nccl-cu12
2.27.5 and nvidia-nccl-cu13 2.32.3: the string sits in .rodata, 170 KB / 880 KB of a 430 MB / 344 MB file). Only
the section headers and .rodata are read; a file without section headers is searched in its first RODATA_LIMIT
bytes. Only a regular file is opened (a FIFO or device never is)."""

from __future__ import annotations

import os
import stat
import struct
from typing import Optional

from .. import lazyre

SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
RODATA_LIMIT = 32 * 1024 * 1024  # .rodata of the largest CUDA libraries is a few MB
MAX_SECTIONS = 65536
NCCL_BANNER = lazyre.compile(rb"NCCL version (\d+\.\d+\.\d+)(?:\+cuda(\d+\.\d+))?")


def _rodata_range(fh, size: int) -> Optional[tuple]:
    """(offset, length) of .rodata from the section headers, or None when they cannot tell."""
    head = fh.read(64)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", head, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
    if not shoff or shentsize != SHDR.size or shnum == 0 or shnum > MAX_SECTIONS or shstrndx >= shnum:
        return None
    if shoff + shnum * SHDR.size > size:
        return None
    fh.seek(shoff)
    table = fh.read(shnum * SHDR.size)
    str_off, str_size = SHDR.unpack_from(table, shstrndx * SHDR.size)[4:6]
    if str_off > size or str_size > min(size - str_off, 1 << 20):
        return None
    fh.seek(str_off)
    names = fh.read(str_size)
    for i in range(shnum):
        name_idx, sh_type, _, _, off, length, _, _, _, _ = SHDR.unpack_from(table, i * SHDR.size)
        if names[name_idx : name_idx + 8] == b".rodata\0" and sh_type != 8 and off <= size and length <= size - off:
            return off, length
    return None


def read_rodata(host_path: str, limit: int = RODATA_LIMIT) -> bytes:
    """At most `limit` bytes of .rodata of an ELF file (the file's first bytes when it has no section headers).
    Raises OSError (also for a file that is not regular)."""
    fd = os.open(host_path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(22, "not a regular file", host_path)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            where = _rodata_range(fh, st.st_size)
            off, length = where if where else (0, limit)
            fh.seek(off)
            return fh.read(min(length, limit))
    finally:
        os.close(fd)


def nccl_version(host_path: str) -> Optional[dict]:
    """{"version": "2.27.5", "cuda": "12.9"} from a libnccl.so's banner; None when it has none.
    Raises OSError when the file cannot be read."""
    m = NCCL_BANNER.search(read_rodata(host_path))
    if not m:
        return None
    return {"version": m.group(1).decode(), "cuda": m.group(2).decode() if m.group(2) else None}
