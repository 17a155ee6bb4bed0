"""Parser of the dynamic loader's cache (/etc/ld.so.cache): sonames → paths, both file formats.

Formats (glibc elf/cache.c, sysdeps/generic/dl-cache.h): the old "ld.so-1.7.0" table, the new
"glibc-ld.so.cache1.1" table (glibc 2.32+ writes only this one), and the old table followed by the new
one. Never raises on bad input: `parse` returns entries plus an error string.
"""

from __future__ import annotations

import struct
from typing import Callable, List, Optional, Tuple

from .. import fileio

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
MAX_BYTES = 64 * 1024 * 1024
MAX_ENTRIES = 1_000_000

# flags & FLAG_TYPE_MASK == 3 is a libc6 ELF; the requirement bits say which ABI
FLAG_ELF_LIBC6 = 0x0003
ARCH = {
    0x0000: "",
    0x0100: "sparc64",
    0x0300: "x86-64",
    0x0400: "s390x",
    0x0500: "ppc64",
    0x0600: "mips64",
    0x0700: "mipsn32",
    0x0800: "x32",
    0x0900: "armhf",
    0x0A00: "aarch64",
    0x0B00: "armsf",
    0x0C00: "riscv64-lp64d",
    0x0D00: "riscv64-lp64",
    0x0E00: "mips-nan2008",
}


def _cstr(buf: bytes, off: int) -> Optional[str]:
    if off < 0 or off >= len(buf):
        return None
    end = buf.find(b"\0", off, off + 4096)
    if end < 0:
        return None
    return buf[off:end].decode("utf-8", "replace")


def _parse_new(buf: bytes, base: int) -> Tuple[List[dict], Optional[str]]:
    if len(buf) < base + 48:
        return [], "truncated new-format header"
    nlibs, len_strings = struct.unpack_from("<II", buf, base + 20)
    if nlibs > MAX_ENTRIES:
        return [], f"claims {nlibs} entries"
    out: List[dict] = []
    pos = base + 48
    for i in range(nlibs):
        if pos + 24 > len(buf):
            return out, f"entry {i} of {nlibs} past the end of the file"
        flags, key, value, _osv, hwcap = struct.unpack_from("<iIIIQ", buf, pos)
        pos += 24
        name, path = _cstr(buf, base + key), _cstr(buf, base + value)
        if name is None or path is None:
            return out, f"entry {i} points outside the string table"
        out.append(
            {
                "soname": name,
                "path": path,
                "flags": flags & 0xFFFF,
                "arch": ARCH.get(flags & 0xFF00, "?"),
                "hwcap": hwcap,
            }
        )
    return out, None


def parse(buf: bytes) -> Tuple[List[dict], Optional[str]]:
    """(entries [{soname, path, flags, arch, hwcap}], error or None) for the bytes of an ld.so.cache."""
    if buf.startswith(NEW_MAGIC):
        return _parse_new(buf, 0)
    if buf.startswith(OLD_MAGIC):
        if len(buf) < 16:
            return [], "truncated old-format header"
        (nlibs,) = struct.unpack_from("<I", buf, 12)
        if nlibs > MAX_ENTRIES:
            return [], f"claims {nlibs} entries"
        new_at = 16 + nlibs * 12
        new_at = (new_at + 7) & ~7  # the new table follows, 8-aligned
        if buf[new_at : new_at + len(NEW_MAGIC)] == NEW_MAGIC:
            return _parse_new(buf, new_at)
        out: List[dict] = []
        strings = 16 + nlibs * 12  # old format: offsets relative to the end of the entry table
        for i in range(nlibs):
            pos = 16 + i * 12
            if pos + 12 > len(buf):
                return out, f"entry {i} of {nlibs} past the end of the file"
            flags, key, value = struct.unpack_from("<iII", buf, pos)
            name, path = _cstr(buf, strings + key), _cstr(buf, strings + value)
            if name is None or path is None:
                return out, f"entry {i} points outside the string table"
            out.append(
                {
                    "soname": name,
                    "path": path,
                    "flags": flags & 0xFFFF,
                    "arch": ARCH.get(flags & 0xFF00, "?"),
                    "hwcap": 0,
                }
            )
        return out, None
    return [], "not an ld.so.cache (unknown magic)"


def _read_host_file(path: str, limit: int) -> bytes:
    return fileio.read_bytes(path, limit)


def read(path: str, read_bytes: Callable[[str, int], bytes] = _read_host_file) -> Tuple[List[dict], Optional[str]]:
    """Entries of the cache file at `path`, or an error naming the problem.

    read_bytes(path, limit): how the file is read (a probe passes its context's bounded, regular-file-only reader)."""
    try:
        buf = read_bytes(path, MAX_BYTES + 1)
    except FileNotFoundError:
        return [], f"{path} does not exist"
    except OSError as exc:
        return [], f"{path} could not be read: {fileio.describe(exc)}"
    if len(buf) > MAX_BYTES:
        return [], f"{path} is larger than {MAX_BYTES >> 20} MiB"
    return parse(buf)
