"""PyTorch's caching-allocator setting (PYTORCH_CUDA_ALLOC_CONF / PYTORCH_ALLOC_CONF): parse it as torch does, and
judge it against what the INSTALLED torch accepts, read from its own libraries (never by importing torch).

Sources (read 2026-11 from the PyPI wheels torch 2.7.1, 2.8.0, 2.9.1, 2.10.0, 2.11.0 cp311 manylinux_2_28_x86_64,
their torch/lib/libc10.so and libc10_cuda.so .rodata; and c10/core/AllocatorConfig.cpp, c10/cuda/CUDAAllocatorConfig.h
in pytorch/pytorch):
- the tokenizer splits the value at ',' ':' '[' ']' and drops spaces; each option is `key:value`; an unknown key
  stops the first CUDA allocation with RuntimeError ("Unrecognized CachingAllocator option: K" up to 2.9,
  "Unrecognized key 'K' in CUDA allocator config." from 2.10); so does a value of the wrong form;
- which variable the CUDA allocator reads is the names its libc10_cuda.so holds: only PYTORCH_CUDA_ALLOC_CONF up to
  2.9.x (2.9's libc10.so also reads PYTORCH_ALLOC_CONF for the device-generic part and calls PYTORCH_CUDA_ALLOC_CONF
  deprecated, yet PYTORCH_ALLOC_CONF=expandable_segments:True is ignored for CUDA: pytorch/pytorch#183387); both
  from 2.10, and which one wins when both are set changed between releases.
"""

from __future__ import annotations

import math
import re
from typing import Dict, List, Optional, Tuple

from .. import lazyre
from ..records import dataclass, field

VARIABLES = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")
MAX_VALUE = 4096  # a real setting is tens of bytes
LARGE_BUFFER_MB = 20  # kLargeBuffer: max_split_size_mb and max_non_split_rounding_mb must be >= this
MAX_REGISTER_THREADS = 128  # pinned_max_register_threads()
IDENT_RE = lazyre.compile(rb"([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\x00")
VAR_RE = lazyre.compile(rb"(PYTORCH_(?:CUDA_|HIP_)?ALLOC_CONF)(?=[\x00 ])")
DEPRECATED_RE = lazyre.compile(rb"(PYTORCH_(?:CUDA_|HIP_)?ALLOC_CONF) is deprecated")

BOOL = "True/False"
# value form per option, as the parsers of torch 2.7-2.11 check it (names not listed are accepted with any value)
FORMS: Dict[str, str] = {
    "max_split_size_mb": "mb",
    "max_non_split_rounding_mb": "mb",
    "garbage_collection_threshold": "fraction",
    "roundup_power2_divisions": "divisions",
    "expandable_segments": BOOL,
    "release_lock_on_cudamalloc": BOOL,
    "pinned_use_cuda_host_register": BOOL,
    "pinned_use_background_threads": BOOL,
    "graph_capture_record_stream_reuse": BOOL,
    "pinned_num_register_threads": "threads",
    "backend": "backend",
}


# options seen in torch 2.7-2.11's allocator parsers whose values bwdoctor does not judge
OTHER_OPTIONS = (
    "per_process_memory_fraction",
    "pinned_reserve_segment_size_mb",
    "large_segment_size_mb",
    "release_lock_on_hipmalloc",
    "pinned_use_hip_host_register",
)
KNOWN = frozenset(FORMS) | frozenset(OTHER_OPTIONS)


@dataclass
class Option:
    """One `key:value` of the setting; value is the raw text (a bracket list keeps its brackets)."""

    key: str
    value: Optional[str]
    offset: int  # 0-based character offset of the key in the value


@dataclass
class Parsed:
    options: List[Option] = field(default_factory=list)
    errors: List[Tuple[int, str]] = field(default_factory=list)  # (offset, what is wrong)


def _tokens(text: str) -> List[Tuple[str, int]]:
    """torch's lexArgs: separators , : [ ] are tokens; spaces vanish; other runs are words."""
    out: List[Tuple[str, int]] = []
    buf, start = "", 0
    for i, ch in enumerate(text):
        if ch in ",:[]":
            if buf:
                out.append((buf, start))
                buf = ""
            out.append((ch, i))
        elif ch != " ":
            if not buf:
                start = i
            buf += ch
    if buf:
        out.append((buf, start))
    return out


def parse(text: str) -> Parsed:
    """The options of an allocator setting, and where its syntax is wrong (pure; never raises)."""
    res = Parsed()
    if len(text) > MAX_VALUE:
        res.errors.append((0, f"{len(text)} characters is not an allocator setting (limit {MAX_VALUE})"))
        return res
    toks = _tokens(text)
    i = 0
    while i < len(toks):
        key, at = toks[i]
        if key in ",:[]":
            res.errors.append((at, f"expected an option name, found {key!r}"))
            i += 1
            continue
        if i + 1 >= len(toks) or toks[i + 1][0] != ":":
            res.options.append(Option(key, None, at))
            res.errors.append((at, f"option {key!r} has no ':value'"))
            i += 1
        elif i + 2 >= len(toks) or toks[i + 2][0] in ",:]":
            res.options.append(Option(key, None, at))
            res.errors.append((at, f"option {key!r} has an empty value"))
            i += 2
        elif toks[i + 2][0] == "[":
            j = i + 3
            while j < len(toks) and toks[j][0] != "]":
                j += 1
            if j >= len(toks):
                res.errors.append((toks[i + 2][1], f"option {key!r}: '[' is never closed"))
            value = "[" + "".join(t for t, _ in toks[i + 3 : j]) + "]"
            res.options.append(Option(key, value, at))
            i = j + 1
        else:
            res.options.append(Option(key, toks[i + 2][0], at))
            i += 3
        if i < len(toks):
            if toks[i][0] != ",":
                res.errors.append((toks[i][1], f"expected ',' after option {key!r}, found {toks[i][0]!r}"))
            i += 1
    return res


def _int(text: str) -> Optional[int]:
    return int(text) if re.fullmatch(r"[+]?\d{1,18}", text) else None


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def value_problem(key: str, value: Optional[str]) -> Optional[str]:
    """Why torch's parser rejects this value for this option; None when it accepts it (or the form is unknown)."""
    form = FORMS.get(key)
    if form is None or value is None:
        return None
    if form == BOOL:
        return None if value in ("True", "False") else f"expects True or False (capitalised), not {value!r}"
    if form == "mb":
        n = _int(value)
        if n is None:
            return f"expects a whole number of MiB, not {value!r}"
        return None if n >= LARGE_BUFFER_MB else f"must be >= {LARGE_BUFFER_MB} (MiB), not {n}"
    if form == "fraction":
        try:
            f = float(value)
        except ValueError:
            return f"expects a number between 0 and 1, not {value!r}"
        return None if math.isfinite(f) and 0.0 < f < 1.0 else f"must be in (0.0, 1.0), not {value}"
    if form == "threads":
        n = _int(value)
        if n is None or not _pow2(n):
            return f"expects a power of 2, not {value!r}"
        return None if n <= MAX_REGISTER_THREADS else f"must be <= {MAX_REGISTER_THREADS}, not {n}"
    if form == "backend":
        return None if value in ("native", "cudaMallocAsync") else f"expects native or cudaMallocAsync, not {value!r}"
    if form == "divisions":
        if value.startswith("["):
            for part in filter(None, value[1:-1].split(",")):
                size, _, div = part.partition(":")
                d = _int(div)
                if d is None or not (d == 0 or _pow2(d)):
                    return f"division {div!r} in {value} is not a power of 2 (or 0)"
                if size != ">" and (_int(size) is None or not _pow2(_int(size) or 0)):
                    return f"interval {size!r} in {value} is not a power of 2 (or '>')"
            return None
        n = _int(value)
        return None if n is not None and _pow2(n) else f"expects a power of 2 or a [size:div,...] list, not {value!r}"
    return None


def library_strings(rodata: bytes) -> Dict[str, List[str]]:
    """What an allocator library's .rodata says: identifier strings, the *_ALLOC_CONF names, deprecated names."""
    idents = {m.decode() for m in IDENT_RE.findall(rodata)}
    idents |= {k for k in FORMS if "_" not in k and k.encode() + b"\x00" in rodata}  # "backend"
    return {
        "identifiers": sorted(idents),
        "variables": sorted({m.decode() for m in VAR_RE.findall(rodata)}),
        "deprecated": sorted({m.decode() for m in DEPRECATED_RE.findall(rodata)}),
    }


def accepts(identifiers: List[str], key: str) -> bool:
    """Whether the installed torch takes `key`: an option bwdoctor knows must be a string of its libraries (a linker
    may merge it into a longer string's tail); another name is taken only when it is one of their strings exactly
    (an option newer than this table). Function names there ("release_expandable_segment") are the risk the
    exact match keeps small."""
    if key in KNOWN:
        return key in identifiers or any(i.endswith("_" + key) for i in identifiers)
    return key in identifiers


def nearest(key: str, identifiers: List[str]) -> Optional[str]:
    """The accepted option a mistyped key most likely meant."""
    pool = [k for k in sorted(KNOWN) if accepts(identifiers, k)] or sorted(KNOWN)
    import difflib  # only when a key is unknown

    best = difflib.get_close_matches(key, pool, n=1, cutoff=0.6)
    return best[0] if best else None
