"""GitHub Actions workflow-command annotations (::error / ::warning / ::notice)."""

from __future__ import annotations

from .common import failed
from .safe import clean_text

LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _esc_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _esc_prop(s: str) -> str:
    return _esc_data(s).replace(":", "%3A").replace(",", "%2C")


def render_github(report) -> str:
    """One annotation line per failed finding, with file/line where the finding has a location."""
    lines = []
    for f in failed(report.findings):
        level = "error" if f.status == "error" else LEVEL.get(f.severity, "warning")
        props = [f"title={_esc_prop(f'{f.id} {f.name}')}"]
        if f.location:
            props = [
                f"file={_esc_prop(f.location.path)}",
                f"line={f.location.line}",
                f"col={f.location.column}",
            ] + props
        msg = f"{clean_text(f.message)} (bwdoctor explain {f.kb})"
        lines.append(f"::{level} {','.join(props)}::{_esc_data(msg)}")
    return "\n".join(lines) + ("\n" if lines else "")
