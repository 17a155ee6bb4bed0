"""Progress of long work (a big wheel, many files) on stderr, only when stderr is a terminal.

Never when it is not one: CI logs, pipes and files get no progress lines."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, Optional, Type


def wanted() -> bool:
    """True when stderr is a terminal (progress is drawn there and erased at the end)."""
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """A one-line transient status on stderr: `with Progress(enabled) as p: p("file 3/40 libx.so")`.

    Disabled (or without a terminal) every call does nothing."""

    def __init__(self, enabled: bool = True, label: str = "bwdoctor") -> None:
        self.enabled = enabled and wanted()
        self.label = label
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress as Bar
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Bar(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True, highlight=False),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None)
        return self

    def __call__(self, text: str) -> None:
        if self._bar is not None:
            from rich.markup import escape

            self._bar.update(self._task, description=escape(f"{self.label}: {text}"[:200]))

    def __exit__(
        self, kind: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
