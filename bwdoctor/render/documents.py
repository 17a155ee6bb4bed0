"""Text for the documents other than the check report: facts, list, explain, cubins, symbols, plan,
verify-build, fleet. Each function takes the (already redacted) JSON document and the render options."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from ..model import fact_from_json
from .common import MARK, mark
from .oneline import cut
from .text import _brief


def facts_text(doc: dict, _opts: Any) -> str:
    return "".join(f"{n}: {_brief(fact_from_json(v), 2000)}\n" for n, v in doc["facts"].items())


def list_text(doc: dict, _opts: Any) -> str:
    rows = doc["items"]
    if doc["what"] == "checks":
        return "".join(f"{r['id']}  {r['name']:<34} {r['family']:<12} {r['severity']:<8} {r['title']}\n" for r in rows)
    if doc["what"] == "probes":
        return "".join(f"{r['name']:<20} {r['budget']:>5.1f}s  {r['title']}\n" for r in rows)
    return "".join(f"{r['slug']:<32} {r['title']}\n" for r in rows)


def _article_text(art: dict) -> str:
    lines = [f"{art['title']}  [{art['slug']}]", ""]
    for name, body in art["sections"].items():
        lines += [name.upper(), body, ""]
    if art["checks"]:
        lines.append("checks: " + ", ".join(art["checks"]) + f"   (bwdoctor check --select {art['checks'][0]})")
    if art["references"]:
        lines.append("references:")
        lines += [f"  {r}" for r in art["references"]]
    return "\n".join(lines) + "\n"


def _machine_text(found: List[dict]) -> str:
    if not found:
        return ""
    lines = ["ON THIS MACHINE NOW"]
    shown: set = set()
    for f in found:
        lines.append(f"  {mark(f['status'])} {f['id']} {f['message']}")
        fix = (f.get("evidence") or {}).get("fix") if isinstance(f.get("evidence"), dict) else None
        if fix and fix not in shown:  # a fix shared by several findings: once, at the first
            shown.add(fix)
            lines.append(f"      fix: {fix}")
    return "\n".join(lines) + "\n"


def _startup_text(s: dict) -> str:
    f = s["figures"]
    lines = ["vLLM start-up figures from the log:"]
    for k, label in (
        ("vllm_version", "vLLM"),
        ("tensor_parallel_size", "tensor parallel"),
        ("utilization", "gpu-memory-utilization"),
        ("gpu_total_gib", "GPU total GiB"),
        ("weights_gib", "model loading GiB"),
        ("kv_cache_gib", "available KV cache GiB"),
        ("kv_tokens", "KV cache tokens"),
        ("max_concurrency", "max concurrency"),
    ):
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


def explain_text(doc: dict, _opts: Any) -> str:
    out = _startup_text(doc["startup"]) if doc.get("startup") else ""
    matches = doc["matches"]
    if doc["article"] is None:
        out += "no match: no known failure signature in that text, and no topic scored above the threshold\n"
        if doc.get("not_environment"):
            out += f"  it reads as an error of the model, request or code: {doc['not_environment']}\n"
        if doc.get("paste_hint"):
            out += f"  {doc['paste_hint']}\n"
        near = doc.get("nearest") or []
        if near:
            out += "nearest topics (not a diagnosis):\n" + "".join(
                f"  {n['slug']:<30} {n['title']}  (bwdoctor explain {n['slug']})\n" for n in near
            )
        return out + "(bwdoctor list kb shows the topics)\n"
    if matches:
        out += "matches (best first):\n"
        for m in matches[:5]:
            tier = m.get("tier", "exact")
            out += f"  {m['score']:.2f}  {tier:<6} {m['slug']:<30} line {m['line']}: {m['excerpt'][:80]}\n"
            if tier == "likely":
                out += f"        evidence (score {m.get('rank_score', 0):g}): {', '.join(m.get('evidence', [])[:6])}\n"
        out += "\n"
    return out + _article_text(doc["article"]) + "\n" + _machine_text(doc["machine"])


def cubins_text(doc: dict, opts: Any) -> str:
    """One block per file with GPU code (or an error), then a summary line."""
    lines = []
    with_code = 0
    for f in doc["files"]:
        has_code = f["entries"] > 0
        with_code += has_code
        if not (has_code or f["error"] or opts.show_all):
            continue
        dist = f"  [{f['distribution']}]" if f.get("distribution") else ""
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
    errors = sum(1 for f in doc["files"] if f["error"])
    lines.append(f"{len(doc['files'])} ELF file(s), {with_code} with GPU code, {errors} unreadable")
    lines += [f"error: {p}" for p in doc["problems"]]
    return "\n".join(lines) + "\n"


def kernels_text(doc: dict, opts: Any) -> str:
    """Per file: units and those without code per target; families with their code per target."""
    lines = []
    targets = doc["targets"]
    for f in doc["files"]:
        dist = f"  [{f['distribution']}]" if f.get("distribution") else ""
        lines.append(f"{f['path']}{dist}")
        if f["error"]:
            lines.append(f"  error: {f['error']}")
        without = ", ".join(f"{n} without {t}" for t, n in f["units_without_target"].items())
        lines.append(f"  {f['units']} units" + (f"; {without}" if without else ""))
        for u in f["unit_list"]:
            missing = [t for t, s in u["verdicts"].items() if s == "none"]
            if not (missing or opts.show_all):
                continue
            fams = ", ".join(f"{k} {n}" for k, n in list((u.get("families") or {}).items())[:3])
            code = " ".join(u["elf"] + u["ptx"]) or "-"
            note = f"  no code for {' '.join(missing)}" if missing else ""
            lines.append(f"    unit {u['section']}#{u['index']}: {code}{note}" + (f"  [{fams}]" if fams else ""))
            for err in u.get("errors") or []:
                lines.append(f"      error: {err}")
        fams = f.get("families")
        if fams:
            head = "  families" + "".join(f"  {t:>14}" for t in targets)
            lines.append(head)
            for name, fam in fams.items():
                cells = ""
                for t in targets:
                    miss = fam["kernels_without_target"].get(t, 0)
                    cell = fam["targets"].get(t, "?") + (f" -{miss}" if miss else "")
                    cells += f"  {cell:>14}"
                lines.append(f"    {name[:40]:40} {fam['kernels']:>6}{cells}")
            lines.append("  (-N: kernels of the family with no code for that target)")
    if not doc["files"]:
        lines.append("no GPU code in the arguments")
    elif not doc["names"]:
        lines.append("kernel families: add --names")
    lines += [f"error: {p}" for p in doc["problems"]]
    return "\n".join(lines) + "\n"


def symbols_text(doc: dict, _opts: Any) -> str:
    lines = []
    for r in doc["files"]:
        lines.append(
            f"{MARK['pass'] if r['loads'] else MARK['error']} {r['path']}"
            + (f"  [{r['distribution']}]" if r.get("distribution") else "")
        )
        if r["loads"]:
            continue
        lines.append(f"    cause: {r['cause']} — {r['summary']}  (bwdoctor explain {r['cause']})")
        if r.get("import"):
            lines.append(f"    fails: import {r['import']}")
        elif r.get("soft"):
            lines.append(f"    loaded optionally: {r['soft']}")
        for m in r["missing_libraries"]:
            lines.append(
                f"    missing {m['name']} (needed by {m['needed_by']}); tried: "
                + (", ".join(m["tried"]) or "no directory")
            )
        for v in r["missing_versions"]:
            lines.append(f"    version {v['version']} not found in {v['provider']} (required by {v['required_by']})")
        for u in r["undefined"]:
            ver = f"@{u['version']}" if u.get("version") else ""
            lines.append(f"    undefined {u['symbol']}{ver}" + (f"  = {u['demangled']}" if u.get("demangled") else ""))
        if r["undefined_count"] > len(r["undefined"]):
            lines.append(f"    … {r['undefined_count'] - len(r['undefined'])} more undefined symbols")
    return "\n".join(lines) + "\n"


def plan_text(r: dict, _opts: Any) -> str:
    ok = "fits" if r["fits"] else "DOES NOT FIT"
    lines = [
        f"{r['model']}: {ok}",
        f"  weights per GPU   {r['weights_gib_per_gpu']:.2f} GiB ({r['weights_source']})",
        f"  requested         {r['requested_gib']:.2f} GiB (utilization × total)",
        f"  overhead          {r['overhead_gib']['total_gib']:.2f} GiB (activation/sampler peak, runtime, NCCL, "
        "graphs)",
        f"  KV cache          {r['kv_cache_gib']:.2f} GiB, {r['kv_bytes_per_token']:,} B/token "
        f"({r['kv_cache_dtype_reason']})",
        f"  KV tokens         {r['kv_tokens']:,}",
        f"  concurrency       {r['max_concurrency']:.2f}× at {r['max_model_len']:,} tokens",
    ]
    for f in r["findings"]:
        lines.append(f"  {mark('fail', f['severity'])} [{f['slug']}] {f['message']}")
    if r.get("log"):
        lines.append("")
        lines.append("beside the log:")
        for k, row in r["log"]["figures"].items():
            err = f"  ({row['rel_error'] * 100:+.1f}%)" if row.get("rel_error") is not None else ""
            lines.append(f"  {k:<16} logged {row['logged']}  predicted {row['predicted']}{err}")
        lines += [f"  note: {n}" for n in r["log"]["notes"]]
    return "\n".join(lines) + "\n"


def verify_text(doc: dict, _opts: Any) -> str:
    files = doc["files"]
    lines = [
        f"{doc['path']}: {doc['distribution']} {doc['version']}, {len(files)} file(s) with GPU code, "
        f"target(s) {', '.join(doc['targets'])}"
    ]
    for f in doc["findings"]:
        lines.append(f"  {mark(f['status'], f['severity'])} {f['message']}")
    return "\n".join(lines) + "\n"


def fleet_text(doc: dict, _opts: Any) -> str:
    """A per-node summary table and the cross-node differences."""
    rows = [("node", "failed", "warnings", "passed", "first problem")]
    for n in doc["nodes"]:
        fs = n["report"]["findings"]
        bad = [f for f in fs if f["status"] in ("fail", "error") and f["severity"] == "error"]
        warn = [f for f in fs if f["status"] == "fail" and f["severity"] == "warning"]
        first = (bad or warn or [{"id": "", "message": ""}])[0]
        rows.append(
            (
                n["node"],
                str(len(bad)),
                str(len(warn)),
                str(sum(f["status"] == "pass" for f in fs)),
                cut(f"{first['id']} {first['message']}".strip(), 66),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.append("")
    diffs = [f for f in doc["findings"] if f["status"] in ("fail", "error")]
    if not diffs:
        lines.append(f"{MARK['pass']} no drift across {len(doc['nodes'])} node(s)")
    shown: set = set()
    for f in diffs:
        lines.append(f"{mark(f['status'], f['severity'])} {f['id']} {f['name']}: {f['message']}")
        fix = (f.get("evidence") or {}).get("fix")
        if fix and fix not in shown:  # BW901 gives every silent node the same fix: once, at the first
            shown.add(fix)
            lines.append(f"    fix: {fix}")
    lines.append("more: bwdoctor explain fleet-drift")
    return "\n".join(lines) + "\n"


def recommend_text(doc: dict, _opts: Any) -> str:
    """The inputs, each ranked plan (packages with their code per target, commands, env, notes), the blockers."""
    from .recommend_text import render

    return render(doc)


TEXT: Dict[str, Callable[[dict, Any], str]] = {
    "facts": facts_text,
    "list": list_text,
    "explain": explain_text,
    "cubins": cubins_text,
    "kernels": kernels_text,
    "symbols": symbols_text,
    "plan": plan_text,
    "verify-build": verify_text,
    "fleet": fleet_text,
    "recommend": recommend_text,
}
