"""The x86-64 ISA level compiled libraries declare they need (GNU_PROPERTY_X86_ISA_1_NEEDED notes)."""

from __future__ import annotations

import os

from .. import fileio
from ..domain.isa import level_from_bits
from ..model import Unavailable
from ..registry import probe

CANDIDATES = {
    "torch": ("torch/lib/libtorch_cpu.so",),
    "vllm": ("vllm/_C*.so", "vllm/cumem_allocator*.so"),
    "flash-attn": ("flash_attn_2_cuda*.so",),
    "xformers": ("xformers/_C*.so",),
}


PT_NOTE, PT_GNU_PROPERTY = 4, 0x6474E553
NT_GNU_PROPERTY_TYPE_0 = 5
# binutils: GNU_PROPERTY_X86_ISA_1_NEEDED is 0xc0008002 (0xc0000001 in binutils 2.29-2.31);
# 0xc0000002 is GNU_PROPERTY_X86_FEATURE_1_AND (IBT/SHSTK), not an ISA level
ISA_NEEDED = (0xC0008002, 0xC0000001)


def isa_needed(path: str):
    """The highest x86-64 level a library's GNU property note says it needs, or None when it declares none.

    Reads the ELF and program headers and the PT_GNU_PROPERTY / PT_NOTE segments only."""
    import struct

    try:
        with fileio.open_file(path) as fh:
            head = fh.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            (machine,) = struct.unpack_from("<H", head, 18)
            if machine != 62:  # EM_X86_64
                return None
            (phoff,) = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            if phentsize != 56 or phnum > 512:
                return None
            fh.seek(phoff)
            table = fh.read(56 * phnum)
            notes = []
            for i in range(phnum):
                ptype, _, off, _, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", table, 56 * i)
                if ptype in (PT_NOTE, PT_GNU_PROPERTY) and 0 < filesz <= 65536:
                    notes.append((ptype, off, filesz))
            for _ptype, off, filesz in sorted(notes, key=lambda n: n[0] != PT_GNU_PROPERTY):
                fh.seek(off)
                level = _isa_from_notes(fh.read(filesz))
                if level:
                    return level
    except (OSError, struct.error, ValueError):
        return None
    return None


def _isa_from_notes(buf: bytes):
    import struct

    pos = 0
    while pos + 12 <= len(buf):
        namesz, descsz, ntype = struct.unpack_from("<III", buf, pos)
        name_end = pos + 12 + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 7) & ~7)
        if desc_end > len(buf) + 8:
            return None
        if ntype == NT_GNU_PROPERTY_TYPE_0 and buf[pos + 12 : pos + 12 + namesz].rstrip(b"\0") == b"GNU":
            p = name_end
            while p + 8 <= name_end + descsz:
                pr_type, pr_datasz = struct.unpack_from("<II", buf, p)
                if pr_type in ISA_NEEDED and pr_datasz >= 4:
                    (bits,) = struct.unpack_from("<I", buf, p + 8)
                    return level_from_bits(bits)
                p += 8 + ((pr_datasz + 7) & ~7)
        pos = desc_end
    return None


@probe("cpu_isa_needed", budget=3.0)
def cpu_isa_needed(ctx, distributions):
    """Libraries of torch, vLLM, flash-attn and xformers that declare an x86-64 ISA level above baseline."""
    if isinstance(distributions, Unavailable):
        return distributions
    out = []
    for d in distributions:
        for pattern in CANDIDATES.get(d["name"], ()):
            for path in ctx.glob(os.path.join(d["location"], pattern)):  # machine paths, read under --root
                try:
                    level = isa_needed(str(ctx.resolve(path))) if ctx.is_file(path) else None
                except OSError:
                    continue
                if level and level != "x86-64":
                    out.append({"distribution": d["name"], "path": path, "isa": level})
    return out
