"""`bwdoctor cubins`: the cubin and PTX targets of many CUDA .so files at once (cuobjdump, but fast)."""

from __future__ import annotations

import os
import sys
from typing import Any, List, Optional

from ..model import Outcome
from ..render import add_format_option
from .common import artifacts_and_targets, context_from_args

SCHEMA = "bwdoctor.cubins/1"


def register(sub: Any, epilog: str = "") -> None:
    """Add the `cubins` subcommand."""
    p = sub.add_parser(
        "cubins",
        help="list the GPU code (cubin and PTX targets) inside CUDA .so files",
        description="List the cubin (sm_XY[a|f]) and PTX (compute_XY[a|f]) targets compiled into "
        "each CUDA ELF file, from .nv_fatbin and the relocatable __nv_relfatbin, without "
        "decompressing anything. Arguments are files, directories (searched recursively "
        "for ELF files), wheels, or names of distributions installed in the inspected environment "
        "(--python). A verdict per file (native / ptx-jit / none) for each --target, else for the GPUs "
        "present. "
        "Exit 0 every argument read; 1 a file could not be read; 2 an argument matched nothing.",
    )
    p.add_argument("items", nargs="+", metavar="PATH|DIR|WHEEL|DISTRIBUTION")
    add_format_option(p, "cubins")
    p.add_argument("--all", action="store_true", help="text: also list ELF files without GPU code")
    p.set_defaults(func=run)


def run(args: Any) -> Outcome:
    """The bwdoctor.cubins/1 document; exit 0 all read, 1 a file unreadable, 2 an argument matched nothing."""
    from ..domain.arch import cc_label, parse_cc
    from ..domain.compat import verdict_for_file

    if args.python and not os.path.isabs(args.python) and os.path.lexists(args.python):
        args.python = os.path.abspath(args.python)  # a relative path names a file from here, never from / or --root
    ctx = context_from_args(args)
    # without --target: verdicts for the GPUs present (none known: the targets are listed without verdicts)
    named, labels = artifacts_and_targets(ctx, args.items)
    ccs = [(t, parse_cc(t)) for t in labels]
    files, problems, seen = [], [], set()

    def same_file(path: str) -> str:  # one file named twice (a link, a directory and its file) is listed once
        try:
            return ctx.realpath(path)  # the machine's symlinks (inside the tree under --root)
        except OSError:
            return path

    for art in named:
        if art.get("problem"):
            problems.append(art["problem"])
        for item in art["files"]:
            key = same_file(item["path"]) if art["kind"] != "wheel" else (art["arg"], item["path"])
            if key in seen:
                continue
            seen.add(key)
            item = dict(item, distribution=art["name"] if art["kind"] == "distribution" else None)
            if ccs:
                item["verdicts"] = {}
                for _name, cc in ccs:
                    v = verdict_for_file(cc, item)
                    item["verdicts"][cc_label(cc)] = {"status": v.status, "entry": v.entry}
            files.append(item)
    doc = {"schema": SCHEMA, "files": files, "problems": problems}
    code = 2 if problems else 1 if any(f["error"] for f in files) else 0
    return Outcome(doc, code, list(problems) if args.format == "json" or args.output else [])


def main(argv: Optional[List[str]] = None) -> int:
    """Run the subcommand alone (python -m bwdoctor.commands.cubins ...)."""
    from ..cli import main as cli_main

    return cli_main(["cubins", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
