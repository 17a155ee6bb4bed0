"""Checks of the host itself: CPU instruction set (BW1xx)."""

from __future__ import annotations

from bwdoctor.domain.isa import LEVEL_FLAGS, ORDER
from bwdoctor.model import Pass, Problem, Skip
from bwdoctor.registry import check


@check("BW101", "cpu-isa-supported", severity="error", kb="cpu-isa-mismatch")
def cpu_isa_supported(host, cpu_isa_needed):
    """This CPU has the instruction set the installed torch/vLLM libraries were built for."""
    flags = set((host.get("cpu") or {}).get("flags") or [])
    if not flags:
        return Skip("CPU flags unknown")
    if not cpu_isa_needed:
        return Pass("no installed library declares an x86-64 level above baseline")
    out = []
    for lib in cpu_isa_needed:
        need = ORDER[: ORDER.index(lib["isa"]) + 1] if lib["isa"] in ORDER else ()
        missing = sorted({f for lvl in need for f in LEVEL_FLAGS[lvl]} - flags)
        if missing:
            out.append(
                Problem(
                    f"{lib['path']} ({lib['distribution']}) is built for {lib['isa']}, but this CPU lacks "
                    f"{', '.join(missing)}: importing it dies with 'Illegal instruction (core dumped)'",
                    {
                        "distribution": lib["distribution"],
                        "path": lib["path"],
                        "isa": lib["isa"],
                        "missing": missing,
                        "import": lib["distribution"].replace("-", "_"),
                        "fix": f"install a {lib['distribution']} build for a baseline x86-64 CPU, or run on a CPU "
                        f"with {lib['isa']}",
                    },
                )
            )
        else:
            out.append(Pass(f"{lib['distribution']} needs {lib['isa']}, which this CPU has"))
    return out
