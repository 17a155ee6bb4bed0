"""`bwdoctor kernels`: GPU code per compiled unit and per kernel family, where `cubins` sees one file."""

from __future__ import annotations

import sys
from typing import Any, List, Optional

from ..model import Outcome
from ..render import add_format_option
from .common import artifacts_and_targets, context_from_args

SCHEMA = "bwdoctor.kernels/1"

EPILOG = """\
A library's verdict in `cubins` and `check` is the union of its units: "native" can hide a unit (and the
kernels in it) with no code for the GPU. This command reads each fatbin container (one per compiled unit)
and, with --names, the kernels of each entry (decompressing zstd/LZ4 entries; needs the zstandard / lz4
modules), grouped into families (marlin, machete, scaled-mm, fp4, moe, flash-attention, ...) with the vLLM
features that need them.

defaults: targets = --target, else BWDOCTOR_TARGET, else the GPUs of this machine; names off.
"""


def register(sub: Any, epilog: str = "") -> None:
    """Add the `kernels` subcommand."""
    from ..cli import RawFormatter  # the CLI's formatter, as it registers this command

    p = sub.add_parser(
        "kernels",
        help="GPU code per compiled unit and per kernel family of CUDA libraries",
        description="For each CUDA ELF file: its units (fatbin containers), how many have no code for each "
        "target, and with --names the kernel families with their code per target. Arguments are files, "
        "directories, wheels, or distributions installed in the inspected environment (--python).",
        epilog=EPILOG,
        formatter_class=RawFormatter,
    )
    p.add_argument("items", nargs="+", metavar="PATH|DIR|WHEEL|DISTRIBUTION")
    p.add_argument("--names", action="store_true", help="read kernel names and group them into families (slower)")
    p.add_argument("--all", action="store_true", help="text: list every unit, not only those without code")
    add_format_option(p, "kernels")
    p.set_defaults(func=run)


def run(args: Any) -> Outcome:
    """The bwdoctor.kernels/1 document."""
    from ..domain.arch import cc_label, parse_cc
    from ..kernels import file_report

    ctx = context_from_args(args)
    ctx.options["units"] = "names" if args.names else True
    named, labels = artifacts_and_targets(ctx, args.items)
    ccs = [(cc_label(parse_cc(t)), parse_cc(t)) for t in labels]
    files, problems = [], []
    for art in named:
        if art.get("problem"):
            problems.append(art["problem"])
        for item in art["files"]:
            if not item.get("units") and not item.get("error"):
                continue  # an ELF file without GPU code
            rep = file_report(dict(item, distribution=art["name"] if art["kind"] == "distribution" else None), ccs)
            files.append(rep)
    doc = {
        "schema": SCHEMA,
        "targets": [label for label, _ in ccs],
        "names": bool(args.names),
        "files": files,
        "problems": problems,
    }
    unreadable = any(f["error"] for f in files) or any(u.get("errors") for f in files for u in f["unit_list"])
    code = 2 if problems else 3 if not ccs else 1 if unreadable else 0
    messages = list(problems) if args.format == "json" or args.output else []
    if not ccs:
        messages.append(
            "no target GPU known: give --target sm_XY (or BWDOCTOR_TARGET); units are listed without verdicts"
        )
    return Outcome(doc, code, messages)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the subcommand alone (python -m bwdoctor.commands.kernels ...)."""
    from ..cli import main as cli_main

    return cli_main(["kernels", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
