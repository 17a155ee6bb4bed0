"""`bwdoctor symbols PATH|DISTRIBUTION...`: why a compiled extension will (not) load, without loading it."""
from __future__ import annotations

import os
import re
from typing import Any

from ..errors import UsageError
from ..model import Outcome
from ..render import add_format_option
from .common import context_from_args

HELP = """For each shared object (a file, every .so under a directory, or every .so of an installed
distribution of the inspected environment): the libraries it needs that cannot be found (with every
path tried), the symbol versions that are missing (GLIBCXX_3.4.32...), the undefined symbols (mangled
and demangled), the verdict and its cause. Modules that import torch are checked with torch's
libraries already loaded, as Python would have them. Nothing is loaded or imported."""


def register(sub: Any, epilog: str = "") -> None:
    """Add `symbols`."""
    p = sub.add_parser("symbols", help="why a compiled extension will not load (undefined symbols, missing libraries)",
                       description=HELP)
    p.add_argument("paths", nargs="+", metavar="PATH|DIST",
                   help="a shared object, a directory of them, or an installed distribution (vllm, torchaudio...); "
                        "with --root, paths are read inside that tree")
    add_format_option(p, "symbols")
    p.set_defaults(func=run)


def with_cause(raw: dict, torch_build: Any, distribution: Any = None, built: Any = None) -> dict:
    """One file's row: the loader's raw result (as the extension_links probe records it) with the cause and
    summary that the link-cause table (bwdoctor.checks.linkcauses) gives it."""
    from ..checks.linkcauses import classify

    verdict = classify(raw, torch_build, distribution, built) or {"cause": None, "summary": None}
    return {"path": raw["path"], "import": raw["import"], "soft": raw["soft"], "loads": raw["loads"],
            "cause": verdict["cause"], "summary": verdict["summary"],
            "missing_libraries": raw["missing_libraries"][:5], "missing_versions": raw["missing_versions"][:5],
            "undefined": raw["undefined"], "undefined_count": raw["undefined_count"], "error": raw["error"],
            "distribution": distribution, "built_for": built}


def run(args: Any) -> Outcome:
    """The bwdoctor.symbols/1 document; exit 0 every file loads, 1 one does not."""
    from .. import engine
    from ..elf.distfiles import is_elf, iter_elf_files, record_elf_files
    from ..elf.dynlink import interpreter_loader
    from ..model import Unavailable
    from ..probes.links import built_for, dist_results, link_result, select_loaded

    ctx = context_from_args(args)
    facts, _ = engine.gather_facts(["python_env", "distributions", "torch_build"], engine.Source(context=ctx))
    py, dists, tb = facts["python_env"], facts["distributions"], facts["torch_build"]
    if isinstance(py, Unavailable):
        raise UsageError(f"the inspected interpreter is unknown: {py.reason}")
    tb = None if isinstance(tb, Unavailable) else tb
    torch_dir = os.path.join(tb["location"], "torch") if tb else None
    ld, notes = interpreter_loader(py, str(ctx.root), dict(ctx.env), torch_dir)
    by_name = {} if isinstance(dists, Unavailable) else {d["name"]: d for d in dists}
    out = []

    def machine(host_path: str) -> str:  # the loader names files as the inspected machine sees them
        return host_path if str(ctx.root) == "/" else "/" + os.path.relpath(host_path, str(ctx.root))

    for arg in args.paths:
        key = re.sub(r"[-_.]+", "-", arg).lower()
        host = str(ctx.host_path(arg)) if os.path.isabs(arg) else arg
        if os.path.isdir(host):
            files = [machine(f) for f in iter_elf_files(host)]
            out += [with_cause(link_result(ld, f, machine(host)), tb) for f in files]
        elif os.path.isfile(host):
            if not is_elf(host):
                out.append({"path": arg, "distribution": None, "loads": False, "cause": None,
                            "summary": "not an ELF file", "error": "not an ELF file", "import": None, "soft": None,
                            "missing_libraries": [], "missing_versions": [], "undefined": [], "undefined_count": 0,
                            "built_for": None})
            else:
                path = machine(os.path.abspath(host))
                out.append(with_cause(link_result(ld, path, os.path.dirname(path)), tb))
        elif key in by_name:
            d = by_name[key]
            paths, err = record_elf_files(d["dist_info"], d["location"], shared_only=True)
            if err:
                notes.append(f"{d['name']}: {err}")
            paths = select_loaded(d["name"], paths, tb, dict(ctx.env))
            built = built_for(d)
            out += [with_cause(r, tb, d["name"], built) for r in dist_results(ld, paths, d["location"])]
        else:
            raise UsageError(f"{arg}: not a file, a directory, or a distribution installed in {py['executable']}")
    doc = {"schema": "bwdoctor.symbols/1", "python": py.get("executable"),
           "torch": tb.get("version") if tb else None, "files": out, "notes": notes}
    return Outcome(doc, 0 if all(r["loads"] for r in out) else 1)
