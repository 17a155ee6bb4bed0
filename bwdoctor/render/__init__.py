"""Output: every document of every command in every format it supports. The one place that writes text.

A command returns ONE document (`{"schema": "bwdoctor.<kind>/1", ...}`, see bwdoctor.model.Outcome); `render`
turns it into the format asked for. Every format is cleaned here, at the edge (bwdoctor.render.safe): secrets
redacted, control characters escaped, JSON strict.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ..records import dataclass

FINDING_FORMATS = ("text", "json", "github", "junit", "sarif", "prometheus", "oneline", "markdown", "nfd")
DOCUMENT_FORMATS = ("text", "json")
ALIASES = {"rich": "text"}  # the text format's former name, still accepted
KIND_FORMATS: Dict[str, Tuple[str, ...]] = {
    "report": FINDING_FORMATS,
    "verify-build": FINDING_FORMATS,
    "facts": DOCUMENT_FORMATS,
    "list": DOCUMENT_FORMATS,
    "explain": DOCUMENT_FORMATS,
    "cubins": DOCUMENT_FORMATS,
    "kernels": DOCUMENT_FORMATS,
    "symbols": DOCUMENT_FORMATS,
    "plan": DOCUMENT_FORMATS,
    "fleet": DOCUMENT_FORMATS,
    "recommend": DOCUMENT_FORMATS,
}


@dataclass
class RenderOptions:
    """How to render: -v, colour, --fail-on (JUnit), --all (cubins), the width, --quiet."""

    verbose: bool = False
    color: bool = False
    fail_on: str = "error"
    show_all: bool = False
    width: int = 100
    wrap: bool = False  # wrap text at `width` with a hanging indent (a terminal, or COLUMNS set)
    quiet: bool = False  # failures only


def add_format_option(parser: Any, kind: str, default: str = "text") -> None:
    """--format with the formats this document kind supports (plus the alias rich for text)."""
    names = KIND_FORMATS[kind]
    parser.add_argument(
        "--format",
        choices=names + tuple(a for a, t in ALIASES.items() if t in names),
        default=default,
        help=f"output format: {', '.join(names)} (default {default})",
    )


def normalize_format(fmt: str) -> str:
    """The canonical name of a --format value (rich → text)."""
    return ALIASES.get(fmt, fmt)


def render(outcome: Any, fmt: str, options: Optional[RenderOptions] = None) -> str:
    """The outcome's document in one format, as text. Every format is rendered from a cleaned copy (secrets
    redacted structure-aware, control characters escaped, non-finite numbers null: bwdoctor.render.safe), and
    the text formats pass the text rules once more at the end."""
    options = options if options is not None else RenderOptions()
    from ..redact import redact
    from .safe import clean_obj, clean_report, dump_json, strip_controls

    fmt = normalize_format(fmt)
    kind = outcome.kind
    if fmt not in KIND_FORMATS.get(kind, DOCUMENT_FORMATS):
        raise ValueError(f"--format {fmt} is not available for {kind} documents")
    if fmt == "json":
        return dump_json(outcome.document)
    if fmt in ("github", "junit", "sarif"):
        out = _render_findings(clean_report(outcome.report), fmt, options)
        return strip_controls(redact(out) if fmt == "github" else out)
    if fmt in ("prometheus", "oneline", "markdown", "nfd"):
        return strip_controls(redact(_render_ops(clean_report(outcome.report), fmt, int(outcome.code), options)))
    if kind == "report":
        from .text import render_text

        report = clean_report(outcome.report)
        out = render_text(
            report,
            verbose=options.verbose,
            color=options.color,
            width=options.width if options.wrap else None,
            quiet=options.quiet,
        )
    else:
        from .documents import TEXT

        out = TEXT[kind](clean_obj(outcome.document, finite=False), options)
    out = redact(out)
    return out if options.color else strip_controls(out)


def _render_ops(report: Any, fmt: str, code: int, options: RenderOptions) -> str:
    if fmt == "nfd":
        from .nfd import render_nfd

        return render_nfd(report, code, options.fail_on)
    if fmt == "prometheus":
        from .prometheus import render_prometheus

        return render_prometheus(report, code)
    if fmt == "oneline":
        from .oneline import render_oneline

        return render_oneline(report, code)
    from .markdown import render_markdown

    return render_markdown(report, code)


def _render_findings(report: Any, fmt: str, options: RenderOptions) -> str:
    if fmt == "github":
        from .github import render_github

        return render_github(report)
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(report, fail_on=options.fail_on)
    from .sarif import render_sarif

    return render_sarif(report)
