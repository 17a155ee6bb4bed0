"""`bwdoctor prebuild` (the pre-build gate) and `bwdoctor verify-build` (GPU code of a finished build)."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

PREBUILD_HELP = """Run the checks of group pre-build before a source build of vLLM, flash-attn or another CUDA
extension: nvcc supports the target and matches torch's CUDA, TORCH_CUDA_ARCH_LIST covers the target,
no FA3 on Blackwell, MAX_JOBS fits RAM, disk, host compiler, Python headers and, with --src, the
tree's torch pins. Exit 1 blocks the build (use it as RUN in a Dockerfile, a CI step or a pre-commit hook)."""

VERIFY_HELP = """Check that a finished build has GPU code for the target: PATH is a wheel (.whl), a build
directory, one .so file, or an installed distribution name. Libraries built only for other GPUs on purpose (vLLM's
FA3, FlashMLA and other arch-specific extensions) are reported as 'not for this GPU'. Exit 1 when a
library that will load lacks code for the target."""


def register(sub):
    p = sub.add_parser("prebuild", help="the pre-build gate: will a source build work and produce code for the GPU?",
                       description=PREBUILD_HELP)
    p.add_argument("--src", metavar="DIR", help="the source tree to be built (reads its torch pins)")
    p.add_argument("--format", choices=("rich", "json", "github", "junit", "sarif"), default="rich")
    p.add_argument("--fail-on", choices=("error", "warning", "info"), default="error")
    p.add_argument("--select", action="append", default=[], metavar="TERM", help=argparse_help_select())
    p.add_argument("--ignore", action="append", default=[], metavar="TERM")
    p.set_defaults(func=run_prebuild)
    v = sub.add_parser("verify-build", help="does a built wheel / build dir / installed package have code for the GPU?",
                       description=VERIFY_HELP)
    v.add_argument("path", metavar="PATH", help="a .whl file, a directory, or an installed distribution name")
    v.add_argument("--format", choices=("rich", "json"), default="rich")
    v.set_defaults(func=run_verify)


def argparse_help_select():
    return "only pre-build checks matching an id, name or family"


def run_prebuild(args) -> int:
    from .. import engine
    from ..cli import _split_terms, emit, run_checks, use_color
    from ..render import render

    report, _ = run_checks(args, _split_terms(args.select), _split_terms(args.ignore), groups=("pre-build",))
    emit(args, render(report, args.format, verbose=args.verbose, color=use_color(args), fail_on=args.fail_on))
    return engine.exit_code(report.findings, args.fail_on)


def _wheel_dist_name(path: Path) -> str:
    return re.sub(r"[-_.]+", "-", path.name.split("-")[0]).lower()


def _so_members(zf: zipfile.ZipFile):
    return [n for n in zf.namelist() if re.search(r"\.so(\.\d+)*$", n)]


def scan_target(path: str, python=None):
    """(distribution name, version, [scan items]) for a wheel, a directory or an installed distribution."""
    from ..elf.distfiles import distribution_files, elf_files_of, iter_elf_files
    from ..elf.fatbin import scan_file

    p = Path(path)
    if p.is_file() and p.suffix == ".whl":
        name = _wheel_dist_name(p)
        version = p.name.split("-")[1] if p.name.count("-") >= 2 else ""
        items = []
        with zipfile.ZipFile(p) as zf, tempfile.TemporaryDirectory(prefix="bwdoctor-verify-") as tmp:
            for member in _so_members(zf):  # one at a time: a vLLM .so is hundreds of MB
                dest = Path(tmp) / "lib.so"
                with zf.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                item = scan_file(str(dest))
                item["path"] = member
                items.append(item)
                dest.unlink()
        return name, version, items
    if p.is_dir():
        return p.name, "", [scan_file(f) for f in iter_elf_files(p)]
    if p.is_file():
        from ..elf.distfiles import is_elf

        if not is_elf(p):
            raise FileNotFoundError(f"{path}: not a wheel, an ELF library or a directory")
        return p.name.split(".")[0], "", [scan_file(str(p))]
    found = distribution_files(path, python)
    if not found:
        raise FileNotFoundError(f"{path}: not a wheel, a directory, or an installed distribution")
    return re.sub(r"[-_.]+", "-", found["name"]).lower(), found["version"], [
        scan_file(f) for f in elf_files_of(found["files"])]


def run_verify(args) -> int:
    from ..cli import UsageError, emit, make_context
    from ..engine import evaluate, exit_code
    from ..probes.gpucode import has_gpu_code, trim
    from ..registry import load

    ctx = make_context(args)
    targets = list(ctx.targets)
    if not targets:
        from ..engine import gather

        reg = load(no_plugins=True)
        facts, _ = gather(reg, ctx, ["targets"])
        targets = facts.get("targets") if isinstance(facts.get("targets"), list) else []
    if not targets:
        raise UsageError("no target GPU here: pass --target (e.g. --target sm_120)")
    try:
        name, version, items = scan_target(args.path, args.python)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"verify-build {args.path}: {exc}") from None
    files = [trim(i) for i in items if i["error"] or has_gpu_code(i)]
    fact = {name: {"version": version, "elf_files": len(items), "files": files}}
    checks = _checks_for(name)
    findings = evaluate(checks, {"targets": targets, "cuda_binaries": fact, "environment": dict(os.environ)})
    for f in findings:
        f.evidence.setdefault("distribution", name)
    if args.format == "json":
        doc = {"schema": "bwdoctor.verify-build/1", "path": args.path, "distribution": name, "version": version,
               "targets": targets, "files": files, "findings": [f.to_json() for f in findings]}
        emit(args, json.dumps(doc, indent=2) + "\n")
    else:
        lines = [f"{args.path}: {name} {version}, {len(files)} file(s) with GPU code, target(s) {', '.join(targets)}"]
        for f in findings:
            mark = {"pass": "✓", "skip": "-"}.get(f.status, "✗" if f.severity == "error" else "!")
            lines.append(f"  {mark} {f.message}")
        emit(args, "\n".join(lines) + "\n")
    code = exit_code(findings, "error")
    return 0 if code == 3 and files == [] and not items else code


def _checks_for(name: str):
    """The gpu-code check for a known library, else a generic one: every file with GPU code must run."""
    from ..registry import CHECK_ATTR, load

    reg = load(no_plugins=True)
    by_dist = {"torch": "BW301", "vllm": "BW302", "flash-attn": "BW303", "xformers": "BW304",
               "flashinfer-python": "BW305", "bitsandbytes": "BW306"}
    if name in by_dist:
        return [reg.checks[by_dist[name]]]
    return [getattr(_generic_check(name), CHECK_ATTR)]


def _generic_check(name: str):
    from bwdoctor.checks.gpucode import library_findings
    from bwdoctor.registry import check

    @check("BW399", "library-has-native-code", severity="error", kb="no-kernel-image")
    def library_has_native_code(targets, cuda_binaries):
        """Every CUDA library of the build has code for the target GPU."""
        return library_findings(name, name, targets, cuda_binaries,
                                lambda cc: f"rebuild with TORCH_CUDA_ARCH_LIST=\"{cc[0]}.{cc[1]}\"")

    return library_has_native_code
