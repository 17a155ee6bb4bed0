"""Read what the dynamic loader reads from an ELF shared object: the dynamic section, dynamic symbols
(looked up through the GNU or SysV hash table, as ld.so does), and symbol versions.

Only 64-bit little-endian objects are read (x86-64, aarch64 wheels); anything else is reported as an
error string. Files are mmap'ed and only the pages touched are read.
"""

from __future__ import annotations

import mmap
import os
import struct
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

from .. import fileio

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
DYN = struct.Struct("<qQ")
SYM = struct.Struct("<IBBHQQ")
PT_LOAD, PT_DYNAMIC = 1, 2
DT = {
    "NEEDED": 1,
    "HASH": 4,
    "STRTAB": 5,
    "SYMTAB": 6,
    "STRSZ": 10,
    "SONAME": 14,
    "RPATH": 15,
    "RUNPATH": 29,
    "FLAGS_1": 0x6FFFFFFB,
    "GNU_HASH": 0x6FFFFEF5,
    "VERSYM": 0x6FFFFFF0,
    "VERDEF": 0x6FFFFFFC,
    "VERDEFNUM": 0x6FFFFFFD,
    "VERNEED": 0x6FFFFFFE,
    "VERNEEDNUM": 0x6FFFFFFF,
}
STB_WEAK, STB_GNU_UNIQUE = 2, 10
DF_1_NODEFLIB = 0x800
MAX_DYN = 100_000


def _file_key(st: os.stat_result) -> Optional[tuple]:
    from ..cache import file_key

    return file_key(st)


class ElfError(Exception):
    """The file is not an ELF object the loader could use; the message says why."""


@lru_cache(maxsize=1 << 18)
def gnu_hash(name: bytes) -> int:
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


@lru_cache(maxsize=1 << 18)
def sysv_hash(name: bytes) -> int:
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


class DynElf:
    """The loader's view of one shared object."""

    # what _parse reads, kept in a cache entry so that an unchanged file is not mapped until a symbol is looked up
    SUMMARY = (
        "machine", "loads", "stroff", "strsz", "needed", "soname", "rpath", "runpath", "nodeflib", "symoff",
        "versym", "_gnu", "_sysv", "_gnu_head", "_sysv_head",
    )  # fmt: skip

    def __init__(self, path: str, store: Any = None):
        self.path = path
        self.machine_path = path  # the path as the inspected machine names it (set by the loader under --root)
        self._memo: Dict[Tuple[str, Optional[str]], bool] = {}
        self._nsyms: Optional[int] = None
        self.verneed_index: Dict[int, Tuple[str, str, bool]] = {}
        try:
            fh = fileio.open_file(path)
        except OSError as exc:
            raise ElfError(fileio.describe(exc)) from None
        try:
            self.stat = os.fstat(fh.fileno())  # the file's identity (dev, inode, size, times): a cache key
            self.size = self.stat.st_size
            key = _file_key(self.stat) if store is not None else None
            if key is not None and self._load_summary(store.get("dynelf", key)):
                return  # mapped later, on the first symbol lookup (__getattr__)
            self.mm = self._map(fh)
        finally:
            fh.close()
        self.size = len(self.mm)
        self._parse()
        if key is not None:
            store.put("dynelf", key, self._summary())

    def _map(self, fh: Any) -> mmap.mmap:
        try:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise ElfError("empty file") from None
        except OSError as exc:
            raise ElfError(f"cannot map: {exc.strerror or exc}") from None

    def __getattr__(self, name: str) -> Any:
        if name != "mm":
            raise AttributeError(name)
        # a DynElf made from a cache entry: map the file now, and only if it is still the file the entry describes
        try:
            with fileio.open_file(self.path) as fh:
                if _file_key(os.fstat(fh.fileno())) != _file_key(self.stat):
                    raise ElfError("changed while it was being read")
                self.mm = self._map(fh)
        except OSError as exc:
            raise ElfError(fileio.describe(exc)) from None
        return self.mm

    def _summary(self) -> Dict[str, Any]:
        out = {k: getattr(self, k) for k in self.SUMMARY}
        out["verdefs"] = sorted(self.verdefs.items())
        out["verneeds"] = self.verneeds
        out["verneed_index"] = sorted((k, list(v)) for k, v in self.verneed_index.items())
        return out

    def _load_summary(self, doc: Any) -> bool:
        """Set the parsed fields from a cache entry; False (nothing set) when it is not one."""
        if not isinstance(doc, dict) or any(k not in doc for k in (*self.SUMMARY, "verdefs", "verneeds")):
            return False
        try:
            verdefs = {int(k): str(v) for k, v in doc["verdefs"]}
            verneed_index = {int(k): (str(v[0]), str(v[1]), bool(v[2])) for k, v in doc["verneed_index"]}
            verneeds = {str(f): {str(n): int(i) for n, i in vs.items()} for f, vs in doc["verneeds"].items()}
            fields = {k: doc[k] for k in self.SUMMARY}
            fields["loads"] = [tuple(x) for x in fields["loads"]]
            for k in ("_gnu_head", "_sysv_head"):
                fields[k] = tuple(fields[k]) if fields[k] is not None else None
        except (TypeError, ValueError, IndexError, AttributeError):
            return False
        self.__dict__.update(fields)
        self.verdefs, self.verneeds = verdefs, verneeds
        self.verneed_index = verneed_index
        return True

    # -- low level -------------------------------------------------------------------------
    def _u(self, fmt: str, off: int):
        try:
            return struct.unpack_from(fmt, self.mm, off)
        except struct.error:
            raise ElfError(f"truncated at offset {off}") from None

    def _off(self, vaddr: int) -> int:
        for lo, hi, off in self.loads:
            if lo <= vaddr < hi:
                return vaddr - lo + off
        raise ElfError(f"address 0x{vaddr:x} is in no loadable segment")

    def _str(self, idx: int) -> str:
        if idx >= self.strsz:
            raise ElfError(f"string index {idx} past the string table")
        start = self.stroff + idx
        end = self.mm.find(b"\0", start, min(self.size, self.stroff + self.strsz))
        if end < 0:
            raise ElfError("unterminated string")
        return self.mm[start:end].decode("utf-8", "replace")

    def _parse(self) -> None:
        if self.size < EHDR.size or self.mm[:4] != b"\x7fELF":
            raise ElfError("not an ELF file")
        if self.mm[4] != 2 or self.mm[5] != 1:
            raise ElfError("not a 64-bit little-endian ELF (32-bit or big-endian objects are not read)")
        (_, etype, self.machine, _, _, phoff, _, _, _, phentsize, phnum, _, _, _) = self._u(EHDR.format, 0)
        if etype not in (2, 3):
            raise ElfError(f"ELF type {etype} is not a shared object or executable")
        if phentsize != PHDR.size or phnum > 4096 or phoff + phnum * PHDR.size > self.size:
            raise ElfError("bad program header table")
        self.loads: List[Tuple[int, int, int]] = []
        dyn = None
        for i in range(phnum):
            ptype, _, off, vaddr, _, filesz, memsz, _ = self._u(PHDR.format, phoff + i * PHDR.size)
            if ptype == PT_LOAD:
                self.loads.append((vaddr, vaddr + filesz, off))
            elif ptype == PT_DYNAMIC:
                dyn = (off, filesz)
        if dyn is None:
            raise ElfError("no dynamic section (a static object)")
        tags: Dict[int, List[int]] = {}
        off, size = dyn
        for i in range(min(size // DYN.size, MAX_DYN)):
            tag, val = self._u(DYN.format, off + i * DYN.size)
            if tag == 0:
                break
            tags.setdefault(tag, []).append(val)
        self.tags = tags
        if DT["STRTAB"] not in tags:
            raise ElfError("no dynamic string table")
        self.stroff = self._off(tags[DT["STRTAB"]][0])
        self.strsz = tags.get(DT["STRSZ"], [self.size - self.stroff])[0]
        self.needed = [self._str(v) for v in tags.get(DT["NEEDED"], [])]
        self.soname = self._str(tags[DT["SONAME"]][0]) if DT["SONAME"] in tags else None
        self.rpath = [p for v in tags.get(DT["RPATH"], []) for p in self._str(v).split(":") if p]
        self.runpath = [p for v in tags.get(DT["RUNPATH"], []) for p in self._str(v).split(":") if p]
        self.nodeflib = bool(tags.get(DT["FLAGS_1"], [0])[0] & DF_1_NODEFLIB)
        self.symoff = self._off(tags[DT["SYMTAB"]][0]) if DT["SYMTAB"] in tags else None
        self.versym = self._off(tags[DT["VERSYM"]][0]) if DT["VERSYM"] in tags else None
        self.verdefs = self._verdefs()
        self.verneeds = self._verneeds()
        self._gnu = self._off(tags[DT["GNU_HASH"]][0]) if DT["GNU_HASH"] in tags else None
        self._sysv = self._off(tags[DT["HASH"]][0]) if DT["HASH"] in tags else None
        # the hash table's header, read once: every lookup starts from it
        self._gnu_head = self._u("<IIII", self._gnu) if self._gnu is not None else None
        self._sysv_head = self._u("<II", self._sysv) if self._sysv is not None else None

    def _verdefs(self) -> Dict[int, str]:
        out: Dict[int, str] = {}
        if DT["VERDEF"] not in self.tags:
            return out
        pos = self._off(self.tags[DT["VERDEF"]][0])
        for _ in range(min(self.tags.get(DT["VERDEFNUM"], [0])[0], 10000)):
            _, flags, ndx, cnt, _, aux, nxt = self._u("<HHHHIII", pos)
            if cnt:
                (name, _) = self._u("<II", pos + aux)
                out[ndx] = self._str(name)
            if not nxt:
                break
            pos += nxt
        return out

    def _verneeds(self) -> Dict[str, Dict[str, int]]:
        """{file: {version name: versym index}} from the version-needed table."""
        out: Dict[str, Dict[str, int]] = {}
        self.verneed_index = {}
        if DT["VERNEED"] not in self.tags:
            return out
        pos = self._off(self.tags[DT["VERNEED"]][0])
        for _ in range(min(self.tags.get(DT["VERNEEDNUM"], [0])[0], 10000)):
            _, cnt, file_, aux, nxt = self._u("<HHIII", pos)
            fname = self._str(file_)
            apos = pos + aux
            for _ in range(min(cnt, 10000)):
                _, flags, other, name, anext = self._u("<IHHII", apos)
                vname = self._str(name)
                out.setdefault(fname, {})[vname] = other
                self.verneed_index[other] = (fname, vname, bool(flags & 2))
                if not anext:
                    break
                apos += anext
            if not nxt:
                break
            pos += nxt
        return out

    # -- symbols ---------------------------------------------------------------------------------
    def nsyms(self) -> int:
        """The number of dynamic symbols, from the hash table (as the loader knows it)."""
        if self._nsyms is None:
            self._nsyms = self._count_syms()
        return self._nsyms

    def _count_syms(self) -> int:
        if self._sysv_head is not None:
            return self._sysv_head[1]
        if self._gnu is None or self._gnu_head is None:
            return 0
        nb, symoff, bloom, _ = self._gnu_head
        buckets = self._gnu + 16 + bloom * 8
        if nb > self.size // 4:
            raise ElfError("GNU hash table larger than the file")
        last = max(self._u(f"<{nb}I", buckets), default=0) if nb else 0
        if last < symoff:
            return symoff
        chain = buckets + 4 * nb
        while not self._u("<I", chain + 4 * (last - symoff))[0] & 1:
            last += 1
        return last + 1

    def _sym(self, idx: int) -> Tuple[int, int, int, int, int]:
        assert self.symoff is not None  # callers test it first
        name, info, _, shndx, value, _ = self._u(SYM.format, self.symoff + idx * SYM.size)
        return name, info >> 4, info & 0xF, shndx, value

    def _version(self, idx: int) -> Tuple[int, bool]:
        if self.versym is None:
            return 1, False
        v = self._u("<H", self.versym + 2 * idx)[0]
        return v & 0x7FFF, bool(v & 0x8000)

    def undefined(self) -> List[Tuple[str, Optional[str], Optional[str], bool]]:
        """[(name, version, version's file, weak)] of the undefined dynamic symbols."""
        out: List[Tuple[str, Optional[str], Optional[str], bool]] = []
        if self.symoff is None:
            return out
        n = self.nsyms()
        if n <= 1:
            return out
        if n > self.size // SYM.size:
            raise ElfError("symbol count larger than the file")
        start = self.symoff + SYM.size
        table = self.mm[start : start + (n - 1) * SYM.size]  # one copy, unpacked in C below
        if len(table) != (n - 1) * SYM.size:
            raise ElfError(f"truncated at offset {start}")
        versyms = self._u(f"<{n}H", self.versym) if self.versym is not None else None
        for i, (name, info, _, shndx, _, _) in enumerate(SYM.iter_unpack(table), 1):
            if shndx != 0 or not name:
                continue
            ver = (versyms[i] & 0x7FFF) if versyms is not None else 1
            vinfo = self.verneed_index.get(ver) if ver > 1 else None
            out.append(
                (self._str(name), vinfo[1] if vinfo else None, vinfo[0] if vinfo else None, info >> 4 == STB_WEAK)
            )
        return out

    def defines(self, name: str, version: Optional[str] = None) -> bool:
        """Whether this object exports `name` (with `version`, or as its default/unversioned one)."""
        key = (name, version)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._defines(name, version)
        return hit

    def _defines(self, name: str, version: Optional[str]) -> bool:
        if self.symoff is None:
            return False
        bname = name.encode()
        for idx in self._candidates(bname):
            sname, bind, _, shndx, _ = self._sym(idx)
            if shndx == 0 or bind not in (1, STB_WEAK, STB_GNU_UNIQUE):
                continue
            if self._str(sname) != name:
                continue
            ver, hidden = self._version(idx)
            if ver == 0:
                continue  # local
            if version is None:
                if not hidden:
                    return True
            elif ver <= 1 or self.verdefs.get(ver) == version:
                return True
        return False

    def _candidates(self, bname: bytes):
        if self._gnu is not None and self._gnu_head is not None:
            nb, symoff, bloom_size, shift = self._gnu_head
            if nb == 0 or bloom_size == 0:
                return
            h = gnu_hash(bname)
            gnu = self._gnu
            word = self._u("<Q", gnu + 16 + 8 * ((h // 64) % bloom_size))[0]
            if not (word >> (h % 64)) & (word >> ((h >> shift) % 64)) & 1:
                return  # the Bloom filter says no: most lookups end here, as in ld.so
            buckets = gnu + 16 + bloom_size * 8
            idx = self._u("<I", buckets + 4 * (h % nb))[0]
            if idx == 0 or idx < symoff:
                return
            chain = buckets + 4 * nb
            for _ in range(1_000_000):
                h2 = self._u("<I", chain + 4 * (idx - symoff))[0]
                if (h | 1) == (h2 | 1):
                    yield idx
                if h2 & 1:
                    return
                idx += 1
        elif self._sysv is not None and self._sysv_head is not None:
            nbucket, nchain = self._sysv_head
            if nbucket == 0:
                return
            h = sysv_hash(bname)
            idx = self._u("<I", self._sysv + 8 + 4 * (h % nbucket))[0]
            seen = 0
            while idx and seen < nchain:
                yield idx
                idx = self._u("<I", self._sysv + 8 + 4 * nbucket + 4 * idx)[0]
                seen += 1

    def defines_version(self, version: str) -> bool:
        return version in self.verdefs.values()

    def close(self) -> None:
        if "mm" not in self.__dict__:
            return
        try:
            self.mm.close()
        except (BufferError, ValueError):
            pass
