"""Which libcuda.so.1 the dynamic loader will load: LD_LIBRARY_PATH, then /etc/ld.so.cache, then the
default directories — all under --root — and whether it is a CUDA forward-compatibility copy."""

from __future__ import annotations

import os
import re

from ..elf.ldcache import read as read_ldcache
from ..elf.rootpath import realpath_under
from ..model import Unavailable
from ..registry import probe

DEFAULT_DIRS = ("/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
_VER_RE = re.compile(r"libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$")


def resolve_under_root(ctx, path: str) -> str:
    """The machine path a symlink chain ends at, every step taken under ctx.root (no escape to the host)."""
    return realpath_under(str(ctx.root), path)


def read_ldcache_door(ctx, path: str):
    """(entries, error) of the tree's ld.so.cache, read through the context (a regular file only, bounded); read
    once per run for every probe that looks a driver library up (the entries are not to be edited)."""
    return ctx.shared(f"ldcache:{path}", lambda c: read_ldcache(path, lambda p, limit: c.read_bytes(p, limit=limit)))


def _describe(ctx, path: str, via: str) -> dict:
    real = resolve_under_root(ctx, path)
    m = _VER_RE.search(os.path.basename(real))
    return {
        "path": path,
        "real": real,
        "via": via,
        "version": m.group(1) if m else None,
        "compat": "/compat/" in path or "/compat/" in real,
    }


def soname_locations(ctx, soname: str, dirs=DEFAULT_DIRS):
    """([(machine path, via)], ld.so.cache error) of a driver library, in the loader's order: LD_LIBRARY_PATH,
    /etc/ld.so.cache (64-bit entries), then the default directories."""
    found = []
    for d in (ctx.env.get("LD_LIBRARY_PATH") or "").split(":"):
        if d and ctx.exists(os.path.join(d, soname)):
            found.append((os.path.join(d, soname), "LD_LIBRARY_PATH"))
    entries, err = read_ldcache_door(ctx, "/etc/ld.so.cache")
    for e in entries:
        if e["soname"] == soname and e["arch"] in ("x86-64", "aarch64", ""):
            found.append((e["path"], "ld.so.cache"))
    for d in dirs:
        if ctx.exists(os.path.join(d, soname)):
            found.append((os.path.join(d, soname), "default directory"))
    return found, err


@probe("libcuda", budget=3.0)
def libcuda(ctx):
    """The libcuda.so.1 the loader picks, the other copies it could see, and CUDA compat settings."""
    found, err = soname_locations(ctx, "libcuda.so.1")
    candidates = [_describe(ctx, path, via) for path, via in found]
    confs = []
    for conf in ctx.glob("/etc/ld.so.conf.d/*.conf"):
        try:
            text = ctx.read_text(conf, limit=65536)
        except OSError:
            continue
        if "compat" in text or "compat" in os.path.basename(conf):
            confs.append(
                {
                    "file": "/etc/ld.so.conf.d/" + os.path.basename(conf),
                    "dirs": [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")],
                }
            )
    if not candidates and err and not confs:
        return Unavailable(f"libcuda.so.1 not found (ld.so.cache: {err})")
    return {
        "chosen": candidates[0] if candidates else None,
        "candidates": candidates[:10],
        "ldcache_error": err,
        "compat_confs": confs,
        "VLLM_ENABLE_CUDA_COMPATIBILITY": ctx.env.get("VLLM_ENABLE_CUDA_COMPATIBILITY"),
    }
