"""Kernel families of the installed vLLM, read only on request: when a serve config asks for a quantization
method whose GEMMs run on a known family (bwdoctor/data/kernel_families.json), the kernels of vLLM's CUDA
libraries are named (decompressing one entry at a time) and each wanted family's entries are listed."""

from __future__ import annotations

from typing import Any, Dict, List

from ..model import Unavailable
from ..registry import probe
from .pyenv import installed_elf_files


def requested_quantizations(serve_configs: Any) -> Dict[str, List[str]]:
    """{method: ["path:line:col", ...]} of every --quantization / -q value in the serve configs."""
    out: Dict[str, List[str]] = {}
    if not isinstance(serve_configs, dict):
        return out
    for cfg in serve_configs.get("configs") or []:
        if not isinstance(cfg, dict):
            continue
        words = [w for w in cfg.get("argv") or [] if isinstance(w, list) and w and isinstance(w[0], str)]
        for i, w in enumerate(words):
            flag, _, inline = w[0].partition("=")
            if flag not in ("--quantization", "-q"):
                continue
            value = inline if inline else (words[i + 1][0] if i + 1 < len(words) else "")
            if value and not value.startswith("-"):
                where = f"{cfg.get('path')}:{w[1] if len(w) > 1 else '?'}:{w[2] if len(w) > 2 else '?'}"
                out.setdefault(value.strip().lower(), []).append(where)
    return out


def families_for(method: str) -> List[str]:
    from ..kernels.families import table

    return [f["name"] for f in table()["families"] if method in f.get("quantization", [])]


def family_entries(path: str, wanted: List[str]) -> Dict[str, Any]:
    """{family: {"kernels": n, "entries": [[section, target], ...]}} of one library, for the wanted families."""
    from ..elf.cubin import read_units
    from ..kernels.families import family_of

    fams: Dict[str, Dict[str, Any]] = {}
    for unit in read_units(path, names=True)["units"]:
        by_entry = unit.get("kernels") or {}
        family = {k: family_of(k) for ks in by_entry.values() for k in ks}  # each kernel named once per unit
        for target, kernels in by_entry.items():
            for k in kernels:
                fam = family[k]
                if fam not in wanted:
                    continue
                f = fams.setdefault(fam, {"kernels": set(), "entries": set()})
                f["kernels"].add(k)
                f["entries"].add((unit["section"], target))
    return {
        name: {"kernels": len(f["kernels"]), "entries": sorted([s, t] for s, t in f["entries"])}
        for name, f in sorted(fams.items())
    }


@probe("vllm_kernel_families", budget=120.0)
def vllm_kernel_families(ctx, serve_configs, distributions):
    """For the quantization methods the serve configs ask for: the code per target of the vLLM kernel families
    they need, read from the kernels of vLLM's own CUDA libraries."""
    wanted = requested_quantizations(serve_configs)
    families = sorted({f for m in wanted for f in families_for(m)})
    if not families:
        return Unavailable("no serve config asks for a quantization method whose kernels bwdoctor maps")
    if isinstance(distributions, Unavailable) or not isinstance(distributions, list):
        return Unavailable(f"installed packages unknown ({getattr(distributions, 'reason', 'no list')})")
    d = next((x for x in distributions if isinstance(x, dict) and x.get("name") == "vllm"), None)
    if d is None:
        return Unavailable("vLLM is not installed in the inspected environment")
    from ..elf.fatbin import has_gpu_code, scan_file

    paths, err = installed_elf_files(ctx, d, shared_only=True)
    files = []
    for p in paths:
        if not has_gpu_code(scan_file(p)):
            continue
        fams = family_entries(p, families)
        if fams:
            files.append({"path": ctx.machine_path(p) if ctx.in_tree else p, "families": fams})
    return {
        "vllm": d.get("version"),
        "requested": {m: {"families": families_for(m), "at": at} for m, at in sorted(wanted.items())},
        "files": files,
        "note": err,
    }
