"""`bwdoctor symbols PATH|DISTRIBUTION...`: why a compiled extension will (not) load, without loading it."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..model import Outcome, Unavailable
from ..render import add_format_option
from .common import context_from_args

HELP = """For each shared object (a file, every .so under a directory, or every .so of an installed
distribution of the inspected environment): the libraries it needs that cannot be found (with every
path tried), the symbol versions that are missing (GLIBCXX_3.4.32...), the undefined symbols (mangled
and demangled), the verdict and its cause. Modules that import torch are checked with torch's
libraries already loaded, as Python would have them. Nothing is loaded or imported."""


def register(sub: Any, epilog: str = "") -> None:
    """Add `symbols`."""
    p = sub.add_parser(
        "symbols",
        help="why a compiled extension will not load (undefined symbols, missing libraries)",
        description=HELP,
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH|DIST",
        help="a shared object, a directory of them, or an installed distribution (vllm, torchaudio...); "
        "with --root, paths are read inside that tree",
    )
    add_format_option(p, "symbols")
    p.set_defaults(func=run)


def with_cause(raw: dict, torch_build: Any, distribution: Any = None, built: Any = None) -> dict:
    """One file's row: the loader's raw result (as the extension_links probe records it) with the cause and
    summary that the link-cause table (bwdoctor.checks.linkcauses) gives it."""
    from ..checks.linkcauses import classify

    verdict = classify(raw, torch_build, distribution, built) or {"cause": None, "summary": None}
    return {
        "path": raw["path"],
        "import": raw["import"],
        "soft": raw["soft"],
        "loads": raw["loads"],
        "cause": verdict["cause"],
        "summary": verdict["summary"],
        "missing_libraries": raw["missing_libraries"][:5],
        "missing_versions": raw["missing_versions"][:5],
        "undefined": raw["undefined"],
        "undefined_count": raw["undefined_count"],
        "error": raw["error"],
        "distribution": distribution,
        "built_for": built,
    }


def run(args: Any) -> Outcome:
    """The bwdoctor.symbols/1 document; exit 0 every file loads, 1 one does not."""
    from .. import engine

    ctx = context_from_args(args)
    ctx.options["link_paths"] = list(args.paths)
    facts, _ = engine.gather_facts(["named_links", "torch_build"], engine.Source(context=ctx))
    named, tb = facts["named_links"], facts["torch_build"]
    if isinstance(named, Unavailable):
        raise UsageError(named.reason)
    if named["unknown"]:
        raise UsageError(
            f"{named['unknown'][0]}: not a file, a directory, or a distribution installed in {named['python']}"
        )
    tb = None if isinstance(tb, Unavailable) else tb
    out = [
        not_elf_row(r) if r.get("not_elf") else with_cause(r, tb, r["distribution"], r["built_for"])
        for r in named["rows"]
    ]
    doc = {
        "schema": "bwdoctor.symbols/1",
        "python": named["python"],
        "torch": tb.get("version") if tb else None,
        "files": out,
        "notes": named["notes"],
    }
    return Outcome(doc, 0 if all(r["loads"] for r in out) else 1)


def not_elf_row(raw: dict) -> dict:
    """The row of an argument that is not an ELF file (the probe's row, with no cause and that summary)."""
    row = {k: v for k, v in raw.items() if k != "not_elf"}
    return dict(row, cause=None, summary="not an ELF file")
