"""`bwdoctor cubins`: the cubin and PTX targets of many CUDA .so files at once (cuobjdump, but fast)."""
from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

from bwdoctor.domain.arch import cc_label, parse_cc
from bwdoctor.domain.compat import verdict_for_file
from bwdoctor.elf.distfiles import distribution_files, elf_files_of, iter_elf_files
from bwdoctor.elf.fatbin import scan_file

SCHEMA = "bwdoctor.cubins/1"


def register(subparsers) -> None:
    """Add the `cubins` subcommand."""
    p = subparsers.add_parser(
        "cubins", help="list the GPU code (cubin and PTX targets) inside CUDA .so files",
        description="List the cubin (sm_XY[a|f]) and PTX (compute_XY[a|f]) targets compiled into "
                    "each CUDA ELF file, from .nv_fatbin and the relocatable __nv_relfatbin, without "
                    "decompressing anything. Arguments are files, directories (searched recursively "
                    "for ELF files) or names of installed distributions.")
    p.add_argument("items", nargs="+", metavar="PATH|DIR|DISTRIBUTION")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--all", action="store_true", help="text: also list ELF files without GPU code")
    # --python (whose distributions), --target (also give a verdict per file) and --output come
    # from the options the CLI adds to every subcommand.
    p.set_defaults(func=run)


def _own_options(p) -> None:
    """The shared options, for running this module on its own."""
    p.add_argument("-o", "--output", metavar="FILE", help="write the output here instead of stdout")
    p.add_argument("--python", metavar="PATH", help="interpreter whose installed distributions are searched")
    p.add_argument("--target", action="append", metavar="sm_XY",
                   help="also say, per file, whether this GPU can run it (native / ptx-jit / none)")


def collect(items: List[str], python: Optional[str] = None):
    """([(path, distribution or None)], [problems]) for the command's arguments."""
    found, problems, seen = [], [], set()

    def add(path, dist):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.append((path, dist))

    for item in items:
        if os.path.isdir(item):
            for path in iter_elf_files(item):
                add(path, None)
        elif os.path.lexists(item):
            add(item, None)
        elif os.sep in item or item.endswith(".so") or ".so." in item:
            problems.append(f"{item}: no such file or directory")
        else:
            try:
                info = distribution_files(item, python=python)
            except (OSError, ValueError) as exc:
                problems.append(f"{item}: cannot ask {python} for its distributions: {exc}")
                continue
            if info is None:
                where = f" in the environment of {python}" if python else f" in {sys.executable}'s environment"
                problems.append(f"{item}: no such file, directory or installed distribution{where}")
                continue
            for path in elf_files_of(info["files"]):
                add(path, info["name"])
    return found, problems


def build_report(items: List[str], python: Optional[str] = None, targets=()) -> dict:
    """The bwdoctor.cubins/1 document (plus "problems" with arguments that matched nothing)."""
    found, problems = collect(items, python)
    ccs = [(t, parse_cc(t)) for t in targets]
    files = []
    for path, dist in found:
        item = scan_file(path)
        item["distribution"] = dist
        if ccs:
            item["verdicts"] = {}
            for name, cc in ccs:
                v = verdict_for_file(cc, item)
                item["verdicts"][cc_label(cc)] = {"status": v.status, "entry": v.entry}
        files.append(item)
    return {"schema": SCHEMA, "files": files, "problems": problems}


def render_text(report: dict, show_all: bool = False) -> str:
    """One block per file with GPU code (or an error), then a summary line."""
    lines = []
    with_code = 0
    for f in report["files"]:
        has_code = f["entries"] > 0
        with_code += has_code
        if not (has_code or f["error"] or show_all):
            continue
        dist = f"  [{f['distribution']}]" if f["distribution"] else ""
        lines.append(f"{f['path']}{dist}")
        for key, label in (("fatbin", ".nv_fatbin"), ("relfatbin", "__nv_relfatbin")):
            sec = f[key]
            if sec["elf"] or sec["ptx"]:
                lines.append(f"  {label:15} elf: {' '.join(sec['elf']) or '-'}")
                lines.append(f"  {'':15} ptx: {' '.join(sec['ptx']) or '-'}")
        if has_code:
            c = f["compressed"]
            lines.append(f"  {f['entries']} entries (zstd {c['zstd']}, lz4 {c['lz4']})")
        elif not f["error"]:
            lines.append("  no GPU code")
        for cc, v in (f.get("verdicts") or {}).items():
            lines.append(f"  {cc}: {v['status']}" + (f" ({v['entry']})" if v["entry"] else ""))
        if f["error"]:
            lines.append(f"  error: {f['error']}")
    errors = sum(1 for f in report["files"] if f["error"])
    lines.append(f"{len(report['files'])} ELF file(s), {with_code} with GPU code, {errors} unreadable")
    for p in report["problems"]:
        lines.append(f"error: {p}")
    return "\n".join(lines) + "\n"


def _inspected_python(explicit: Optional[str]) -> Optional[str]:
    """The interpreter whose distributions are searched: --python, else the one `bwdoctor check`
    inspects ($VIRTUAL_ENV / $CONDA_PREFIX); None when that is this interpreter."""
    if explicit:
        return explicit
    from bwdoctor.probes.pyenv import default_interpreter

    exe = default_interpreter(os.environ)
    try:
        return None if os.path.samefile(exe, sys.executable) else exe
    except OSError:
        return None


def run(args) -> int:
    """0 when every argument was read, 1 when a file could not be read, 2 when an argument matched nothing."""
    try:
        targets = [t.strip() for arg in (getattr(args, "target", None) or []) for t in arg.split(",") if t.strip()]
        report = build_report(args.items, _inspected_python(getattr(args, "python", None)), targets)
    except ValueError as exc:  # a --target that is not a compute capability
        print(f"bwdoctor cubins: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        doc = {k: v for k, v in report.items() if k != "problems"}
        text = json.dumps(doc, indent=2) + "\n"
    else:
        text = render_text(report, getattr(args, "all", False))
    output = getattr(args, "output", None)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    if report["problems"]:
        if args.format == "json" or output:
            for p in report["problems"]:
                print(f"bwdoctor cubins: {p}", file=sys.stderr)
        return 2
    return 1 if any(f["error"] for f in report["files"]) else 0


def main(argv=None) -> int:
    """Run the subcommand alone (python -m bwdoctor.commands.cubins ...)."""
    import argparse

    parser = argparse.ArgumentParser(prog="bwdoctor")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    _own_options(sub.choices["cubins"])
    args = parser.parse_args(["cubins", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
