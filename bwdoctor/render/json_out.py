"""JSON output: any document (the bwdoctor.report/1 contract and the others), cleaned at the edge."""

from __future__ import annotations

from .safe import dump_json


def render_document(doc: dict) -> str:
    """A document as stable, indented, strict JSON (secrets redacted, no NaN/Infinity, no control characters)."""
    return dump_json(doc)
