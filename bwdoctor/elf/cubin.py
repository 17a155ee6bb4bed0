"""The kernels inside one fatbin entry: the entry's payload (decompressed when it must be) and the names of its
entry functions, read from a cubin's symbol table or a PTX module's `.entry` lines.

Only done on request (`bwdoctor kernels --names`): it costs a decompression per unit where the header walk costs
nothing. Every size comes from the file and is checked against a bound before anything is allocated.
zstd needs the `zstandard` module (or Python 3.14's `compression.zstd`), LZ4 the `lz4` module: without them a
compressed entry's names are unavailable and the reason says which module to install.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Dict, List

from .fatbin import SECTION_KEYS, FatbinEntry, arch_sort_key, read_fatbins

# One decompressed cubin larger than this is refused (the largest seen in vLLM/torch wheels is ~65 MB).
MAX_RAW = 256 << 20
STT_FUNC = 2
STO_CUDA_ENTRY = 0x10  # st_other bit nvcc sets on __global__ functions
SHT_SYMTAB = 2
SHDR = struct.Struct("<IIQQQQIIQQ")
SYM = struct.Struct("<IBBHQQ")
PTX_ENTRY = re.compile(rb"\.entry\s+([A-Za-z_$][\w$.]*)")


class CubinError(ValueError):
    """The entry's kernels cannot be read; the message says why."""


def _zstd() -> Any:
    try:
        import zstandard

        return lambda data, size: zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    except ImportError:
        pass
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14

        return lambda data, size: zstd.decompress(data)
    except ImportError:
        raise CubinError("zstd-compressed entry: install the `zstandard` module (pip install zstandard)") from None


def _lz4() -> Any:
    try:
        import lz4.block  # type: ignore[import-untyped]
    except ImportError:
        raise CubinError("LZ4-compressed entry: install the `lz4` module (pip install lz4)") from None
    return lambda data, size: lz4.block.decompress(data, uncompressed_size=size)


def payload(buf: Any, entry: FatbinEntry) -> bytes:
    """The entry's bytes as the driver sees them (decompressed), from buf (the file's mmap)."""
    start = entry.offset + entry.header_size
    if entry.codec == "none":
        if entry.payload_size > MAX_RAW:
            raise CubinError(f"entry of {entry.payload_size} bytes is over the {MAX_RAW >> 20} MiB bound")
        return bytes(buf[start : start + entry.payload_size])
    if not 0 < entry.raw_size <= MAX_RAW:
        raise CubinError(f"entry claims {entry.raw_size} bytes decompressed (bound {MAX_RAW >> 20} MiB)")
    size = entry.compressed_size if 0 < entry.compressed_size <= entry.payload_size else entry.payload_size
    data = bytes(buf[start : start + size])
    decompress = _zstd() if entry.codec == "zstd" else _lz4()
    try:
        out = decompress(data, entry.raw_size)
    except Exception as exc:  # each codec raises its own error type
        raise CubinError(f"{entry.codec} payload does not decompress: {exc}") from None
    if len(out) > MAX_RAW:
        raise CubinError(f"entry decompresses past the {MAX_RAW >> 20} MiB bound")
    return bytes(out)


def kernel_names(data: bytes, kind: str) -> List[str]:
    """The (mangled) names of the kernels in a cubin ("elf") or PTX module ("ptx"), in file order."""
    if kind == "ptx":
        return [m.group(1).decode("ascii", "replace") for m in PTX_ENTRY.finditer(data)]
    return _cubin_entries(data)


def _cubin_entries(data: bytes) -> List[str]:
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise CubinError("not a 64-bit little-endian cubin")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    if shentsize != SHDR.size or shoff + shnum * SHDR.size > len(data):
        raise CubinError("cubin section headers run past its end")
    sections = [SHDR.unpack_from(data, shoff + i * SHDR.size) for i in range(shnum)]
    names: List[str] = []
    for _n, sh_type, _f, _a, off, size, link, _i, _al, entsize in sections:
        if sh_type != SHT_SYMTAB:
            continue
        if link >= shnum or off + size > len(data) or entsize not in (0, SYM.size):
            raise CubinError("cubin symbol table runs past its end")
        str_off, str_size = sections[link][4], sections[link][5]
        if str_off + str_size > len(data):
            raise CubinError("cubin string table runs past its end")
        strtab = data[str_off : str_off + str_size]
        for pos in range(off, off + size - SYM.size + 1, SYM.size):
            st_name, st_info, st_other, _shndx, _value, _size = SYM.unpack_from(data, pos)
            if st_info & 0xF == STT_FUNC and st_other & STO_CUDA_ENTRY:
                end = strtab.find(b"\0", st_name)
                names.append(strtab[st_name : end if end >= 0 else len(strtab)].decode("ascii", "replace"))
    return names


def read_units(path: str, names: bool = False) -> Dict[str, Any]:
    """The fatbin units of one ELF file: {"path", "error", "units": [{"section", "index", "elf", "ptx",
    "kernels"?}]}. With names, each entry's kernels are read (decompressed as needed) and listed per target:
    "kernels": {"sm_120": [mangled names], ...}; an entry that cannot be read adds to the unit's "errors"."""
    import mmap

    scan = read_fatbins(path)
    out: Dict[str, Any] = {"path": scan.path, "error": scan.error, "units": []}
    if not scan.entries:
        return out
    with open(scan.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for group in scan.units():
            first = group[0]
            unit: Dict[str, Any] = {
                "section": SECTION_KEYS[first.section],
                "index": first.container,
                "elf": sorted({e.name for e in group if e.kind == "elf"}, key=arch_sort_key),
                "ptx": sorted({e.name for e in group if e.kind == "ptx"}, key=arch_sort_key),
            }
            if names:
                kernels: Dict[str, List[str]] = {}
                errors: List[str] = []
                for e in group:
                    if e.kind not in ("elf", "ptx"):
                        continue
                    try:
                        kernels.setdefault(e.name, []).extend(kernel_names(payload(mm, e), e.kind))
                    except CubinError as exc:
                        errors.append(f"{e.name}: {exc}")
                unit["kernels"] = kernels
                if errors:
                    unit["errors"] = errors
            out["units"].append(unit)
    return out
