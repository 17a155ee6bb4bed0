"""C++ symbol demangling: GCC's own demangler (libstdc++'s __cxa_demangle through ctypes), else `c++filt`.

Why this choice: __cxa_demangle is the maintained reference implementation of the Itanium ABI demangler
(the one c++filt and the toolchains of torch and CUDA extensions use) and is present wherever a C++
extension can run, so it needs no new dependency. The `cxxfilt` package is a thin ctypes wrapper around
the same function; `itanium_demangler` is a pure-Python reimplementation that lags the ABI (it fails on
some names modern GCC emits, e.g. abi tags and lambdas in templates). When libstdc++ cannot be loaded,
binutils' `c++filt` is run (bounded by a timeout); without either, names stay mangled (None is returned).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Dict, Iterable, Optional

from .. import fileio

MAX_NAME = 8192
CXXFILT_TIMEOUT = 5.0
_lib = None


def _load():
    global _lib
    if _lib is None:
        import ctypes.util  # imports tempfile and subprocess: only when a name is demangled

        _lib = False
        for name in ("libstdc++.so.6", ctypes.util.find_library("stdc++")):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                fn = lib.__cxa_demangle
                fn.restype = ctypes.c_void_p
                fn.argtypes = [
                    ctypes.c_char_p,
                    ctypes.c_char_p,
                    ctypes.POINTER(ctypes.c_size_t),
                    ctypes.POINTER(ctypes.c_int),
                ]
                libc = ctypes.CDLL(None)
                libc.free.argtypes = [ctypes.c_void_p]
                _lib = (fn, libc.free)
                break
            except (OSError, AttributeError):
                continue
    return _lib or None


def _mangled(name: str) -> bool:
    return bool(name) and name.startswith("_Z") and len(name) <= MAX_NAME and name.isascii()


def cxxfilt(names: Iterable[str], exe: Optional[str] = None) -> Dict[str, str]:
    """{mangled: demangled} from one run of c++filt (empty when it is absent, fails or times out)."""
    names = [n for n in dict.fromkeys(names) if _mangled(n) and "\n" not in n]
    exe = exe or fileio.which("c++filt")
    if not names or not exe:
        return {}
    from ..context import run_bounded  # own session, bounded output, group killed at the end

    res = run_bounded([exe], timeout=CXXFILT_TIMEOUT, input="\n".join(names) + "\n")
    if res.error is not None:
        return {}
    lines = res.stdout.splitlines()
    if res.returncode != 0 or len(lines) != len(names):
        return {}
    return {n: d for n, d in zip(names, lines, strict=True) if d != n}


@lru_cache(maxsize=65536)
def demangle(name: str) -> Optional[str]:
    """The demangled form of an Itanium C++ symbol (_Z...), or None when it is not one or cannot be read."""
    if not _mangled(name):
        return None
    lib = _load()
    if not lib:
        return cxxfilt([name]).get(name)
    fn, free = lib
    status = ctypes.c_int(0)
    ptr = fn(name.encode("ascii"), None, None, ctypes.byref(status))
    if not ptr or status.value != 0:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        free(ptr)
