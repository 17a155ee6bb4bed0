"""`bwdoctor verify-build`: does a finished build (wheel, build directory, .so, installed distribution) have GPU
code for the target? The artifact is a fact source (probe named_artifacts); its checks run through the engine."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import UsageError
from ..model import Finding, Outcome, Unavailable
from ..render import add_format_option
from .common import context_from_args

SCHEMA = "bwdoctor.verify-build/1"
VERIFY_HELP = """Check that a finished build has GPU code for the target: PATH is a wheel (.whl), a build
directory, one .so file, or an installed distribution name. Libraries built only for other GPUs on purpose (vLLM's
FA3, FlashMLA and other arch-specific extensions) are reported as 'not for this GPU'. Exit 0 the build has code
for the target; 1 a library that will load lacks it; 2 PATH cannot be used (missing, not a build, no ELF library
in it, none readable) or no target is known; 3 no verdict (a library could not be read, or none has GPU code)."""
BY_DIST = {
    "torch": "BW301",
    "vllm": "BW302",
    "flash-attn": "BW303",
    "xformers": "BW304",
    "flashinfer-python": "BW305",
    "bitsandbytes": "BW306",
}


def register(sub: Any, epilog: str = "") -> None:
    """Add `verify-build`."""
    v = sub.add_parser(
        "verify-build",
        help="does a built wheel / build dir / installed package have code for the GPU?",
        description=VERIFY_HELP,
    )
    v.add_argument("path", metavar="PATH", help="a .whl file, a directory, or an installed distribution name")
    add_format_option(v, "verify-build")
    v.set_defaults(func=run)


def run(args: Any) -> Outcome:
    from .. import engine
    from ..elf.fatbin import has_gpu_code, trim
    from ..registry import load

    reg = load(no_plugins=True)
    ctx = context_from_args(args)
    ctx.options["artifacts"] = [args.path]
    ctx.options["progress"] = True  # drawn on stderr only when it is a terminal
    facts, _ = engine.gather_facts(["named_artifacts", "targets", "environment"], engine.Source(context=ctx), reg)
    targets = list(ctx.targets) or (facts["targets"] if isinstance(facts["targets"], list) else [])
    if not targets:
        raise UsageError("no target GPU here: pass --target (e.g. --target sm_120)")
    named = facts["named_artifacts"]
    if isinstance(named, Unavailable):
        raise UsageError(f"verify-build {args.path}: {named.reason}")
    art = named[0]
    if art.get("problem"):
        raise UsageError(f"verify-build {art['problem']}")
    if art["kind"] == "not-elf":
        raise UsageError(f"verify-build {args.path}: not a wheel, an ELF library or a directory")
    name, items = art["name"], art["files"]
    files = [trim(i) for i in items if i["error"] or has_gpu_code(i)]
    cuda_binaries = {name: {"version": art["version"], "elf_files": len(items), "files": files}}
    source = engine.Source.facts(
        {"targets": targets, "cuda_binaries": cuda_binaries, "environment": facts["environment"]}, label="the build"
    )
    report = engine.run(engine.Selection(checks=_checks_for(name, reg), facts=()), source, reg)
    for f in report.findings:
        f.evidence.setdefault("distribution", name)
    report.notes = []
    doc = {
        "schema": SCHEMA,
        "path": args.path,
        "distribution": name,
        "version": art["version"],
        "targets": targets,
        "files": files,
        "findings": [f.to_json() for f in report.findings],
    }
    skipped = [f"{i['path']}: {i['error']}" for i in items if str(i.get("error") or "").startswith("not extracted")]
    return Outcome(doc, verify_exit_code(args.path, items, report.findings), skipped, report)


def verify_exit_code(path: str, items: list, findings: Sequence[Finding]) -> int:
    """0 every library has code for the target; 1 one that will load lacks it; 3 no verdict (a library could not
    be read, or none has GPU code). Raises UsageError (exit 2) when PATH holds no library that could be read:
    an empty directory or a corrupt .so is nothing verified, never a pass."""
    from .. import engine

    if not items:
        raise UsageError(f"verify-build {path}: no ELF library in it (a truncated or corrupt .so is not one)")
    unreadable = [i for i in items if i.get("error")]
    if len(unreadable) == len(items):
        first = unreadable[0]
        raise UsageError(f"verify-build {path}: no library in it could be read: {first['path']}: {first['error']}")
    code = engine.exit_code(findings, "error")
    return engine.EXIT_INCOMPLETE if code == engine.EXIT_OK and unreadable else code


def _checks_for(name: str, reg: Any) -> list:
    """The gpu-code check for a known library, else a generic one: every file with GPU code must run."""
    from ..registry import CHECK_ATTR

    if name in BY_DIST:
        return [reg.checks[BY_DIST[name]]]
    return [getattr(_generic_check(name), CHECK_ATTR)]


def _generic_check(name: str) -> Any:
    from bwdoctor.checks.gpucode import library_findings
    from bwdoctor.registry import check

    @check("BW399", "library-has-native-code", severity="error", kb="no-kernel-image")
    def library_has_native_code(targets: Any, cuda_binaries: Any) -> Any:
        """Every CUDA library of the build has code for the target GPU."""
        return library_findings(
            name, name, targets, cuda_binaries, lambda cc: f'rebuild with TORCH_CUDA_ARCH_LIST="{cc[0]}.{cc[1]}"'
        )

    return library_has_native_code
