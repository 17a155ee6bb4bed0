"""Per-unit GPU code and kernel families of CUDA libraries (`bwdoctor kernels`): pure functions of what
bwdoctor.elf.cubin.read_units read, with the same compatibility rules as every other verdict
(bwdoctor.domain.compat)."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Sequence, Tuple

from ..domain.arch import CC
from ..domain.compat import NATIVE, NONE, PTX_JIT, verdict
from .families import family_of, features_of

RANK = {NATIVE: 2, PTX_JIT: 1, NONE: 0}


def unit_verdict(cc: CC, unit: Mapping[str, Any]) -> str:
    """native / ptx-jit / none for one unit on one GPU."""
    if unit.get("section") == "relfatbin":
        return verdict(cc, rel_cubins=unit["elf"], rel_ptx=unit["ptx"]).status
    return verdict(cc, unit["elf"], unit["ptx"]).status


def _entry_verdict(cc: CC, section: str, names: Iterable[str]) -> str:
    cubins = [n for n in names if n.startswith("sm_")]
    ptx = [n for n in names if n.startswith("compute_")]
    if section == "relfatbin":
        return verdict(cc, rel_cubins=cubins, rel_ptx=ptx).status
    return verdict(cc, cubins, ptx).status


@lru_cache(maxsize=4096)
def _best_cached(cc: CC, entries: FrozenSet[Tuple[str, str]]) -> str:
    best = NONE
    for section in ("fatbin", "relfatbin"):
        status = _entry_verdict(cc, section, [e for s, e in entries if s == section])
        best = status if RANK[status] > RANK[best] else best
    return best


def _best(cc: CC, entries: Iterable[Tuple[str, str]]) -> str:
    """The best verdict over entries (section, target name) holding a kernel or a family."""
    return _best_cached(cc, frozenset(entries))


def file_report(item: Mapping[str, Any], targets: Sequence[Tuple[str, CC]]) -> Dict[str, Any]:
    """One `files[]` item of bwdoctor.kernels/1 from a read_units result."""
    units: List[Mapping[str, Any]] = item.get("units") or []
    out: Dict[str, Any] = {
        "path": item["path"],
        "distribution": item.get("distribution"),
        "error": item.get("error"),
        "units": len(units),
        "units_without_target": {},
        "unit_list": [],
    }
    named = any("kernels" in u for u in units)
    for label, _cc in targets:
        out["units_without_target"][label] = 0
    fam: Dict[str, Dict[str, Any]] = {}
    for u in units:
        row: Dict[str, Any] = {"section": u["section"], "index": u["index"], "elf": u["elf"], "ptx": u["ptx"]}
        row["verdicts"] = {label: unit_verdict(cc, u) for label, cc in targets}
        for label, status in row["verdicts"].items():
            if status == NONE:
                out["units_without_target"][label] += 1
        if named:
            by_entry = u.get("kernels") or {}
            family = {k: family_of(k) for ks in by_entry.values() for k in ks}  # each kernel named once per unit
            for entry, kernels in by_entry.items():
                for k in set(kernels):
                    f = fam.setdefault(family[k], {"kernels": {}, "entries": set(), "units": set()})
                    f["kernels"].setdefault(k, set()).add((u["section"], entry))
                    f["entries"].add((u["section"], entry))
                    f["units"].add((u["section"], u["index"]))
            counts = Counter(family.values())
            row["families"] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
            if u.get("errors"):
                row["errors"] = list(u["errors"])
        out["unit_list"].append(row)
    if named:
        out["families"] = {}
        for name, f in sorted(fam.items(), key=lambda kv: (-len(kv[1]["kernels"]), kv[0])):
            t: Dict[str, str] = {}
            without: Dict[str, int] = {}
            for label, cc in targets:
                t[label] = _best(cc, f["entries"])
                without[label] = sum(1 for where in f["kernels"].values() if _best(cc, frozenset(where)) == NONE)
            out["families"][name] = {
                "kernels": len(f["kernels"]),
                "kernels_without_target": without,
                "units": len(f["units"]),
                "targets": t,
                "features": features_of(name),
            }
    return out
