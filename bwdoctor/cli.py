"""Command line: check, facts, explain, list — plus the subcommands listed in bwdoctor.commands."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from . import __version__
from .render import FORMATS

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_NOTHING = 0, 1, 2, 3
SUMMARY_FACTS = ("host", "kernel_release", "nvidia_driver", "gpus", "targets", "python_env")

EPILOG = """exit codes: 0 nothing at or above --fail-on; 1 the gate failed; 2 usage or internal error;
3 nothing could be evaluated.
examples:
  bwdoctor check                         what will break on this machine
  bwdoctor check --target sm_120         check the software for an RTX 50xx this host lacks
  bwdoctor check --format sarif -o bw.sarif --fail-on warning
  bwdoctor facts --format json > host.json; bwdoctor check --facts host.json
  bwdoctor explain undefined-symbol      the article on a failure topic
  bwdoctor explain "$(cat error.txt)"    which topic a pasted error is"""


class UsageError(Exception):
    """Bad command-line input: printed and exit 2."""


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options accepted both before and after the subcommand."""
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    g = parser.add_argument_group("machine and environment")
    g.add_argument("--root", metavar="DIR", default=d("/"),
                   help="read machine files (/proc, /sys, /etc, /usr/local/cuda*) under DIR: replay a captured host")
    g.add_argument("--python", metavar="PATH", default=d(None),
                   help="inspect this interpreter's environment (default: $VIRTUAL_ENV/$CONDA_PREFIX python, "
                        "else the one running bwdoctor)")
    g.add_argument("--target", metavar="SM", action="append", default=d(None),
                   help="GPU architecture to check for, e.g. sm_120 or 12.0 (repeatable; default: $BWDOCTOR_TARGET, "
                        "else the GPUs present)")
    g.add_argument("--no-plugins", action="store_true", default=d(False),
                   help="load no third-party checks or probes (or pin them with BWDOCTOR_PLUGINS=a,b)")
    o = parser.add_argument_group("output")
    o.add_argument("-v", "--verbose", action="store_true", default=d(False),
                   help="show passes, skips with their reasons, and the facts")
    o.add_argument("--no-color", action="store_true", default=d(False), help="no colour (also: NO_COLOR=1)")
    o.add_argument("-o", "--output", metavar="FILE", default=d(None), help="write the output to FILE")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    p = argparse.ArgumentParser(
        prog="bwdoctor", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Preflight doctor for serving LLMs with vLLM on NVIDIA GPUs, Blackwell first: reads the "
                    "driver, kernel modules, CUDA toolkits, Python environment and compiled GPU code, and says "
                    "what will break, why, and the exact fix. torch is never imported.")
    p.add_argument("--version", action="version", version=f"bwdoctor {__version__}")
    _common(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, help_, **kw):
        sp = sub.add_parser(name, help=help_, description=help_, formatter_class=argparse.RawDescriptionHelpFormatter,
                            **kw)
        _common(sp, suppress=True)
        return sp

    c = add("check", "run the checks and report what will break (the default command)", epilog=EPILOG)
    _check_options(c)
    c.set_defaults(func=cmd_check)
    f = add("facts", "print the facts the probes gather (JSON for --facts replay, support bundles, fleets)")
    f.add_argument("names", nargs="*", metavar="NAME", help="facts to gather (default: all)")
    f.add_argument("--format", choices=("json", "rich"), default="json")
    f.set_defaults(func=cmd_facts)
    e = add("explain", "print the knowledge-base article for a topic, check id, or pasted error text")
    e.add_argument("topic", nargs="*", help="slug, alias, check id (BW201), check name, error text, or - for stdin")
    e.add_argument("--log", metavar="FILE", help="scan a log file (vLLM, torch, NCCL, pip, nvcc, CMake)")
    e.add_argument("--format", choices=("rich", "json"), default="rich")
    e.add_argument("--no-machine", action="store_true", help="print the article only; do not check this machine")
    e.add_argument("--model", metavar="DIR", help="with --log of a vLLM start-up: also plan this model with the "
                                                   "logged settings and show prediction beside the log")
    e.set_defaults(func=cmd_explain)
    ls = add("list", "list the checks, probes or knowledge-base topics")
    ls.add_argument("what", nargs="?", choices=("checks", "probes", "kb"), default="checks")
    ls.add_argument("--format", choices=("text", "json"), default="text")
    ls.set_defaults(func=cmd_list)
    from .commands import COMMANDS

    for modname in COMMANDS:
        mod = importlib.import_module(modname)
        before = set(sub.choices)
        mod.register(sub)
        for name in set(sub.choices) - before:
            _common(sub.choices[name], suppress=True)
    return p


def _check_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--select", action="append", default=[], metavar="TERM",
                   help="only checks matching an id, name, family or group (repeatable, comma-separated)")
    c.add_argument("--ignore", action="append", default=[], metavar="TERM", help="skip matching checks")
    c.add_argument("--format", choices=FORMATS, default="rich", help="output format (default rich)")
    c.add_argument("--fail-on", choices=("error", "warning", "info"), default="error",
                   help="lowest severity that makes the exit code 1 (default error)")
    c.add_argument("--facts", metavar="FILE", help="evaluate facts saved by 'bwdoctor facts' instead of this machine")
    c.add_argument("--config", action="append", default=[], metavar="FILE", help="vLLM serve config to lint")
    c.add_argument("--live", action="store_true", help="also run the live torch/GPU probe in a subprocess")
    c.add_argument("--vllm-version", metavar="X.Y.Z", help="lint serve configs for this vLLM release "
                                                          "(default: the installed one)")


def _split_terms(values: List[str]) -> List[str]:
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def make_context(args):
    """The probe Context for parsed arguments (validating --root, --python and --target)."""
    from .context import Context
    from .probes.nvidia import normalize_target

    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"--root {args.root}: not a directory")
    targets = []
    wanted = args.target or [t for t in os.environ.get("BWDOCTOR_TARGET", "").split(",") if t.strip()]
    for t in wanted:
        try:
            targets.append(normalize_target(t))
        except ValueError as exc:
            raise UsageError(f"--target: {exc}") from None
    if args.python and not Context(root=root).has_path(args.python):  # under --root: a path inside the tree
        raise UsageError(f"--python {args.python}: no such file")
    options = {}
    if getattr(args, "vllm_version", None):
        options["vllm_version"] = args.vllm_version
    if getattr(args, "src", None):
        if not Path(args.src).is_dir():
            raise UsageError(f"--src {args.src}: not a directory")
        options["src"] = str(Path(args.src).resolve())
    return Context(root=root, python=args.python, env=dict(os.environ), targets=targets,
                   configs=list(getattr(args, "config", []) or []), live=bool(getattr(args, "live", False)),
                   options=options)


def use_color(args) -> bool:
    """Colour only for a terminal, and never with --no-color, NO_COLOR or --output."""
    if args.no_color or os.environ.get("NO_COLOR") or args.output:
        return False
    return sys.stdout.isatty()


def emit(args, text: str) -> None:
    """Write output to --output FILE or stdout."""
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--output {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def run_checks(args, select=(), ignore=(), groups=()):
    """Plan, gather and evaluate; returns (report, registry). Shared by check and the gate commands."""
    from . import engine, factsfile, registry
    from .model import Report, Unavailable

    reg = registry.load(no_plugins=args.no_plugins)
    unknown = engine.unknown_terms(reg, list(select) + list(ignore))
    if unknown:
        raise UsageError(f"--select/--ignore: no check matches {', '.join(unknown)} (see 'bwdoctor list')")
    checks = engine.select_checks(reg, select or list(groups), ignore)
    notes = list(reg.load_errors) + reg.validate()
    ctx = make_context(args)
    names = engine.needed_facts(reg, checks, extra=SUMMARY_FACTS)
    if getattr(args, "facts", None):
        try:
            preset = factsfile.load(args.facts)
        except factsfile.FactsFileError as exc:
            raise UsageError(str(exc)) from None
        if ctx.targets:
            preset["targets"] = list(ctx.targets)
        for n in names:
            preset.setdefault(n, Unavailable(f"not in the facts file {os.path.basename(args.facts)}"))
        facts, timings = preset, {}
    else:
        facts, timings = engine.gather(reg, ctx, names)
    findings = engine.evaluate(checks, facts)
    targets = facts.get("targets")
    targets = targets if isinstance(targets, list) else []
    if not targets:
        notes.append("no target GPU architecture: no NVIDIA GPU was seen; pass --target sm_120 (or another) "
                     "to check the software for a GPU this machine lacks")
    shown = {n: facts[n] for n in names if n in facts}
    report = Report(version=__version__, targets=targets, facts=shown, findings=findings, probes=timings,
                    checks=checks, notes=notes)
    return report, reg


def cmd_check(args) -> int:
    from . import engine
    from .render import render

    # Without --select, `check` runs the run-time and serve-config checks; the pre-build group is
    # `bwdoctor prebuild`'s (a serving host needs no ccache advice).
    report, _ = run_checks(args, _split_terms(args.select), _split_terms(args.ignore), groups=("runtime", "serve"))
    emit(args, render(report, args.format, verbose=args.verbose, color=use_color(args), fail_on=args.fail_on))
    crashed = [f"{f.id} {f.name}" for f in report.findings if f.status == "error"]
    if crashed:
        print(f"bwdoctor: {len(crashed)} check(s) crashed and were reported as errors: {', '.join(crashed)}",
              file=sys.stderr)
    return engine.exit_code(report.findings, args.fail_on)


def cmd_facts(args) -> int:
    from . import engine, factsfile, registry
    from .redact import redact_obj

    reg = registry.load(no_plugins=args.no_plugins)
    unknown = [n for n in args.names if n not in reg.probes]
    if unknown:
        raise UsageError(f"unknown fact(s): {', '.join(unknown)}; known: {', '.join(sorted(reg.probes))}")
    ctx = make_context(args)
    names = engine.needed_facts(reg, [], extra=args.names or sorted(reg.probes))
    facts, timings = engine.gather(reg, ctx, names)
    if args.names:
        facts = {n: facts[n] for n in args.names}
    doc = factsfile.dump(facts)
    doc["probes"] = {k: round(v, 4) for k, v in timings.items()}
    if args.format == "json":
        emit(args, json.dumps(redact_obj(doc), indent=2) + "\n")
    else:
        from .render.text import _brief

        emit(args, "".join(f"{n}: {_brief(v, 2000)}\n" for n, v in facts.items()))
    return EXIT_OK


def cmd_list(args) -> int:
    from . import knowledge, registry

    reg = registry.load(no_plugins=args.no_plugins)
    if args.what == "checks":
        rows = [{"id": c.id, "name": c.name, "family": c.family, "severity": c.severity, "groups": list(c.groups),
                 "kb": c.kb, "title": c.title, "needs": list(c.needs), "origin": c.origin}
                for c in sorted(reg.checks.values(), key=lambda c: c.id)]
        text = "".join(f"{r['id']}  {r['name']:<34} {r['family']:<12} {r['severity']:<8} {r['title']}\n" for r in rows)
    elif args.what == "probes":
        rows = [{"name": p.name, "needs": list(p.needs), "budget": p.budget, "title": p.title, "origin": p.origin}
                for p in sorted(reg.probes.values(), key=lambda p: p.name)]
        text = "".join(f"{r['name']:<20} {r['budget']:>5.1f}s  {r['title']}\n" for r in rows)
    else:
        rows = [{"slug": a.slug, "title": a.title, "aliases": a.aliases, "checks": a.checks}
                for a in sorted(knowledge.load_all().values(), key=lambda a: a.slug)]
        text = "".join(f"{r['slug']:<32} {r['title']}\n" for r in rows)
    if reg.load_errors:
        for e in reg.load_errors:
            print(f"bwdoctor: plugin not loaded: {e}", file=sys.stderr)
    emit(args, json.dumps(rows, indent=2) + "\n" if args.format == "json" else text)
    return EXIT_OK


def cmd_explain(args) -> int:
    from .explain_cli import run_explain

    return run_explain(args)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the bwdoctor command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            if not getattr(args, "func", None):  # no subcommand: check is the default
                args = parser.parse_args(argv + ["check"])
        except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
            return int(exc.code or 0)
        return int(args.func(args))
    except UsageError as exc:
        print(f"bwdoctor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("bwdoctor: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last line of defence: never a traceback for a user
        if os.environ.get("BWDOCTOR_DEBUG"):
            raise
        print(f"bwdoctor: internal error: {type(exc).__name__}: {exc} (set BWDOCTOR_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
