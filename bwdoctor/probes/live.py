"""The opt-in live probe (--live): torch imported in a subprocess of the target interpreter, one tiny
kernel launched per GPU. A crash, a hang or 'no kernel image' becomes a fact; bwdoctor never imports torch."""

from __future__ import annotations

import json

from ..model import Unavailable
from ..registry import probe

TIMEOUT = 90.0
MARK = "BWDOCTOR-LIVE:"

SCRIPT = r"""
import json, sys, traceback
out = {"status": "ok", "devices": []}
try:
    import torch
except BaseException as exc:
    out.update(status="import-failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-2000:])
    print("BWDOCTOR-LIVE:" + json.dumps(out)); sys.exit(0)
out.update(torch=torch.__version__, cuda=torch.version.cuda)
try:
    out["arch_list"] = torch.cuda.get_arch_list()
    out["available"] = torch.cuda.is_available()
    out["device_count"] = torch.cuda.device_count()
except BaseException as exc:
    out.update(status="cuda-init-failed", error=f"{type(exc).__name__}: {exc}")
    print("BWDOCTOR-LIVE:" + json.dumps(out)); sys.exit(0)
for i in range(out.get("device_count") or 0):
    d = {"index": i}
    try:
        d["name"] = torch.cuda.get_device_name(i)
        d["cc"] = list(torch.cuda.get_device_capability(i))
        x = torch.arange(1024, device=f"cuda:{i}", dtype=torch.float32)
        d["sum"] = float((x * 2).sum().item())
        torch.cuda.synchronize(i)
        d["launch"] = "ok" if d["sum"] == 1047552.0 else "wrong result"
    except BaseException as exc:
        d["launch"] = "failed"
        d["error"] = f"{type(exc).__name__}: {exc}"[:1000]
    out["devices"].append(d)
print("BWDOCTOR-LIVE:" + json.dumps(out))
"""


@probe("live_torch", budget=TIMEOUT + 5)
def live_torch(ctx, python_env):
    """With --live: torch's view of the GPUs and a tiny kernel launch per GPU, in a subprocess."""
    if not ctx.live:
        return Unavailable("live probe not requested (bwdoctor check --live)")
    if isinstance(python_env, Unavailable):
        return python_env
    if ctx.in_tree:  # the tree's interpreter is never run: it belongs to another machine
        return Unavailable("the live probe runs on the live machine only, not on a --root tree")
    try:
        timeout = float(ctx.env.get("BWDOCTOR_LIVE_TIMEOUT") or TIMEOUT)
    except ValueError:
        timeout = TIMEOUT
    res = ctx.run([python_env["executable"], "-c", SCRIPT], timeout=min(timeout, TIMEOUT), env=dict(ctx.env))
    if isinstance(res, Unavailable):
        return {"status": "timeout" if "timed out" in res.reason else "not-run", "error": res.reason}
    for line in reversed((res.stdout or "").splitlines()):
        if line.startswith(MARK):
            try:
                return json.loads(line[len(MARK) :])
            except ValueError:
                break
    tail = (res.stderr or "").strip().splitlines()[-5:]
    status = "crashed" if res.returncode < 0 else "failed"
    return {"status": status, "returncode": res.returncode, "error": " | ".join(tail)[-1500:]}
