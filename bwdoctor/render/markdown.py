"""A paste-ready support report in GitHub-flavoured Markdown: header facts, failures with their fix, the versions
that matter, and the rest (every check, the facts) folded in <details>.

Everything it shows comes from the cleaned report (secrets already masked: bwdoctor.render.safe) and the whole
text passes the edge once more. Text from the inspected machine is escaped so it cannot end a table, a code
block or a <details> element early.
"""

from __future__ import annotations

import json
import re
from typing import Any, List

from ..model import Unavailable, summary
from .common import failed, fix_line, mark
from .text import _header

# The distributions a vLLM support request needs first, in this order (others are in the facts).
KEY_DISTRIBUTIONS = (
    "vllm",
    "torch",
    "triton",
    "flash-attn",
    "flashinfer-python",
    "xformers",
    "nvidia-nccl-cu12",
    "nvidia-nccl-cu13",
    "bitsandbytes",
    "transformers",
)
STATUS_WORD = {"pass": "pass", "fail": "fail", "skip": "skip", "error": "error"}


def inline(text: Any) -> str:
    """Text for a table cell or a list item: no line breaks, pipes and HTML escaped."""
    s = " ".join(str(text).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", "\\|")


def code(text: Any) -> str:
    """Inline code that holds any backticks the text has."""
    s = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or longest else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def block(text: str, lang: str = "") -> str:
    """A fenced code block whose fence is longer than any run of backticks inside."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _versions(report: Any) -> List[str]:
    rows = []
    dists = report.facts.get("distributions")
    if isinstance(dists, list):
        seen: dict = {}
        for d in dists:
            if isinstance(d, dict) and isinstance(d.get("name"), str):
                seen.setdefault(d["name"].lower().replace("_", "-"), d.get("version"))
        for name in KEY_DISTRIBUTIONS:
            if name in seen:
                rows.append(f"| {inline(name)} | {inline(seen[name])} |")
    tk = report.facts.get("cuda_toolkits")
    if isinstance(tk, dict) and isinstance(tk.get("used"), dict) and tk["used"].get("version"):
        rows.append(f"| CUDA toolkit (nvcc) | {inline(tk['used']['version'])} |")
    runtimes = report.facts.get("cuda_runtimes")
    if isinstance(runtimes, list):
        for r in runtimes:
            if isinstance(r, dict) and r.get("cuda"):
                rows.append(f"| CUDA runtime of {inline(r.get('source'))} | {inline(r['cuda'])} |")
    return rows


def _brief(value: Any, limit: int = 400) -> str:
    if isinstance(value, Unavailable):
        return f"unavailable: {value.reason}"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_markdown(report: Any, exit_code: int) -> str:
    """The report as a Markdown support report."""
    s = summary(report.findings)
    counts = ", ".join(
        f"{n} {w}"
        for n, w in (
            (s["fail_error"], "error(s)"),
            (s["fail_warning"], "warning(s)"),
            (s["fail_info"], "note(s)"),
            (s["check_crashed"], "crashed"),
            (s["probe_failed"], "could not run"),
            (s["pass"], "passed"),
            (s["skip"], "skipped"),
        )
        if n
    )
    out = [
        "### bwdoctor report",
        "",
        f"bwdoctor {inline(report.version)} · exit code {exit_code} · {counts or 'nothing evaluated'}",
        "",
        "| machine | |",
        "|---|---|",
    ]
    head = _header(report)
    if head and not head[0].startswith(("GPUs:", "targets:")):
        for bit in head[0].split(" · "):
            key, _, rest = bit.partition(" ")
            out.append(f"| {inline(key)} | {inline(rest)} |")
        head = head[1:]
    for line in head:
        key, _, rest = line.partition(": ")
        out.append(f"| {inline(key)} | {inline(rest)} |")
    out.append("")
    bad = failed(report.findings)
    out.append(f"#### Failures ({len(bad)})" if bad else "#### Failures: none")
    out.append("")
    fixes_seen: set = set()
    for f in bad:
        where = f" at {code(f'{f.location.path}:{f.location.line}:{f.location.column}')}" if f.location else ""
        what = "crashed or could not run" if f.status == "error" else f.severity
        title = f"**{inline(f.id)} {inline(f.name)}**"
        out.append(f"- {mark(f.status, f.severity)} {title} ({what}){where}: {inline(f.message)}")
        fix = fix_line(f) if f.status == "fail" else None
        if fix and fix not in fixes_seen:
            fixes_seen.add(fix)
            out.append(f"  - fix: {code(fix)}")
        out.append(f"  - more: {code('bwdoctor explain ' + f.kb)}")
    if bad:
        out.append("")
    versions = _versions(report)
    if versions:
        out += ["#### Versions", "", "| package | version |", "|---|---|", *versions, ""]
    rows = [
        f"| {inline(f.id)} | {inline(f.name)} | {STATUS_WORD.get(f.status, inline(f.status))} | {inline(f.message)} |"
        for f in sorted(report.findings, key=lambda f: (f.id, f.status))
    ]
    out += [
        f"<details><summary>All checks ({len(report.findings)})</summary>",
        "",
        "| id | name | status | message |",
        "|---|---|---|---|",
        *rows,
        "",
        "</details>",
        "",
    ]
    notes = [f"- {inline(n)}" for n in report.notes]
    if notes:
        out += ["#### Notes", "", *notes, ""]
    facts = "\n".join(f"{name}: {_brief(value)}" for name, value in report.facts.items())
    out += [
        "<details><summary>Facts (abridged; <code>bwdoctor facts</code> has them all)</summary>",
        "",
        block(facts or "(none)", "text"),
        "",
        "</details>",
    ]
    return "\n".join(out) + "\n"
