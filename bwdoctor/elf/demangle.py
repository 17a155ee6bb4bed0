"""C++ symbol demangling with GCC's own demangler (libstdc++'s __cxa_demangle, through ctypes).

The Itanium demangler in libstdc++ is the maintained reference implementation (the one c++filt and the
toolchains of torch and CUDA extensions use), it is present wherever a C++ extension can run, and it
needs no new dependency. Without libstdc++ names stay mangled (None is returned).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Optional

_lib = None


def _load():
    global _lib
    if _lib is None:
        _lib = False
        for name in ("libstdc++.so.6", ctypes.util.find_library("stdc++")):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                fn = lib.__cxa_demangle
                fn.restype = ctypes.c_void_p
                fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t),
                               ctypes.POINTER(ctypes.c_int)]
                libc = ctypes.CDLL(None)
                libc.free.argtypes = [ctypes.c_void_p]
                _lib = (fn, libc.free)
                break
            except (OSError, AttributeError):
                continue
    return _lib or None


@lru_cache(maxsize=65536)
def demangle(name: str) -> Optional[str]:
    """The demangled form of an Itanium C++ symbol (_Z...), or None when it is not one or cannot be read."""
    if not name or not name.startswith("_Z") or len(name) > 8192:
        return None
    lib = _load()
    if not lib:
        return None
    fn, free = lib
    status = ctypes.c_int(0)
    ptr = fn(name.encode("ascii", "replace"), None, None, ctypes.byref(status))
    if not ptr or status.value != 0:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        free(ptr)
