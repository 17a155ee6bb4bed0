"""The opt-in live probe's verdict: torch imports, sees every GPU, and launches a kernel on each (BW53x)."""

from __future__ import annotations

from bwdoctor.model import Pass, Problem, Skip, Unavailable
from bwdoctor.registry import check


@check("BW531", "live-kernel-launch", severity="error", kb="no-kernel-image", optional=("gpus",))
def live_kernel_launch(live_torch, gpus):
    """(--live) torch imports in the target environment and launches a kernel on every GPU."""
    st = live_torch.get("status")
    if st in ("timeout", "crashed", "failed", "not-run", "import-failed", "cuda-init-failed"):
        return Problem(
            f"live probe: {st}: {live_torch.get('error')}",
            {"status": st, "import": "torch"} if st in ("import-failed", "crashed") else {"status": st},
        )
    devs = live_torch.get("devices") or []
    present = 0 if isinstance(gpus, Unavailable) else len(gpus)
    out = []
    for d in devs:
        if d.get("launch") == "ok":
            out.append(
                Pass(
                    f"torch {live_torch.get('torch')} ran a kernel on GPU {d['index']} ({d.get('name')}, "
                    f"CC {'.'.join(map(str, d.get('cc') or []))})"
                )
            )
        else:
            msg = d.get("error") or d.get("launch")
            out.append(
                Problem(
                    f"torch {live_torch.get('torch')} could not run a kernel on GPU {d['index']} "
                    f"({d.get('name')}): {msg}",
                    {"gpu": d["index"], "error": msg, "arch_list": live_torch.get("arch_list")},
                )
            )
    if present and not devs:
        out.append(
            Problem(
                f"torch sees no CUDA device although {present} GPU(s) are present "
                f"(torch.cuda.is_available() = {live_torch.get('available')})",
                {"device_count": live_torch.get("device_count")},
            )
        )
    return out or Skip("no GPU to launch on")
