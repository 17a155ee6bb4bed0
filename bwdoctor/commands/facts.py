"""`bwdoctor facts` (the gathered facts, for --facts replay and bug reports) and `bwdoctor list`."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..model import Outcome
from ..render import add_format_option
from .common import source_from_args

LIST_SCHEMA = "bwdoctor.list/1"


def register(sub: Any, epilog: str = "") -> None:
    """Add `facts` and `list`."""
    f = sub.add_parser(
        "facts", help="print the facts the probes gather (JSON for --facts replay, support bundles, fleets)"
    )
    f.add_argument("names", nargs="*", metavar="NAME", help="facts to gather (default: all)")
    add_format_option(f, "facts", default="json")
    f.add_argument(
        "--config", action="append", default=[], metavar="FILE", help="vLLM serve config to read into serve_configs"
    )
    f.set_defaults(func=run_facts)
    ls = sub.add_parser("list", help="list the checks, probes or knowledge-base topics")
    ls.add_argument("what", nargs="?", choices=("checks", "probes", "kb"), default="checks")
    add_format_option(ls, "list")
    ls.set_defaults(func=run_list)


def run_facts(args: Any) -> Outcome:
    """The bwdoctor.facts/1 document of the facts named (default: every fact a probe provides)."""
    from .. import engine, factsfile, registry

    reg = registry.load(no_plugins=args.no_plugins)
    unknown = [n for n in args.names if n not in reg.probes]
    if unknown:
        raise UsageError(f"unknown fact(s): {', '.join(unknown)}; known: {', '.join(sorted(reg.probes))}")
    names = engine.needed_facts(reg, [], extra=args.names or sorted(reg.probes))
    facts, timings = engine.gather_facts(names, source_from_args(args), reg)
    if args.names:
        facts = {n: facts[n] for n in args.names}
    doc = factsfile.dump(facts)
    doc["probes"] = {k: round(v, 4) for k, v in timings.items()}
    return Outcome(doc)


def run_list(args: Any) -> Outcome:
    """The bwdoctor.list/1 document: checks, probes or knowledge-base topics."""
    from .. import knowledge, registry

    reg = registry.load(no_plugins=args.no_plugins)
    if args.what == "checks":
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "family": c.family,
                "severity": c.severity,
                "groups": list(c.groups),
                "kb": c.kb,
                "title": c.title,
                "needs": list(c.needs),
                "origin": c.origin,
            }
            for c in sorted(reg.checks.values(), key=lambda c: c.id)
        ]
    elif args.what == "probes":
        rows = [
            {"name": p.name, "needs": list(p.needs), "budget": p.budget, "title": p.title, "origin": p.origin}
            for p in sorted(reg.probes.values(), key=lambda p: p.name)
        ]
    else:
        rows = [
            {"slug": a.slug, "title": a.title, "aliases": a.aliases, "checks": a.checks}
            for a in sorted(knowledge.load_all().values(), key=lambda a: a.slug)
        ]
    messages = [f"plugin not loaded: {e}" for e in reg.load_errors]
    return Outcome({"schema": LIST_SCHEMA, "what": args.what, "items": rows}, 0, messages)
