"""Regular expressions compiled on first use.

A module-level pattern compiled at import costs every run that imports the module, also the runs that never
use it: a check run imported ~150 patterns for ~20 ms of a 0.14 s start-up, most of them for rules that the
report at hand never reaches. `compile()` returns an object that compiles on its first match, search, sub, ...;
its `pattern` and `flags` are there without compiling. Type checkers see `re.Pattern`.
"""

from __future__ import annotations

import re
from typing import Any


class LazyPattern:
    """A pattern compiled on first use; every attribute of re.Pattern, forwarded."""

    __slots__ = ("pattern", "flags", "_compiled")

    def __init__(self, pattern: Any, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: Any = None

    def compiled(self) -> re.Pattern:
        compiled = self._compiled
        if compiled is None:  # two threads may both compile it: the same result, harmless
            compiled = self._compiled = re.compile(self.pattern, self.flags)
        return compiled

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled(), name)

    def __repr__(self) -> str:
        return f"lazyre.compile({self.pattern!r}, {self.flags!r})"


def compile(pattern: Any, flags: int = 0) -> re.Pattern:  # noqa: A001 - the name re uses
    """re.compile, deferred to the first use."""
    return LazyPattern(pattern, flags)  # type: ignore[return-value]
