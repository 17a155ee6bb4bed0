"""`bwdoctor explain`: an article by topic, or the topics that match pasted error text or a log — and, through
the engine, whether the checks behind that topic find it on this machine now."""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional, Tuple

from ..errors import UsageError
from ..model import Outcome
from ..render import add_format_option

SCHEMA = "bwdoctor.explain/1"
MAX_INPUT = 4 << 20  # a log longer than this keeps its first and last 2 MiB (the start-up, the failure)
FIFO_WAIT = 2.0  # seconds a named FIFO may stay silent before explain gives up on it
INPUT_HELP = """Input: a log file, a pipe (`cmd 2>&1 | bwdoctor explain -`, `--log /dev/stdin`) or a named FIFO is read
once. More than 4 MiB keeps the first and the last 2 MiB and says so. A pipe is read until its writer closes it;
a named FIFO that sends nothing for 2 s (no writer) is an error, exit 2; --wait SECONDS sets that wait for
both. A directory, a device or a socket is refused (exit 2)."""


def register(sub: Any, epilog: str = "") -> None:
    """Add `explain`."""
    e = sub.add_parser(
        "explain",
        help="print the knowledge-base article for a topic, check id, or pasted error text",
        epilog=INPUT_HELP + ("\n\n" + epilog if epilog else ""),
    )
    e.add_argument("topic", nargs="*", help="slug, alias, check id (BW201), check name, error text, or - for stdin")
    e.add_argument(
        "--log", metavar="FILE", help="scan a log file, a pipe or a FIFO (vLLM, torch, NCCL, pip, nvcc, CMake)"
    )
    e.add_argument(
        "--wait",
        metavar="SECONDS",
        type=_seconds,
        default=None,
        help="stop reading a pipe or FIFO after SECONDS without data (default: a pipe until it ends, a FIFO 2 s)",
    )
    add_format_option(e, "explain")
    e.add_argument("--no-machine", action="store_true", help="print the article only; do not check this machine")
    e.add_argument(
        "--model",
        metavar="DIR",
        help="with --log of a vLLM start-up: also plan this model with the "
        "logged settings and show prediction beside the log",
    )
    e.set_defaults(func=run)


def _seconds(value: str) -> float:
    import argparse
    import math

    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not math.isfinite(v) or v <= 0 or v > 86400:
        raise argparse.ArgumentTypeError(f"--wait takes seconds between 0 and 86400, not {value!r}")
    return v


def startup_figures(text: str, model_dir: Optional[str] = None) -> Optional[dict]:
    """Memory figures of a vLLM start-up log and, with a model directory, the plan for the same settings."""
    from ..capacity.logparse import compare, parse_startup_log

    figs = parse_startup_log(text)
    if not any(figs.get(k) is not None for k in ("weights_gib", "kv_cache_gib", "kv_tokens")):
        return None
    out: dict = {"figures": figs}
    if model_dir:
        from ..capacity.budget import PlanInput
        from ..capacity.model import load_model
        from ..capacity.planner import plan

        total = figs.get("gpu_total_gib")
        if not total:
            out["note"] = "the log names no GPU total memory: cannot plan the same run"
            return out
        try:
            m = load_model(model_dir)
            tp = int(figs.get("tensor_parallel_size") or 1)
            p = PlanInput(
                gpu_memory_gib=float(total),
                gpu_count=tp,
                tp=tp,
                utilization=float(figs.get("utilization") or 0.9),
                weights_gib=figs.get("weights_gib"),
                max_model_len=figs.get("max_model_len"),
                max_num_batched_tokens=figs.get("max_num_batched_tokens"),
                vllm_version=str(figs.get("vllm_version") or "0.15.1"),
            )
            out["comparison"] = compare(figs, plan(m, p))
        except Exception as exc:  # a model directory that cannot be read is reported, not raised
            out["note"] = f"could not plan {model_dir}: {type(exc).__name__}: {exc}"
    return out


def machine_now(args: Any, slug: str, reg: Any) -> list:
    """Findings of the checks behind a topic, run through the engine on this machine now ([] when none covers it).

    Only the facts those checks need are gathered, with the registry already loaded."""
    from .. import engine
    from ..checks.linkcauses import LINK_CAUSE_SLUGS
    from .common import source_from_args

    ids = [c.id for c in reg.checks.values() if c.kb == slug]
    if slug in LINK_CAUSE_SLUGS and "BW401" not in ids:
        ids.append("BW401")  # the link check reports these causes
    if not ids or getattr(args, "no_machine", False):
        return []
    try:
        report = engine.run(engine.Selection(select=ids, facts=()), source_from_args(args), reg)
    except Exception as exc:  # the article is the answer; a failing machine read is only a note
        return [{"id": "-", "status": "error", "message": f"could not check this machine: {exc}", "kb": slug}]
    found = [
        f.to_json() for f in report.findings if f.status in ("fail", "error") and (f.kb == slug or f.id != "BW401")
    ]
    if found:
        return found
    passed = sorted({f.id for f in report.findings if f.status == "pass"})
    if passed:  # at least one check looked and found nothing
        return [{"id": ",".join(passed), "status": "pass", "message": "not present on this machine now", "kb": slug}]
    reasons = list(dict.fromkeys(f.message.removeprefix("skipped: ") for f in report.findings if f.status == "skip"))
    why = "; ".join(reasons[:3]) + (f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else "")
    return [
        {
            "id": ",".join(ids),
            "status": "skip",
            "message": "could not be checked here" + (f" ({why})" if why else ""),
            "kb": slug,
        }
    ]


def decode_input(raw: bytes) -> str:
    """The text of a log or of pasted bytes: the ONE place bytes become text for the matcher."""
    return raw.decode("utf-8", "replace")


def read_input(path: Optional[str], what: str, wait: Optional[float] = None) -> Tuple[str, Optional[str]]:
    """(text, note) of a log file, a pipe, /dev/stdin or a FIFO (path) or of standard input (None), read ONCE
    and bounded (bwdoctor.fileio.read_input); the note says when the input was cut. Raises UsageError."""
    from .. import fileio

    try:
        got = fileio.read_input(path, MAX_INPUT, what=what, wait=wait, fifo_wait=FIFO_WAIT)
    except OSError as exc:
        raise UsageError(f"{what}: {fileio.describe(exc)}") from None
    return decode_input(got.data), got.note


def _read_input(args: Any) -> Tuple[Optional[str], Optional[str]]:
    """(text, note) of --log or `-`, or (None, None) when the topic words are the input."""
    wait = getattr(args, "wait", None)
    if args.log:
        return read_input(args.log, f"--log {args.log}", wait)
    if args.topic == ["-"]:
        if sys.stdin is not None and sys.stdin.isatty():
            print("bwdoctor explain: reading the error text from the terminal; end it with Ctrl-D", file=sys.stderr)
        return read_input(None, "standard input", wait)
    if not args.topic:
        raise UsageError(
            "explain needs a topic, a check id, error text, --log FILE, or - for stdin "
            "(bwdoctor list kb shows the topics)"
        )
    return None, None


def run(args: Any) -> Outcome:
    """An article (exit 0), the matches for text/log (exit 0, or 3 when none), or nearest topics (exit 2)."""
    from .. import knowledge, registry

    reg = registry.load(no_plugins=args.no_plugins)
    checks = list(reg.checks.values())
    arts = knowledge.load_all()
    text, note = _read_input(args)
    if text is None:
        topic = " ".join(args.topic)
        art = knowledge.lookup(topic, checks)
        if art is not None:
            return Outcome(
                {
                    "schema": SCHEMA,
                    "article": art.to_json(),
                    "matches": [],
                    "machine": machine_now(args, art.slug, reg),
                },
                0,
            )
        if "\n" not in topic and len(topic) < 60 and " " not in topic.strip():
            near = knowledge.nearest(topic, checks)
            raise UsageError(
                f"unknown topic {topic!r}." + (f" Nearest: {', '.join(near)}" if near else "") + " (bwdoctor list kb)"
            )
        text = topic
    from ..explain import analyse_log, analyse_text

    # the log was read once (a pipe or /dev/stdin cannot be read twice); its lines are scanned as a log
    found = analyse_log(text.splitlines(keepends=True), arts) if args.log else analyse_text(text, arts)
    matches = found["matches"]
    doc: Dict[str, Any] = {
        "schema": SCHEMA,
        "article": arts[matches[0]["slug"]].to_json() if matches else None,
        "matches": matches,
        "machine": machine_now(args, matches[0]["slug"], reg) if matches else [],
        "verdict": matches[0]["tier"] if matches else "none",
        "evidence": found["evidence"],
    }
    if not matches:
        doc["nearest"] = found.get("nearest", [])
        if found.get("not_environment"):
            doc["not_environment"] = found["not_environment"]
        if found.get("paste_hint"):
            doc["paste_hint"] = found["paste_hint"]
    startup = startup_figures(text, getattr(args, "model", None)) if args.log else None
    if startup:
        doc["startup"] = startup
    return Outcome(doc, 0 if matches else 3, [note] if note else [])
