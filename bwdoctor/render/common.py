"""Pieces shared by renderers: the fix line of a finding, severity ordering, KB access."""

from __future__ import annotations

import re
from typing import Optional

from ..knowledge import section

RANK = {"error": 0, "warning": 1, "info": 2}
# One glyph per state in every text output: passed, skipped, failed at each severity, crashed.
MARK = {"pass": "✓", "skip": "-", "error": "✗", "warning": "!", "info": "i", "crash": "✗"}


def mark(status: str, severity: str = "error") -> str:
    """The glyph of a finding (status pass/skip/fail/error and its severity)."""
    if status in ("pass", "skip"):
        return MARK[status]
    if status == "error":
        return MARK["crash"]
    return MARK.get(severity, MARK["error"])


def fix_line(finding) -> Optional[str]:
    """A one-line fix: the finding's evidence['fix'], else the first command or sentence of the KB Fix."""
    fix = finding.evidence.get("fix") if isinstance(finding.evidence, dict) else None
    if isinstance(fix, str) and fix.strip():
        return fix.strip()
    if finding.location is not None:
        return None  # a config finding's message names the line; the article's generic command may not fit
    text = section(finding.kb, "Fix")
    if not text:
        return None
    code = re.search(r"```[a-z]*\n(.+?)\n", text)
    if code and code.group(1).strip():
        return code.group(1).strip()
    for line in text.splitlines():
        line = line.strip().lstrip("-*0123456789. ").strip()
        if line and not line.startswith("```"):
            return re.sub(r"[`*]", "", line)[:200]
    return None


def failed(findings):
    """Findings that failed or errored, worst first."""
    bad = [f for f in findings if f.status in ("fail", "error")]
    return sorted(bad, key=lambda f: (0 if f.status == "error" else 1 + RANK.get(f.severity, 3), f.id))
