"""`bwdoctor explain`: an article by topic, or the topics that match pasted error text or a log — and, through
the engine, whether the checks behind that topic find it on this machine now."""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional

from ..errors import UsageError
from ..model import Outcome
from ..render import add_format_option

SCHEMA = "bwdoctor.explain/1"
MAX_STDIN = 64 * 1024 * 1024


def register(sub: Any, epilog: str = "") -> None:
    """Add `explain`."""
    e = sub.add_parser("explain", help="print the knowledge-base article for a topic, check id, or pasted error text")
    e.add_argument("topic", nargs="*", help="slug, alias, check id (BW201), check name, error text, or - for stdin")
    e.add_argument("--log", metavar="FILE", help="scan a log file (vLLM, torch, NCCL, pip, nvcc, CMake)")
    add_format_option(e, "explain")
    e.add_argument("--no-machine", action="store_true", help="print the article only; do not check this machine")
    e.add_argument(
        "--model",
        metavar="DIR",
        help="with --log of a vLLM start-up: also plan this model with the "
        "logged settings and show prediction beside the log",
    )
    e.set_defaults(func=run)


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
    return [
        f.to_json() for f in report.findings if f.status in ("fail", "error") and (f.kb == slug or f.id != "BW401")
    ] or [{"id": ",".join(ids), "status": "pass", "message": "not present on this machine now", "kb": slug}]


def _read_input(args: Any) -> Optional[str]:
    if args.log:
        try:
            with open(args.log, "rb") as fh:
                return fh.read(MAX_STDIN).decode("utf-8", "replace")
        except OSError as exc:
            raise UsageError(f"--log {args.log}: {exc.strerror or exc}") from None
    if args.topic == ["-"]:
        return sys.stdin.buffer.read(MAX_STDIN).decode("utf-8", "replace")
    if not args.topic:
        raise UsageError(
            "explain needs a topic, a check id, error text, --log FILE, or - for stdin "
            "(bwdoctor list kb shows the topics)"
        )
    return None


def run(args: Any) -> Outcome:
    """An article (exit 0), the matches for text/log (exit 0, or 3 when none), or nearest topics (exit 2)."""
    from .. import knowledge, registry

    reg = registry.load(no_plugins=args.no_plugins)
    checks = list(reg.checks.values())
    arts = knowledge.load_all()
    text = _read_input(args)
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
    startup = startup_figures(text, getattr(args, "model", None)) if args.log else None
    if startup:
        doc["startup"] = startup
    return Outcome(doc, 0 if matches else 3)
