"""Symlinks resolved inside a --root tree: every step stays under the root (never escapes to the host)."""
from __future__ import annotations

import os


def realpath_under(root: str, path: str, hops: int = 40) -> str:
    """The machine path (as seen inside `root`) that a chain of symlinks ends at."""
    if root in ("", "/"):
        return os.path.realpath(path)
    for _ in range(hops):
        try:
            target = os.readlink(os.path.join(root, path.lstrip("/")))
        except OSError:
            return os.path.normpath(path)
        path = target if target.startswith("/") else os.path.normpath(os.path.join(os.path.dirname(path), target))
    return path
