"""The explain command: an article by topic, or the topics that match pasted error text or a log."""
from __future__ import annotations

import json
import sys

from . import knowledge
from .redact import redact

MAX_STDIN = 64 * 1024 * 1024


def _matcher():
    """match_text/match_log from bwdoctor.explain when present, else a plain signature matcher."""
    try:
        from .explain import match_log, match_text

        return match_text, match_log
    except ImportError:
        return _match_text, None


def _match_text(text, articles):
    """Articles whose signatures match the text, best first (first matching line, share of signatures)."""
    out = []
    lines = text.splitlines()
    for art in articles.values():
        hits = 0
        first = None
        for pat in art.patterns:
            for i, line in enumerate(lines, 1):
                if pat.search(line):
                    hits += 1
                    first = (i, line) if first is None or i < first[0] else first
                    break
        if hits:
            out.append({"slug": art.slug, "score": round(min(1.0, 0.5 + 0.5 * hits / max(1, len(art.patterns))), 3),
                        "line": first[0], "excerpt": first[1].strip()[:300], "details": {}})
    return sorted(out, key=lambda m: -m["score"])


def _article_text(art, checks) -> str:
    lines = [f"{art.title}  [{art.slug}]", ""]
    for name, body in art.sections.items():
        lines += [name.upper(), body, ""]
    if art.checks:
        lines.append("checks: " + ", ".join(art.checks) + f"   (bwdoctor check --select {art.slug and art.checks[0]})")
    if art.references:
        lines.append("references:")
        lines += [f"  {r}" for r in art.references]
    return "\n".join(lines) + "\n"


def startup_figures(text: str, model_dir=None):
    """Memory figures of a vLLM start-up log and, with a model directory, the plan for the same settings."""
    try:
        from .capacity.logparse import compare, parse_startup_log
    except ImportError:
        return None
    figs = parse_startup_log(text)
    if not any(figs.get(k) is not None for k in ("weights_gib", "kv_cache_gib", "kv_tokens")):
        return None
    out = {"figures": figs}
    if model_dir:
        from .capacity.budget import PlanInput
        from .capacity.model import load_model
        from .capacity.planner import plan

        total = figs.get("gpu_total_gib")
        if not total:
            out["note"] = "the log names no GPU total memory: cannot plan the same run"
            return out
        try:
            m = load_model(model_dir)
            tp = int(figs.get("tensor_parallel_size") or 1)
            p = PlanInput(gpu_memory_gib=float(total), gpu_count=tp, tp=tp,
                          utilization=float(figs.get("utilization") or 0.9),
                          weights_gib=figs.get("weights_gib"), max_model_len=figs.get("max_model_len"),
                          max_num_batched_tokens=figs.get("max_num_batched_tokens"),
                          vllm_version=str(figs.get("vllm_version") or "0.15.1"))
            out["comparison"] = compare(figs, plan(m, p))
        except Exception as exc:  # a model directory that cannot be read is reported, not raised
            out["note"] = f"could not plan {model_dir}: {type(exc).__name__}: {exc}"
    return out


def _startup_text(s: dict) -> str:
    f = s["figures"]
    lines = ["vLLM start-up figures from the log:"]
    for k, label in (("vllm_version", "vLLM"), ("tensor_parallel_size", "tensor parallel"), ("utilization",
                     "gpu-memory-utilization"), ("gpu_total_gib", "GPU total GiB"), ("weights_gib", "model loading GiB"),
                     ("kv_cache_gib", "available KV cache GiB"), ("kv_tokens", "KV cache tokens"),
                     ("max_concurrency", "max concurrency")):
        if f.get(k) is not None:
            lines.append(f"  {label:<24} {f[k]}")
    cmp_ = s.get("comparison")
    if cmp_:
        lines.append("beside bwdoctor plan's prediction:")
        for k, row in cmp_["figures"].items():
            err = f"{row['rel_error'] * 100:+.1f}%" if row.get("rel_error") is not None else ""
            lines.append(f"  {k:<24} logged {row['logged']}  predicted {row['predicted']}  {err}")
        lines += [f"  note: {n}" for n in cmp_.get("notes", [])]
    if s.get("note"):
        lines.append(f"  note: {s['note']}")
    return "\n".join(lines) + "\n\n"


def machine_now(args, slug: str, checks) -> list:
    """Findings of the checks behind a topic, run on this machine now ([] when no check covers it)."""
    from .checks.linkcauses import LINK_CAUSE_SLUGS
    from .cli import run_checks

    ids = [c.id for c in checks if c.kb == slug]
    if slug in LINK_CAUSE_SLUGS and "BW401" not in ids:
        ids.append("BW401")  # the link check reports these causes
    if not ids or getattr(args, "no_machine", False):
        return []
    try:
        report, _ = run_checks(args, ids, [])
    except Exception as exc:  # the article is the answer; a failing machine read is only a note
        return [{"id": "-", "status": "error", "message": f"could not check this machine: {exc}", "kb": slug}]
    return [f.to_json() for f in report.findings
            if f.status in ("fail", "error") and (f.kb == slug or f.id != "BW401")] or \
        [{"id": ",".join(ids), "status": "pass", "message": "not present on this machine now", "kb": slug}]


def _machine_text(found: list) -> str:
    if not found:
        return ""
    lines = ["ON THIS MACHINE NOW"]
    for f in found:
        mark = {"pass": "✓", "fail": "✗", "error": "✗"}.get(f["status"], "-")
        lines.append(f"  {mark} {f['id']} {redact(f['message'])}")
        fix = (f.get("evidence") or {}).get("fix") if isinstance(f.get("evidence"), dict) else None
        if fix:
            lines.append(f"      fix: {redact(fix)}")
    return "\n".join(lines) + "\n"


def run_explain(args) -> int:
    """Print an article (exit 0), the matches for text/log (exit 0, or 3 when none), or nearest topics (exit 2)."""
    from . import registry
    from .cli import UsageError, emit

    reg = registry.load(no_plugins=args.no_plugins)
    checks = list(reg.checks.values())
    arts = knowledge.load_all()
    text = None
    if args.log:
        try:
            with open(args.log, "rb") as fh:
                text = fh.read(MAX_STDIN).decode("utf-8", "replace")
        except OSError as exc:
            raise UsageError(f"--log {args.log}: {exc.strerror or exc}") from None
    elif args.topic == ["-"]:
        text = sys.stdin.buffer.read(MAX_STDIN).decode("utf-8", "replace")
    elif not args.topic:
        raise UsageError("explain needs a topic, a check id, error text, --log FILE, or - for stdin "
                         "(bwdoctor list kb shows the topics)")
    else:
        topic = " ".join(args.topic)
        art = knowledge.lookup(topic, checks)
        if art is not None:
            now = machine_now(args, art.slug, checks)
            if args.format == "json":
                emit(args, json.dumps({"schema": "bwdoctor.explain/1", "article": art.to_json(), "matches": [],
                                       "machine": now}, indent=2) + "\n")
            else:
                emit(args, _article_text(art, checks) + "\n" + _machine_text(now))
            return 0
        if "\n" not in topic and len(topic) < 60 and " " not in topic.strip():
            near = knowledge.nearest(topic, checks)
            print(f"bwdoctor: unknown topic {topic!r}." + (f" Nearest: {', '.join(near)}" if near else "") +
                  " (bwdoctor list kb)", file=sys.stderr)
            return 2
        text = topic
    match_text, match_log = _matcher()
    matches = match_log(args.log, arts) if args.log and match_log else match_text(text, arts)
    startup = startup_figures(text, getattr(args, "model", None)) if args.log else None
    for m in matches:
        m["excerpt"] = redact(m.get("excerpt") or "")
    now = machine_now(args, matches[0]["slug"], checks) if matches else []
    if args.format == "json":
        doc = {"schema": "bwdoctor.explain/1", "matches": matches, "machine": now}
        if startup:
            doc["startup"] = startup
        emit(args, json.dumps(doc, indent=2) + "\n")
    else:
        if startup:
            emit(args, _startup_text(startup))
        if not matches:
            emit(args, "no known failure signature in that text (bwdoctor list kb shows the topics)\n")
        else:
            best = arts[matches[0]["slug"]]
            head = "".join(f"  {m['score']:.2f}  {m['slug']:<30} line {m['line']}: {m['excerpt'][:80]}\n"
                           for m in matches[:5])
            emit(args, "matches (best first):\n" + head + "\n" + _article_text(best, checks) + "\n" + _machine_text(now))
    return 0 if matches else 3
