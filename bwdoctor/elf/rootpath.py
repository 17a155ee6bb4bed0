"""Symlinks resolved inside a --root tree: every step stays under the root (never escapes to the host)."""

from __future__ import annotations

import errno
import os
import stat
from typing import List

MAX_HOPS = 40  # as the kernel: more symlinks than this in one lookup is a loop (ELOOP)


def resolve_under(root: str, path: str, hops: int = MAX_HOPS) -> str:
    """The machine path `path` names inside `root`, with a symlink in ANY component resolved in the tree.

    An absolute link target restarts at the root of the tree, `..` stops at it; a component that does not
    exist is kept as written. Raises OSError(ELOOP) after `hops` links (a loop)."""
    root = root.rstrip("/")
    todo: List[str] = [p for p in reversed(path.split("/")) if p]
    parts: List[str] = []
    seen = 0
    missing = False
    while todo:
        name = todo.pop()
        if name == ".":
            continue
        if name == "..":
            if parts:
                parts.pop()
            continue
        if missing:  # below a missing component nothing exists: normalise the rest only
            parts.append(name)
            continue
        here = "/" + "/".join(parts + [name])
        try:
            st = os.lstat(root + here)
        except OSError:
            missing = True
            parts.append(name)
            continue
        if not stat.S_ISLNK(st.st_mode):
            parts.append(name)
            continue
        seen += 1
        if seen > hops:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        target = os.readlink(root + here)
        if target.startswith("/"):
            parts = []
        todo.extend(p for p in reversed(target.split("/")) if p)
    return "/" + "/".join(parts)


def realpath_under(root: str, path: str, hops: int = MAX_HOPS) -> str:
    """The machine path (as seen inside `root`) that a chain of symlinks ends at (the path itself on a loop)."""
    if root in ("", "/"):
        return os.path.realpath(path)
    try:
        return resolve_under(root, path, hops)
    except OSError:
        return os.path.normpath(path)
