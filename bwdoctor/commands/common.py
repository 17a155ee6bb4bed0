"""What every command view shares: the source of facts named by the command line, and term splitting."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, List

from ..errors import UsageError

if TYPE_CHECKING:
    from ..context import Context
    from ..engine import Source


def split_terms(values: List[str]) -> List[str]:
    """--select a,b --select c → [a, b, c]."""
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


def context_from_args(args: Any) -> "Context":
    """The probe Context for parsed arguments (validating --root, --python and --target)."""
    from ..context import Context
    from ..domain.arch import normalize_targets

    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"--root {args.root}: not a directory")
    # one rule for --target (repeatable, each comma-separated) and $BWDOCTOR_TARGET (comma-separated)
    wanted, what = (args.target, "--target") if args.target else ([os.environ.get("BWDOCTOR_TARGET", "")], None)
    try:
        targets = normalize_targets(wanted)
    except ValueError as exc:
        raise UsageError(f"{what or 'BWDOCTOR_TARGET'}: {exc}") from None
    if args.python and not Context(root=root).has_path(args.python):  # under --root: a path inside the tree
        raise UsageError(f"--python {args.python}: no such file" + ("" if str(args.root) == "/" else " in the tree"))
    options = {}
    if getattr(args, "vllm_version", None):
        options["vllm_version"] = args.vllm_version
    if getattr(args, "src", None):
        if not Path(args.src).is_dir():
            raise UsageError(f"--src {args.src}: not a directory")
        options["src"] = str(Path(args.src).resolve())
    ctx = Context(
        root=root,
        python=args.python,
        env=dict(os.environ),
        targets=targets,
        configs=list(getattr(args, "config", []) or []),
        live=bool(getattr(args, "live", False)),
        options=options,
    )
    if ctx.in_tree:  # a --root tree is another machine: its environment is what it recorded, never this shell's
        ctx.env = ctx.recorded_environment()
    return ctx


def source_from_args(args: Any) -> "Source":
    """The source of facts the command line names: a facts file (--facts), else the machine (--root)."""
    from ..engine import Source

    ctx = context_from_args(args)
    facts_file = getattr(args, "facts", None)
    if isinstance(facts_file, str) and facts_file:
        return Source.facts_file(facts_file, ctx)
    return Source(context=ctx)


def artifacts_and_targets(ctx: "Context", items: List[str]) -> "tuple[list, List[str]]":
    """The named_artifacts fact for these arguments (files, directories, wheels, distributions; progress on a
    terminal) and the target labels: --target, else the GPUs present (none known: an empty list). Raises
    UsageError when the arguments cannot be read at all."""
    from .. import engine
    from ..model import Unavailable

    ctx.options["artifacts"] = list(items)
    ctx.options["progress"] = True  # drawn on stderr only when it is a terminal
    names = ["named_artifacts", "python_env"] + ([] if ctx.targets else ["targets"])
    facts, _ = engine.gather_facts(names, engine.Source(context=ctx))
    named = facts["named_artifacts"]
    if isinstance(named, Unavailable):
        raise UsageError(f"cannot read the arguments: {named.reason}")
    labels = list(ctx.targets)
    if not labels and isinstance(facts.get("targets"), list):
        labels = [t for t in facts["targets"] if isinstance(t, str)]
    return named, labels
