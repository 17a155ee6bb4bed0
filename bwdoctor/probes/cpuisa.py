"""The x86-64 ISA level compiled libraries declare they need (GNU_PROPERTY_X86_ISA_1_NEEDED notes)."""
from __future__ import annotations

import glob
import os

from ..model import Unavailable
from ..registry import probe

LEVELS = ((8, "x86-64-v4"), (4, "x86-64-v3"), (2, "x86-64-v2"), (1, "x86-64"))
# CPU flags (/proc/cpuinfo names) each level adds, from the x86-64 psABI micro-architecture levels.
LEVEL_FLAGS = {
    "x86-64-v2": ("cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"),
    "x86-64-v3": ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"),
    "x86-64-v4": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}
CANDIDATES = {"torch": ("torch/lib/libtorch_cpu.so",), "vllm": ("vllm/_C*.so", "vllm/cumem_allocator*.so"),
              "flash-attn": ("flash_attn_2_cuda*.so",), "xformers": ("xformers/_C*.so",)}


def isa_needed(path: str):
    """The highest x86-64 level a library's property note says it needs, or None when it declares none."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            if elf["e_machine"] != "EM_X86_64":
                return None
            sec = elf.get_section_by_name(".note.gnu.property")
            if sec is None:
                return None
            for note in sec.iter_notes():
                for prop in note["n_desc"] if isinstance(note["n_desc"], list) else []:
                    if prop.get("pr_type") == "GNU_PROPERTY_X86_ISA_1_NEEDED":
                        bits = int(prop.get("pr_data") or 0)
                        return next((name for bit, name in LEVELS if bits & bit), None)
    except (OSError, ELFError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


@probe("cpu_isa_needed", budget=3.0)
def cpu_isa_needed(ctx, distributions):
    """Libraries of torch, vLLM, flash-attn and xformers that declare an x86-64 ISA level above baseline."""
    if isinstance(distributions, Unavailable):
        return distributions
    out = []
    for d in distributions:
        for pattern in CANDIDATES.get(d["name"], ()):
            for path in glob.glob(os.path.join(d["location"], pattern)):
                level = isa_needed(path)
                if level and level != "x86-64":
                    out.append({"distribution": d["name"], "path": path, "isa": level})
    return out
