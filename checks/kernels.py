"""Kernel families: a quantization method a serve config asks for needs its GEMM family's code for the GPU, even
when the library holding it has code for that GPU in other units (a file's union verdict hides that)."""

from __future__ import annotations

from typing import Any, List

from bwdoctor.domain.arch import cc_label, parse_cc
from bwdoctor.domain.compat import NONE, verdict
from bwdoctor.model import Pass, Problem, Skip
from bwdoctor.registry import check


def _family_status(cc: Any, files: List[dict], family: str) -> tuple:
    """(best verdict over vLLM's files for the family's entries, the files that hold the family)."""
    best, holders = NONE, []
    rank = {"native": 2, "ptx-jit": 1, "none": 0}
    for f in files:
        fam = (f.get("families") or {}).get(family)
        if not fam:
            continue
        holders.append(f.get("path"))
        for section in ("fatbin", "relfatbin"):
            names = [t for s, t in fam.get("entries", []) if s == section]
            cub = [n for n in names if n.startswith("sm_")]
            ptx = [n for n in names if n.startswith("compute_")]
            v = verdict(cc, cub, ptx) if section == "fatbin" else verdict(cc, rel_cubins=cub, rel_ptx=ptx)
            best = v.status if rank[v.status] > rank[best] else best
    return best, holders


@check(
    "BW307",
    "quantization-kernels-have-code",
    severity="error",
    kb="no-kernel-image",
    groups=("runtime", "serve"),
)
def quantization_kernels_have_code(targets, vllm_kernel_families):
    """The kernel family a serve config's --quantization runs on has code for every target GPU in vLLM."""
    if not targets:
        return Skip("no target GPU architecture")
    files = vllm_kernel_families.get("files") or []
    out: list = []
    for method, req in sorted((vllm_kernel_families.get("requested") or {}).items()):
        for family in req.get("families", []):
            for t in targets:
                cc = parse_cc(t)
                status, holders = _family_status(cc, files, family)
                where = ", ".join(req.get("at", [])[:2])
                if not holders:
                    out.append(
                        Skip(f"--quantization {method} ({where}): no {family} kernels found in vLLM's libraries")
                    )
                elif status == NONE:
                    out.append(
                        Problem(
                            f"--quantization {method} ({where}) runs on vLLM's {family} kernels, and none of them has "
                            f"code for {cc_label(cc)} (in {', '.join(sorted(set(holders)))}): the first quantized "
                            f"GEMM fails with 'no kernel image is available'. Use a vLLM build with {family} kernels "
                            f"for {cc_label(cc)} (a source build with TORCH_CUDA_ARCH_LIST including it), or "
                            f"another quantization method.",
                            evidence={"method": method, "family": family, "target": cc_label(cc), "files": holders},
                        )
                    )
                else:
                    out.append(
                        Pass(f"--quantization {method}: vLLM's {family} kernels run on {cc_label(cc)} ({status})")
                    )
    return out or Skip("no quantization method with a known kernel family")
