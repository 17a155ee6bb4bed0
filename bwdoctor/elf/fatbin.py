"""Read the GPU code list of a host ELF file: the fatbin containers in `.nv_fatbin` and `__nv_relfatbin`.

Only headers are read. Section headers come from pyelftools; the fatbin containers and their
entry headers are walked with struct on an mmap of the file, so a 500 MB library costs a few page
faults, and nothing is decompressed: the arch, the `a`/`f` variant and the codec are all in the
clear entry header.

Layout (little-endian; measured on nvcc 13.0 fixtures and real wheels, and in CUDA's
fatbinary_section.h / the older fatbinary.h):

    container header, 16 bytes: u32 magic 0xBA55ED50, u16 version, u16 header_size, u64 fat_size
    entry header, >= 64 bytes:  u16 kind (1 PTX, 2 ELF, 8 LTO-IR), u16 version, u32 header_size,
                                u64 payload_size, u32 compressed_size, u32 ext_offset,
                                u16 minor, u16 major, u32 arch, u32 name_offset, u32 name_len,
                                u64 flags, u64 reserved, u64 uncompressed_size

Every length read from the file is checked against the section end before it is used, and every
step moves forward by at least a header, so lying headers end the walk with an error string
instead of an exception, a loop or a large allocation.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import Any, Dict, List, Optional, Tuple

from .. import fileio
from ..records import dataclass, field

FATBIN_SECTIONS = (".nv_fatbin", "__nv_relfatbin")
SECTION_KEYS = {".nv_fatbin": "fatbin", "__nv_relfatbin": "relfatbin"}

CONTAINER_MAGIC = 0xBA55ED50
CONTAINER = struct.Struct("<IHHQ")
ENTRY = struct.Struct("<HHIQIIHHIIIQQQ")
assert CONTAINER.size == 16 and ENTRY.size == 64

KIND_PTX, KIND_ELF, KIND_OLD_CUBIN, KIND_LTO = 1, 2, 4, 8
KIND_NAMES = {KIND_PTX: "ptx", KIND_ELF: "elf", KIND_OLD_CUBIN: "old-cubin", KIND_LTO: "lto"}

FLAG_LZ4 = 0x2000
FLAG_ZSTD = 0x8000
FLAG_ARCH_SPECIFIC = 0x100000  # sm_XYa / compute_XYa
FLAG_FAMILY_SPECIFIC = 0x200000  # sm_XYf / compute_XYf

ELF_MAGIC = b"\x7fELF"
# Entry minor 7/8 of an ELF entry is the cubin ABI (EI_ABIVERSION 7 = ABI v1, 8 = ABI v2).
CUBIN_ABI = {7: 1, 8: 2}
# No real container holds more than a few thousand entries; this bounds work on crafted input.
MAX_ENTRIES_PER_SECTION = 1_000_000


@dataclass(frozen=True)
class FatbinEntry:
    """One entry of a fatbin container: its kind, target arch, variant and codec."""

    section: str  # ".nv_fatbin" or "__nv_relfatbin"
    kind: str  # "elf", "ptx", "lto", "old-cubin" or "kind-N"
    arch: int  # SM number, major*10 + minor (120 for sm_120)
    variant: str  # "", "a" (arch-specific) or "f" (family-specific)
    codec: str  # "none", "lz4" or "zstd"
    version: Tuple[int, int]  # (major, minor): ELF 1.7/1.8, PTX the PTX ISA version
    offset: int  # file offset of the entry header
    container: int = 0  # index of its container (one compiled unit) within the section
    header_size: int = 64  # entry header bytes; the payload follows it
    payload_size: int = 0  # payload bytes in the file (compressed when codec is not "none")
    compressed_size: int = 0  # compressed bytes at the start of the payload (the rest is padding)
    raw_size: int = 0  # payload bytes once decompressed (0 when the header does not say)

    @property
    def unit(self) -> Tuple[str, int]:
        """The compiled unit (translation unit or device-link output) the entry belongs to."""
        return (self.section, self.container)

    @property
    def name(self) -> str:
        """The target as nvcc spells it: sm_120a for a cubin, compute_120f for PTX."""
        prefix = "compute" if self.kind == "ptx" else "sm"
        return f"{prefix}_{self.arch}{self.variant}"

    @property
    def cubin_abi(self) -> Optional[int]:
        """The cubin ELF ABI (1 or 2) for ELF entries, when the header says it; else None."""
        if self.kind != "elf" or self.version[0] != 1:
            return None
        return CUBIN_ABI.get(self.version[1])


@dataclass
class FatbinScan:
    """Everything read from one file's fatbin sections; `error` says why reading stopped early."""

    path: str
    entries: List[FatbinEntry] = field(default_factory=list)
    containers: Dict[str, int] = field(default_factory=dict)  # section name -> container count
    sections: List[str] = field(default_factory=list)  # fatbin sections present
    error: Optional[str] = None

    def archs(self, section: str, kind: str) -> List[str]:
        """Sorted distinct target names of one kind ("elf"/"ptx") in one section."""
        return sorted({e.name for e in self.entries if e.section == section and e.kind == kind}, key=arch_sort_key)

    def codec_counts(self) -> Dict[str, int]:
        """How many ELF and PTX entries use each codec (zstd, lz4, none)."""
        out = {"zstd": 0, "lz4": 0, "none": 0}
        for e in self.entries:
            if e.kind in ("elf", "ptx"):
                out[e.codec] += 1
        return out

    def units(self) -> List[List[FatbinEntry]]:
        """The entries grouped by fatbin container: one list per compiled unit, in file order."""
        groups: Dict[Tuple[str, int], List[FatbinEntry]] = {}
        for e in self.entries:
            groups.setdefault(e.unit, []).append(e)
        return list(groups.values())

    def loadable_entries(self) -> List[FatbinEntry]:
        """ELF and PTX entries: the ones a driver can load (LTO-IR never runs as is)."""
        return [e for e in self.entries if e.kind in ("elf", "ptx")]

    def to_json(self) -> dict:
        """The `files[]` item of the bwdoctor.cubins/1 contract (distribution left null)."""
        codecs = self.codec_counts()
        out: Dict[str, Any] = {"path": self.path, "distribution": None}
        for section, key in SECTION_KEYS.items():
            out[key] = {"elf": self.archs(section, "elf"), "ptx": self.archs(section, "ptx")}
        if CUBIN_SECTION in self.sections:  # a stand-alone cubin: its code is what the driver loads
            out["fatbin"] = {"elf": self.archs(CUBIN_SECTION, "elf"), "ptx": []}
        out["entries"] = len(self.loadable_entries())
        out["compressed"] = {"zstd": codecs["zstd"], "lz4": codecs["lz4"]}
        out["error"] = self.error
        return out


def arch_sort_key(name: str):
    """Sort sm_80 < sm_90 < sm_90a < sm_100 < sm_100f (numerically, then variant)."""
    prefix, _, rest = name.partition("_")
    digits = "".join(ch for ch in rest if ch.isdigit())
    return (prefix, int(digits) if digits else -1, rest[len(digits) :])


class FatbinFormatError(ValueError):
    """The fatbin headers are inconsistent; the message is the per-file error shown to people."""


def scan_file(path) -> dict:
    """The `files[]` item of bwdoctor.cubins/1 for one file; errors are reported, never raised."""
    return read_fatbins(path).to_json()


def read_fatbins(path) -> FatbinScan:
    """Every fatbin entry header of an ELF file, or a FatbinScan whose `error` says what is wrong."""
    path = os.fspath(path)
    scan = FatbinScan(path=path)
    try:
        with fileio.open_file(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(64)
            problem = elf_ident_problem(head, size)
            if problem:
                scan.error = problem
                return scan
            cubin = cubin_target(head)
            if cubin is not None:  # a stand-alone cubin (flashinfer-cubin's .cubin files): GPU code itself
                scan.entries.append(FatbinEntry(CUBIN_SECTION, "elf", cubin[0], cubin[1], "none", (0, 0), 0))
                scan.sections.append(CUBIN_SECTION)
                return scan
            fh.seek(0)
            try:
                ranges = _fatbin_section_ranges(fh, size)
            except FatbinFormatError as stop:
                scan.error = str(stop)
                return scan
            if not ranges:
                return scan
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                for name, start, length in ranges:
                    scan.sections.append(name)
                    try:
                        scan.containers[name] = walk_section(mm, name, start, length, scan.entries)
                    except FatbinFormatError as stop:
                        scan.error = f"{name}: {stop}"
                        break
    except FileNotFoundError:
        scan.error = "file not found"
    except IsADirectoryError:
        scan.error = "is a directory"
    except PermissionError:
        scan.error = "permission denied"
    except fileio.NotRegularFile as exc:
        scan.error = "is a directory" if fileio.is_dir_error(exc) else fileio.describe(exc)
    except (OSError, ValueError, MemoryError) as exc:
        scan.error = f"cannot read: {exc}"
    return scan


# A stand-alone cubin is an ELF of e_machine EM_CUDA (190) whose e_flags name its SM (LLVM's ELF.h EF_CUDA_*):
#   EI_ABIVERSION < 8 (ABI v1): SM in bits 0..7, the `a` variant is EF_CUDA_ACCELERATORS_V1 (0x800);
#   EI_ABIVERSION >= 8 (ABI v2, Blackwell and CUDA 13): SM in bits 8..15, `a` is EF_CUDA_ACCELERATORS (0x8).
# In ABI v2, bit 1 (0x2) is set on the cubins flashinfer-cubin 0.6.9 names *_sm100f.cubin and clear on its
# *Sm100a*/*Sm103a* ones (e_flags 0x06006402 / 0x0f00640c / 0x0f00670c): read as the family variant `f`.
EM_CUDA = 190
CUBIN_SECTION = "cubin"  # the section name given to a stand-alone cubin's one entry
CUBIN_EXTENSIONS = (".cubin",)


def cubin_target(head: bytes) -> Optional[Tuple[int, str]]:
    """(SM number, variant) from the 64-byte ELF header of a stand-alone cubin; None for any other file."""
    if len(head) < 64 or head[:4] != ELF_MAGIC or head[4] != 2 or head[5] != 1:
        return None
    (machine,) = struct.unpack_from("<H", head, 18)
    if machine != EM_CUDA:
        return None
    (flags,) = struct.unpack_from("<I", head, 48)
    if head[8] >= 8:
        sm, variant = (flags >> 8) & 0xFF, "a" if flags & 0x8 else ("f" if flags & 0x2 else "")
    else:
        sm, variant = flags & 0xFF, "a" if flags & 0x800 else ""
    return (sm, variant) if 10 <= sm <= 255 else None


def elf_ident_problem(head: bytes, size: int) -> Optional[str]:
    """Why the first bytes are not a 64-bit little-endian ELF that can hold fatbins, or None."""
    if size == 0:
        return "empty file (0 bytes)"
    if head[:4] != ELF_MAGIC:
        return "not an ELF file"
    if len(head) < 64:
        return f"truncated ELF header ({size} bytes)"
    if head[4] == 1:
        return "32-bit ELF: CUDA fatbins are only read from 64-bit ELF files"
    if head[4] != 2:
        return f"bad ELF class {head[4]}"
    if head[5] == 2:
        return "big-endian ELF: CUDA fatbins are only read from little-endian ELF files"
    if head[5] != 1:
        return f"bad ELF data encoding {head[5]}"
    return None


SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
SHT_NOBITS = 8


def _fatbin_section_ranges(fh, size: int) -> List[Tuple[str, int, int]]:
    """(name, file offset, size) of each fatbin section, from the section headers only.

    The header table and the section-name table are read with struct (a few KB, no parsing of anything
    else): on a 1 GB libtorch_cuda.so this is ~20x quicker than building pyelftools' section objects."""
    fh.seek(0)
    head = fh.read(64)
    (shoff,) = struct.unpack_from("<Q", head, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
    if shoff == 0:
        return []  # no section headers (stripped to program headers only): nothing to find
    if shentsize != SHDR.size:
        raise FatbinFormatError(f"unreadable ELF section headers: entry size {shentsize}, expected {SHDR.size}")
    if shoff > size:
        raise FatbinFormatError(f"truncated ELF: section headers end past the end of the file ({size} bytes)")
    fh.seek(shoff)
    first = fh.read(SHDR.size)
    if len(first) < SHDR.size:
        raise FatbinFormatError(f"truncated ELF: section headers end past the end of the file ({size} bytes)")
    if shnum == 0:  # extended numbering: the count lives in section 0's sh_size
        shnum = SHDR.unpack(first)[5]
    if shstrndx == 0xFFFF:
        shstrndx = SHDR.unpack(first)[6]
    if shnum > 1_000_000 or shoff + shnum * SHDR.size > size:
        raise FatbinFormatError(f"truncated ELF: section headers end past the end of the file ({size} bytes)")
    fh.seek(shoff)
    table = fh.read(shnum * SHDR.size)
    if shstrndx >= shnum:
        raise FatbinFormatError(f"unreadable ELF section headers: name table index {shstrndx} of {shnum}")
    _, _, _, _, str_off, str_size, _, _, _, _ = SHDR.unpack_from(table, shstrndx * SHDR.size)
    if str_off > size or str_size > size - str_off or str_size > 64 << 20:
        raise FatbinFormatError("unreadable ELF section headers: section-name table past the end of the file")
    fh.seek(str_off)
    names = fh.read(str_size)
    found = []
    for i in range(shnum):
        name_idx, sh_type, _, _, start, length, _, _, _, _ = SHDR.unpack_from(table, i * SHDR.size)
        end = names.find(b"\0", name_idx)
        name = names[name_idx : end if end >= 0 else len(names)].decode("ascii", "replace")
        if name not in FATBIN_SECTIONS:
            continue
        if sh_type == SHT_NOBITS:
            raise FatbinFormatError(f"section {name} has no bytes in the file (SHT_NOBITS)")
        if start > size or length > size - start:
            raise FatbinFormatError(
                f"truncated ELF: section {name} ({length} bytes at offset {start}) "
                f"runs past the end of the file ({size} bytes)"
            )
        found.append((name, start, length))
    return sorted(found, key=lambda f: FATBIN_SECTIONS.index(f[0]))


def walk_section(buf, name: str, start: int, length: int, out: List[FatbinEntry]) -> int:
    """Append the entries of every container in buf[start:start+length]; return the container count.

    Raises FatbinFormatError with the reason when a header is inconsistent (entries read so far stay in out).
    """
    end = start + length
    pos = start
    containers = 0
    count = 0
    while pos + CONTAINER.size <= end:
        magic, _version, header_size, fat_size = CONTAINER.unpack_from(buf, pos)
        if magic != CONTAINER_MAGIC:
            # The linker may pad between containers with zero bytes when a section's size is
            # not a multiple of its 8-byte alignment; skip those words.
            if buf[pos : pos + 8] == b"\0" * 8:
                pos += 8
                continue
            raise FatbinFormatError(f"bad container magic 0x{magic:08x} at file offset {pos}")
        if header_size < CONTAINER.size:
            raise FatbinFormatError(f"container at file offset {pos} claims a {header_size}-byte header")
        cend = pos + header_size + fat_size
        if cend > end:
            raise FatbinFormatError(
                f"container at file offset {pos} claims {fat_size} bytes, "
                f"{cend - end} bytes past the end of the section"
            )
        p = pos + header_size
        while p < cend:
            if p + ENTRY.size > cend:
                raise FatbinFormatError(f"truncated entry header at file offset {p}")
            (kind, _ever, ehs, psize, csize, _ext, minor, major, arch, _noff, _nlen, flags, _res, usize) = (
                ENTRY.unpack_from(buf, p)
            )
            if ehs < ENTRY.size:
                raise FatbinFormatError(f"entry at file offset {p} claims a {ehs}-byte header")
            if p + ehs + psize > cend:
                raise FatbinFormatError(
                    f"entry at file offset {p} claims {ehs + psize} bytes, "
                    f"{p + ehs + psize - cend} bytes past the end of its container"
                )
            count += 1
            if count > MAX_ENTRIES_PER_SECTION:
                raise FatbinFormatError(f"more than {MAX_ENTRIES_PER_SECTION} entries; giving up")
            out.append(
                FatbinEntry(
                    section=name,
                    kind=KIND_NAMES.get(kind, f"kind-{kind}"),
                    arch=arch,
                    variant=_variant(flags),
                    codec="zstd" if flags & FLAG_ZSTD else "lz4" if flags & FLAG_LZ4 else "none",
                    version=(major, minor),
                    offset=p,
                    container=containers,
                    header_size=ehs,
                    payload_size=psize,
                    compressed_size=csize,
                    raw_size=usize,
                )
            )
            p += ehs + psize
        containers += 1
        pos = cend
    if pos < end and buf[pos:end].strip(b"\0"):
        raise FatbinFormatError(f"{end - pos} stray bytes after the last container at file offset {pos}")
    return containers


def _variant(flags: int) -> str:
    """The target suffix from the entry flags: "a", "f" or ""."""
    # Both bits were never seen together; "a" is the narrower promise, so it wins.
    if flags & FLAG_ARCH_SPECIFIC:
        return "a"
    if flags & FLAG_FAMILY_SPECIFIC:
        return "f"
    return ""


def trim(item: dict) -> dict:
    """A scan_file item reduced to what checks need: path, archs per section, error."""
    return {"path": item["path"], "fatbin": item["fatbin"], "relfatbin": item["relfatbin"], "error": item["error"]}


def has_gpu_code(item: dict) -> bool:
    """True when a scanned file holds at least one cubin or PTX entry."""
    return any(item[s][k] for s in ("fatbin", "relfatbin") for k in ("elf", "ptx"))
