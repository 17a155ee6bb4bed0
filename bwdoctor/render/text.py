"""Human output: one line per family with a glyph (✓ ! ✗), failures with a fix, details on -v."""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Callable, List, Optional

from ..model import Unavailable
from .common import MARK, failed, fix_line, mark
from .safe import clean_text

GLYPH = {
    "ok": (MARK["pass"], "green"),
    "warning": (MARK["warning"], "yellow"),
    "error": (MARK["error"], "red"),
    "skip": (MARK["skip"], "dim"),
    "crash": (MARK["crash"], "magenta"),
}
STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def _family_state(fs):
    if any(f.status == "error" for f in fs):
        return "crash"
    bad = [f for f in fs if f.status == "fail"]
    if any(f.severity == "error" for f in bad):
        return "error"
    if bad:
        return "warning"
    if all(f.status == "skip" for f in fs):
        return "skip"
    return "ok"


def _summary_line(fs) -> str:
    from ..model import summary

    n = {s: sum(1 for f in fs if f.status == s) for s in ("pass", "fail", "skip", "error")}
    causes = summary(fs)
    parts = []
    errs = sum(1 for f in fs if f.status == "fail" and f.severity == "error")
    warns = sum(1 for f in fs if f.status == "fail" and f.severity == "warning")
    infos = sum(1 for f in fs if f.status == "fail" and f.severity == "info")
    for count, word in (
        (causes["check_crashed"], "crashed"),
        (causes["probe_failed"], "could not run"),
        (errs, "error"),
        (warns, "warning"),
        (infos, "note"),
        (n["pass"], "passed"),
        (n["skip"], "skipped"),
    ):
        if count:
            parts.append(f"{count} {word}" + ("s" if word in ("error", "warning", "note") and count > 1 else ""))
    return ", ".join(parts) or "nothing evaluated"


def _header(report) -> list:
    f = report.facts
    bits = []
    host = f.get("host")
    if isinstance(host, dict) and isinstance(host.get("distro"), dict) and host["distro"].get("pretty_name"):
        bits.append(host["distro"]["pretty_name"])
    kr = f.get("kernel_release")
    if isinstance(kr, str):
        bits.append(f"kernel {kr}")
    drv = f.get("nvidia_driver")
    if isinstance(drv, dict):
        bits.append(f"driver {drv.get('version')} ({drv.get('flavour')} module)")
    elif isinstance(drv, Unavailable):
        bits.append("no NVIDIA driver")
    py = f.get("python_env")
    if isinstance(py, dict):
        bits.append(f"Python {py.get('version')} ({py.get('executable')})")
    lines = [" · ".join(bits)] if bits else []
    gpus = f.get("gpus")
    if isinstance(gpus, list) and gpus:
        names: "OrderedDict[str, int]" = OrderedDict()
        for g in gpus:
            cc = g.get("cc")
            key = f"{g.get('name')} (CC {cc[0]}.{cc[1]}, {g.get('arch')})" if cc else f"{g.get('name')} (CC unknown)"
            names[key] = names.get(key, 0) + 1
        lines.append("GPUs: " + ", ".join(f"{n}× {k}" for k, n in names.items()))
    elif isinstance(gpus, list) or isinstance(gpus, Unavailable):
        lines.append("GPUs: none found")
    lines.append(
        "targets: "
        + (", ".join(report.targets) if report.targets else "none (no GPU seen; pass --target sm_120 to check for one)")
    )
    return lines


# Failures of these families have an install plan: the report names the command that prints it.
RECOMMEND_FAMILIES = ("gpu-code", "linking")


def _wrapped(prefix: str, rest: str, width: Optional[int], indent: str) -> List[str]:
    """Plain lines of `prefix + rest` wrapped at width (None: not wrapped), later lines with a hanging indent."""
    if not width:
        return [prefix + rest]
    import textwrap  # a pipe or a file gets one line per item: no wrapping, no textwrap

    lines = textwrap.wrap(
        prefix + rest,
        width=max(width, len(indent) + 20),
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return lines or [prefix]


def _as_is(text: str) -> str:
    return text


def render_text(report, verbose: bool = False, color: bool = True, width: Optional[int] = 100, quiet: bool = False):
    """The report for a person (rich markup; plain when color is False).

    width: wrap at this many columns with a hanging indent (None: one line per item, for pipes and files).
    quiet: the failed findings only (nothing when nothing failed). A fix shared by several findings is printed
    once, at the first of them."""
    buf = io.StringIO()
    if color:
        from rich.console import Console
        from rich.markup import escape as rich_escape

        escape: Callable[[str], str] = rich_escape

        con = Console(
            file=buf,
            force_terminal=True,
            width=max(width or 100, 40),
            highlight=False,
            soft_wrap=True,  # wrapping is done here, with the hanging indent
            color_system="standard",
            emoji=False,
        )

        def out(markup: str, plain: Optional[str] = None) -> None:
            con.print(markup)

    else:  # plain text needs no markup engine (rich costs a start-up more than the rest of rendering)
        escape = _as_is

        def out(markup: str, plain: Optional[str] = None) -> None:
            """A line: `markup` for rich, `plain` its text (the same when it holds no markup)."""
            buf.write((markup if plain is None else plain) + "\n")

    def item(prefix: str, styled: str, rest: str, indent: str = "      ", style: str = "") -> None:
        """A finding line: `prefix` (markup allowed, `styled` its plain form) then text wrapped after it."""
        lines = _wrapped(styled, rest, width, indent)
        if not lines[0].startswith(styled.rstrip()):  # a prefix longer than the line: it stands alone
            out(prefix.rstrip(), styled.rstrip())
            for line in _wrapped(indent, rest, width, indent):
                out(f"[{style}]{escape(line)}[/{style}]" if style else escape(line), line)
            return
        first = lines[0][len(styled) :] if len(lines[0]) >= len(styled) else ""
        body = escape(first)
        out(prefix + (f"[{style}]{body}[/{style}]" if style else body), styled + first)
        for line in lines[1:]:
            out(f"[{style}]{escape(line)}[/{style}]" if style else escape(line), line)

    header = _header(report)
    if not quiet:
        title = f"bwdoctor {report.version}  "
        item(f"[bold]{escape(title.rstrip())}[/bold]  ", title, header[0] if header else "", indent="  ")
        for line in header[1:]:
            item("  ", "  ", line, indent="    ")
        out("")
    fams: "OrderedDict[str, list]" = OrderedDict()
    for f in sorted(report.findings, key=lambda f: f.id):
        fams.setdefault(f.family, []).append(f)
    fixes_seen: set = set()
    for fam, fs in fams.items():
        state = _family_state(fs)
        if quiet and state in ("ok", "skip"):
            continue
        glyph, style = GLYPH[state]
        item(
            f"[{style}]\\[{glyph}][/{style}] [bold]{escape(fam)}[/bold]: ",
            f"[{glyph}] {fam}: ",
            _summary_line(fs),
            indent="    ",
        )
        for f in failed(fs):
            glyph = mark(f.status, f.severity)
            st = "red" if f.status == "error" else STYLE.get(f.severity, "red")
            loc = f" {f.location.path}:{f.location.line}:{f.location.column}" if f.location else ""
            head = f"{f.id} {f.name}{clean_text(loc)}: "
            item(f"    [{st}]{glyph}[/{st}] {escape(head)}", f"    {glyph} {head}", clean_text(f.message))
            fix = fix_line(f) if f.status == "fail" else None
            if fix and fix not in fixes_seen:
                fixes_seen.add(fix)
                item("      fix: ", "      fix: ", clean_text(fix), indent="           ", style="bold")
            out(f"      more: bwdoctor explain {escape(f.kb)}")
        if verbose and not quiet:
            for f in fs:
                if f.status == "pass":
                    p = f"    {MARK['pass']} {f.id} {f.name}: "
                    item(f"    [green]{MARK['pass']}[/green] {escape(p[6:])}", p, clean_text(f.message))
                elif f.status == "skip":
                    p = f"    {MARK['skip']} {f.id} {f.name}: "
                    item(escape(p), p, clean_text(f.message), style="dim")
    if quiet:
        return buf.getvalue()
    if not report.findings:
        out("no checks were evaluated")
    if any(f.family in RECOMMEND_FAMILIES for f in failed(report.findings)):
        out(
            "plan: [bold]bwdoctor recommend[/bold]  (the wheels, or the build, that work on this GPU)",
            "plan: bwdoctor recommend  (the wheels, or the build, that work on this GPU)",
        )
    for note in report.notes:
        item("[yellow]note:[/yellow] ", "note: ", clean_text(note), indent="      ")
    out("")
    out("Summary: " + escape(_summary_line(report.findings)) + f"  ({sum(report.probes.values()):.2f} s of probes)")
    if verbose:
        out("")
        out("[bold]Facts[/bold]", "Facts")
        for name, value in report.facts.items():
            t = report.probes.get(name)
            ms = f"({t * 1000:.0f} ms)" if t is not None else ""
            brief = clean_text(_brief(value))
            timing = f" [dim]{ms}[/dim]" if ms else ""
            out(f"  {escape(name)}{timing}: {escape(brief)}", f"  {name}{' ' + ms if ms else ''}: {brief}")
    return buf.getvalue()


def _brief(value, limit: int = 300) -> str:
    import json

    if isinstance(value, Unavailable):
        return f"unavailable: {value.reason}"
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
