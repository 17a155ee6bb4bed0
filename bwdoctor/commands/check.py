"""`bwdoctor check` (run-time and serve-config checks) and `bwdoctor prebuild` (the pre-build gate)."""

from __future__ import annotations

from typing import Any, Sequence

from ..model import Outcome
from ..render import add_format_option
from .common import source_from_args, split_terms

CHECK_HELP = "run the checks and report what will break (the default command)"
PREBUILD_HELP = """Run the checks of group pre-build before a source build of vLLM, flash-attn or another CUDA
extension: nvcc supports the target and matches torch's CUDA, TORCH_CUDA_ARCH_LIST covers the target,
no FA3 on Blackwell, MAX_JOBS fits RAM, disk, host compiler, Python headers and, with --src, the
tree's torch pins. Exit 1 blocks the build (use it as RUN in a Dockerfile, a CI step or a pre-commit hook)."""


def _gate_options(p: Any, select_help: str) -> None:
    p.add_argument("--select", action="append", default=[], metavar="TERM", help=select_help)
    p.add_argument("--ignore", action="append", default=[], metavar="TERM", help="skip matching checks")
    add_format_option(p, "report")
    p.add_argument(
        "--fail-on",
        choices=("error", "warning", "info"),
        default="error",
        help="lowest severity that makes the exit code 1 (default error)",
    )
    p.add_argument("--facts", metavar="FILE", help="evaluate facts saved by 'bwdoctor facts' instead of this machine")


def register(sub: Any, epilog: str = "") -> None:
    """Add `check` and `prebuild`."""
    c = sub.add_parser("check", help=CHECK_HELP, description=CHECK_HELP, epilog=epilog)
    _gate_options(c, "only checks matching an id, name, family or group (repeatable, comma-separated)")
    c.add_argument("--config", action="append", default=[], metavar="FILE", help="vLLM serve config to lint")
    c.add_argument("--live", action="store_true", help="also run the live torch/GPU probe in a subprocess")
    c.add_argument(
        "--vllm-version", metavar="X.Y.Z", help="lint serve configs for this vLLM release (default: the installed one)"
    )
    c.set_defaults(func=run_check)
    p = sub.add_parser(
        "prebuild",
        help="the pre-build gate: will a source build work and produce code for the GPU?",
        description=PREBUILD_HELP,
    )
    p.add_argument("--src", metavar="DIR", help="the source tree to be built (reads its torch pins)")
    _gate_options(p, "only pre-build checks matching an id, name or family")
    p.set_defaults(func=run_prebuild)


def gate(args: Any, groups: Sequence[str]) -> Outcome:
    """The report of the selected checks (default: these groups) and its exit code."""
    from .. import engine

    selection = engine.Selection(select=split_terms(args.select), ignore=split_terms(args.ignore), groups=groups)
    report = engine.run(selection, source_from_args(args), no_plugins=args.no_plugins)
    return Outcome(report.to_json(), engine.exit_code(report.findings, args.fail_on), incomplete(report), report)


def incomplete(report: Any) -> list:
    """stderr lines naming the checks that crashed or could not run (they keep the exit code from 0)."""
    from ..model import CAUSE_CRASH, CAUSE_PROBE, error_cause

    out = []
    for cause, what in ((CAUSE_CRASH, "crashed"), (CAUSE_PROBE, "could not run (a probe failed)")):
        ids = [f"{f.id} {f.name}" for f in report.findings if f.status == "error" and error_cause(f) == cause]
        if ids:
            out.append(f"{len(ids)} check(s) {what} and were reported as errors: {', '.join(ids)}")
    return out


def run_check(args: Any) -> Outcome:
    # Without --select, `check` runs the run-time and serve-config checks; the pre-build group is
    # `bwdoctor prebuild`'s (a serving host needs no ccache advice).
    return gate(args, ("runtime", "serve"))


def run_prebuild(args: Any) -> Outcome:
    return gate(args, ("pre-build",))
