"""One line of at most 80 characters: the verdict, the counts and the worst finding. For Node Problem Detector's
custom plugin monitor (it reads the exit code and keeps the first 80 characters of stdout) and for status bars.

The verdict word follows the exit code of the run: OK (0), FAIL (1: a finding at or above --fail-on), UNKNOWN
(3: a check crashed or could not run, or nothing was evaluated). NPD reads 0 as OK, 1 as a problem and anything
else as unknown, so bwdoctor's 2 (usage) and 3 (no verdict) both show as unknown there.
"""

from __future__ import annotations

from typing import Any, List

from .common import failed

WIDTH = 80
VERDICT = {0: "OK", 1: "FAIL"}


def _counts(report: Any) -> str:
    from ..model import summary

    s = summary(report.findings)
    parts: List[str] = []
    for key, word in (
        ("fail_error", "err"),
        ("fail_warning", "warn"),
        ("check_crashed", "crashed"),
        ("probe_failed", "not run"),
    ):
        if s[key]:
            parts.append(f"{s[key]} {word}")
    if not parts:
        parts.append(f"{s['pass']} passed")
    return ", ".join(parts)


def cut(text: str, width: int) -> str:
    """The text cut to `width` characters at a word boundary, with an ellipsis when cut (never mid-word)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    room = text[: width - 1]
    space = room.rfind(" ")
    if space > 0:
        room = room[:space]
    return room.rstrip(" ,;:.-(") + "…"


def render_oneline(report: Any, exit_code: int) -> str:
    """`FAIL (1 err, 1 warn) BW202 NVIDIA GeForce RTX 5090 needs the open NVIDIA kernel…` (≤ 80 characters)."""
    verdict = VERDICT.get(exit_code, "UNKNOWN")
    head = f"{verdict} ({_counts(report)})" if report.findings else f"{verdict} (nothing evaluated)"
    bad = failed(report.findings)
    if exit_code == 0 or not bad:
        s = sum(1 for f in report.findings if f.status == "skip")
        line = head + (f", {s} skipped" if s and exit_code == 0 else "")
        return cut(line, WIDTH) + "\n"
    if exit_code == 1:  # the finding that failed the gate, before a crashed check
        bad = [f for f in bad if f.status == "fail"] or bad
    worst = bad[0]
    rest = WIDTH - len(head) - 1
    return cut(f"{head} {worst.id} {worst.message}", WIDTH) + "\n" if rest > 8 else cut(head, WIDTH) + "\n"
