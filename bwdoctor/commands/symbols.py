"""`bwdoctor symbols PATH|DISTRIBUTION...`: why a compiled extension will (not) load, without loading it."""
from __future__ import annotations

import json
import os
import re

HELP = """For each shared object (a file, every .so under a directory, or every .so of an installed
distribution of the inspected environment): the libraries it needs that cannot be found (with every
path tried), the symbol versions that are missing (GLIBCXX_3.4.32...), the undefined symbols (mangled
and demangled), the verdict and its cause. Modules that import torch are checked with torch's
libraries already loaded, as Python would have them. Nothing is loaded or imported."""


def register(sub):
    p = sub.add_parser("symbols", help="why a compiled extension will not load (undefined symbols, missing libraries)",
                       description=HELP)
    p.add_argument("paths", nargs="+", metavar="PATH|DIST",
                   help="a shared object, a directory of them, or an installed distribution (vllm, torchaudio...); "
                        "with --root, paths are read inside that tree")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import engine, registry
    from ..cli import UsageError, emit, make_context
    from ..elf.distfiles import is_elf, iter_elf_files, record_elf_files
    from ..elf.dynlink import interpreter_loader
    from ..model import Unavailable
    from ..probes.links import built_for, dist_results, link_result, select_loaded

    ctx = make_context(args)
    reg = registry.load(no_plugins=True)
    facts, _ = engine.gather(reg, ctx, ["python_env", "distributions", "torch_build"])
    py, dists, tb = facts["python_env"], facts["distributions"], facts["torch_build"]
    if isinstance(py, Unavailable) and ctx.live_machine:
        raise UsageError(f"the inspected interpreter is unknown: {py.reason}")
    py = {} if isinstance(py, Unavailable) else py  # a --root tree without Python: files are still read
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
            out += [dict(link_result(ld, f, machine(host), tb), distribution=None, built_for=None) for f in files]
        elif os.path.isfile(host):
            if not is_elf(host):
                out.append({"path": arg, "distribution": None, "loads": False, "cause": None,
                            "summary": "not an ELF file", "error": "not an ELF file", "import": None, "soft": None,
                            "missing_libraries": [], "missing_versions": [], "undefined": [], "undefined_count": 0,
                            "built_for": None})
            else:
                path = machine(os.path.abspath(host))
                out.append(dict(link_result(ld, path, os.path.dirname(path), tb), distribution=None, built_for=None))
        elif key in by_name:
            d = by_name[key]
            paths, err = record_elf_files(str(ctx.resolve(d["dist_info"])), str(ctx.resolve(d["location"])),
                                          shared_only=True)
            paths = [machine(p) for p in paths]  # facts name machine paths; the files are read under --root
            if err:
                notes.append(f"{d['name']}: {err}")
            paths = select_loaded(d["name"], paths, tb, dict(ctx.env))
            built = built_for(d)
            out += [dict(r, distribution=d["name"], built_for=built)
                    for r in dist_results(ld, paths, d["location"], tb, d["name"], built)]
        else:
            raise UsageError(f"{arg}: not a file, a directory, or a distribution installed in {py.get('executable')}")
    if args.format == "json":
        emit(args, json.dumps({"schema": "bwdoctor.symbols/1", "python": py.get("executable"),
                               "torch": tb.get("version") if tb else None, "files": out, "notes": notes}, indent=2) + "\n")
    else:
        lines = []
        for r in out:
            mark = "✓" if r["loads"] else "✗"
            lines.append(f"{mark} {r['path']}" + (f"  [{r['distribution']}]" if r.get("distribution") else ""))
            if r["loads"]:
                continue
            lines.append(f"    cause: {r['cause']} — {r['summary']}  (bwdoctor explain {r['cause']})")
            if r.get("import"):
                lines.append(f"    fails: import {r['import']}")
            elif r.get("soft"):
                lines.append(f"    loaded optionally: {r['soft']}")
            for m in r["missing_libraries"]:
                lines.append(f"    missing {m['name']} (needed by {m['needed_by']}); tried: "
                             + (", ".join(m["tried"]) or "no directory"))
            for v in r["missing_versions"]:
                lines.append(f"    version {v['version']} not found in {v['provider']} (required by {v['required_by']})")
            for u in r["undefined"]:
                ver = f"@{u['version']}" if u.get("version") else ""
                lines.append(f"    undefined {u['symbol']}{ver}" + (f"  = {u['demangled']}" if u.get("demangled") else ""))
            if r["undefined_count"] > len(r["undefined"]):
                lines.append(f"    … {r['undefined_count'] - len(r['undefined'])} more undefined symbols")
        emit(args, "\n".join(lines) + "\n")
    return 0 if all(r["loads"] for r in out) else 1
