"""JSON output: the bwdoctor.report/1 contract, secrets redacted."""
from __future__ import annotations

import json

from ..redact import redact_obj


def render_json(report) -> str:
    """The report as stable JSON (schema bwdoctor.report/1)."""
    return json.dumps(redact_obj(report.to_json()), indent=2, sort_keys=False, default=str) + "\n"
