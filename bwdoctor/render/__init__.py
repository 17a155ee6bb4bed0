"""Renderers: one function per output format, all fed by the same Report."""
from __future__ import annotations

FORMATS = ("rich", "json", "github", "junit", "sarif")


def render(report, fmt: str, *, verbose: bool = False, color: bool = True, fail_on: str = "error",
           width: int = 100) -> str:
    """The report in one output format, as text."""
    if fmt == "json":
        from .json_out import render_json

        return render_json(report)
    if fmt == "github":
        from .github import render_github

        return render_github(report)
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(report, fail_on=fail_on)
    if fmt == "sarif":
        from .sarif import render_sarif

        return render_sarif(report)
    from .text import render_text

    return render_text(report, verbose=verbose, color=color, width=width)
