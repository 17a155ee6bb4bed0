"""Text of a bwdoctor.recommend/1 document: the inputs, the ranked plans, the blockers."""

from __future__ import annotations

from typing import Any, Dict, List

from .common import MARK


def _inputs_line(i: Dict[str, Any]) -> List[str]:
    fams = i.get("families") or []
    fams = list(fams) + [None] * (len(i["targets"]) - len(fams))
    targets = ", ".join(f"{t} ({f})" if f else t for t, f in zip(i["targets"], fams[: len(i["targets"])], strict=True))
    drv = i.get("driver") or "unknown"
    if i.get("driver_cuda_ceiling"):
        drv += f" (CUDA <= {i['driver_cuda_ceiling']})"
    if i.get("kernel_module"):
        drv += f", {i['kernel_module']} module"
    head = (
        f"for {targets or 'no GPU'}; driver {drv}; {i['platform']}; Python {i['python']}; "
        f"CPU {i.get('cpu_isa') or 'ISA unknown'}; vLLM {i['vllm']}"
    )
    lines = [head]
    if i.get("gpus"):
        lines.append("  GPUs: " + ", ".join(str(g) for g in i["gpus"]))
    origin = i.get("origin") or {}
    guessed = [k for k, v in origin.items() if v in ("default", "unknown")]
    if guessed:
        lines.append("  not known, assumed or left open: " + ", ".join(guessed))
    return lines


def _package_lines(p: Dict[str, Any]) -> List[str]:
    code = "  ".join(f"{t} {s}" for t, s in p["code_for_target"].items()) or "no prebuilt GPU code"
    where = p.get("index_url") or "PyPI"
    truth = "" if p.get("truth") == "scanned" else f" [{p.get('truth')}]"
    lines = [f"    {p['name']} {p['version']}  CUDA {p.get('cuda') or '-'}  {where}{truth}  ->  {code}"]
    for e in p.get("evidence") or []:
        if not e.get("file"):
            continue
        cubins = " ".join(e["cubins"]) or "-"
        ptx = " ".join(e["ptx"]) or "-"
        entry = f" {e.get('status')} via {e['entry']}" if e.get("entry") else f" {e.get('status') or ''}"
        lines.append(f"      {e['target']}{entry}: {e['file']} holds cubins {cubins}; PTX {ptx}")
    return lines


def render(doc: Dict[str, Any]) -> str:
    lines = _inputs_line(doc["inputs"])
    t = doc.get("table") or {}
    lines.append(f"  release table: {t.get('scanned', 0)} scanned + {t.get('declared', 0)} declared rows")
    for p in doc["plans"]:
        lines += ["", f"PLAN {p['rank']} ({p['kind']}): {p['title']}"]
        lines.append("  packages:")
        for pkg in p["packages"]:
            lines += _package_lines(pkg)
        if p.get("env"):
            lines.append("  env:")
            lines += [f"    {k}={v}" for k, v in p["env"].items()]
        lines.append("  commands:")
        lines += [f"    {c}" for c in p["commands"]]
        if p.get("notes"):
            lines.append("  notes:")
            lines += [f"    - {n}" for n in p["notes"]]
    if doc["blocked"]:
        lines += ["", "BLOCKED" if not doc["plans"] else "BLOCKED (for the newest release)"]
        for b in doc["blocked"]:
            lines.append(f"  {MARK['error']} {b['reason']}")
            lines.append(f"    fix: {b['fix']}")
    for n in doc.get("notes") or []:
        lines.append(f"note: {n}")
    if not doc["plans"]:
        lines += ["", "no plan: fix what blocks it, then run bwdoctor recommend again"]
    return "\n".join(lines) + "\n"
