"""JSON output: any document (the bwdoctor.report/1 contract and the others), secrets redacted."""

from __future__ import annotations

import json

from ..redact import redact_obj


def render_document(doc: dict) -> str:
    """A document as stable, indented JSON."""
    return json.dumps(redact_obj(doc), indent=2, sort_keys=False, default=str) + "\n"
