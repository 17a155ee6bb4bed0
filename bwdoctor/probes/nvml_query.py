"""Query NVML (the nvidia-ml-py `pynvml` module) without ever raising: failures become Unavailable.

libnvidia-ml.so.1 is native code of the inspected machine: it can crash (SIGSEGV), end the process (exit) or
hang in nvmlInit. So bwdoctor never loads it: `isolated()` runs `query()` in a child interpreter
(`python -m bwdoctor.probes.nvml_query`) through the bounded runner (own session, timeout, output cap, the
group killed at the end) and turns whatever happens to that child into the facts or an Unavailable reason.

The child writes, on a private copy of its stdout (the library's own prints go to stderr), one JSON line per
stage it enters ({"stage": "nvmlInit"}) and one with the result ({"result": ...} or {"unavailable": "..."}),
so a crash, an exit or a hang is reported with the NVML call it happened in."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ..model import Unavailable

LIBRARY = "libnvidia-ml.so.1"
TIMEOUT = 5.0  # the nvml probe's budget is longer: a hang is reported by this child's timeout, with its stage
OUTPUT_LIMIT = 4 * 1024 * 1024  # the facts of 64 GPUs and their pairs are far smaller
STAGES = {
    "import": "importing pynvml",
    "load": f"loading {LIBRARY}",
    "nvmlInit": "nvmlInit",
    "query": "the per-GPU queries",
    "nvmlShutdown": "nvmlShutdown",
}


def _s(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _try(fn, *args):
    """The value of an NVML call, or None when this GPU/driver does not support it."""
    try:
        return _s(fn(*args))
    except Exception:  # NVMLError_NotSupported and friends: a missing detail, not a failure
        return None


def init_error_reason(exc) -> str:
    """A sentence a person can act on for an nvmlInit failure."""
    name = type(exc).__name__
    text = str(exc)
    if "LibraryNotFound" in name or "LibraryNotFound" in text or isinstance(exc, OSError):
        return "NVML library (libnvidia-ml.so.1) not found: no NVIDIA driver installed or not visible here"
    if "DriverNotLoaded" in name or "Driver Not Loaded" in text:
        return "NVIDIA kernel driver not loaded (NVML: Driver Not Loaded)"
    if "NoPermission" in name:
        return "no permission to open the NVIDIA device files (NVML: Insufficient Permissions)"
    return f"NVML failed to initialise: {name}: {text}"


P2P_STATUS = {
    0: "OK",
    1: "chipset not supported",
    2: "GPU not supported",
    3: "IOH topology not supported",
    4: "disabled by regkey",
    5: "not supported",
    6: "unknown",
}
TOPOLOGY = {
    0: "internal",
    10: "single PCIe switch",
    20: "multiple PCIe switches",
    30: "PCIe host bridge",
    40: "NUMA node (CPU interconnect)",
    50: "system (across NUMA nodes)",
}


def _nvlinks(pynvml, h):
    active = 0
    for link in range(18):
        try:
            if pynvml.nvmlDeviceGetNvLinkState(h, link):
                active += 1
        except Exception:
            break
    return active


def _pairs(pynvml, count):
    """P2P read status, topology level and NVLink presence for every GPU pair."""
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    links = [_nvlinks(pynvml, h) for h in handles]
    out = []
    for i in range(count):
        for j in range(i + 1, count):
            p2p = _try(pynvml.nvmlDeviceGetP2PStatus, handles[i], handles[j], pynvml.NVML_P2P_CAPS_INDEX_READ)
            topo = _try(pynvml.nvmlDeviceGetTopologyCommonAncestor, handles[i], handles[j])
            out.append(
                {
                    "a": i,
                    "b": j,
                    "p2p_read": P2P_STATUS.get(p2p, p2p),
                    "topology": TOPOLOGY.get(topo, topo),
                    "nvlink": bool(links[i] and links[j]),
                }
            )
    return out


def _no_stage(_name: str) -> None:
    return None


def query(stage: Callable[[str], None] = _no_stage):
    """Driver and CUDA driver versions and per-GPU facts; Unavailable when NVML cannot answer.

    This loads libnvidia-ml.so.1 into the calling process: bwdoctor calls it only in a child (see isolated()).
    stage: told the name of each step before it starts (import, load, nvmlInit, query, nvmlShutdown)."""
    stage("import")
    try:
        import pynvml
    except Exception as exc:  # nvidia-ml-py missing or broken
        return Unavailable(f"the pynvml module (nvidia-ml-py) cannot be imported: {exc}")
    stage("load")
    try:
        loader = getattr(pynvml, "_LoadNvmlLibrary", None)
        if loader is not None:  # load first (its constructors run here), so a crash there is named as such
            loader()
    except Exception as exc:
        return Unavailable(init_error_reason(exc))
    stage("nvmlInit")
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return Unavailable(init_error_reason(exc))
    stage("query")
    try:
        out = {
            "driver": _try(pynvml.nvmlSystemGetDriverVersion),
            "cuda_driver": _try(pynvml.nvmlSystemGetCudaDriverVersion),
            "gpus": [],
            "source": "nvml",
        }
        count = pynvml.nvmlDeviceGetCount()
        for i in range(count):
            try:
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
            except Exception as exc:
                out["gpus"].append({"index": i, "error": f"{type(exc).__name__}: {exc}"})
                continue
            cc = _try(pynvml.nvmlDeviceGetCudaComputeCapability, h)
            mem = _try(pynvml.nvmlDeviceGetMemoryInfo, h)
            bar1 = _try(pynvml.nvmlDeviceGetBAR1MemoryInfo, h)
            pci = _try(pynvml.nvmlDeviceGetPciInfo, h)
            out["gpus"].append(
                {
                    "index": i,
                    "name": _try(pynvml.nvmlDeviceGetName, h),
                    "uuid": _try(pynvml.nvmlDeviceGetUUID, h),
                    "cc": list(cc) if cc else None,
                    "mem_total": getattr(mem, "total", None),
                    "mem_used": getattr(mem, "used", None),
                    "pcie_gen": _try(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, h),
                    "pcie_width": _try(pynvml.nvmlDeviceGetCurrPcieLinkWidth, h),
                    "pcie_gen_max": _try(pynvml.nvmlDeviceGetMaxPcieLinkGeneration, h),
                    "pcie_width_max": _try(pynvml.nvmlDeviceGetMaxPcieLinkWidth, h),
                    "bar1_total": getattr(bar1, "bar1Total", None),
                    "pci_bus_id": _s(getattr(pci, "busId", None)) if pci else None,
                }
            )
        if count > 1:
            out["pairs"] = _pairs(pynvml, count)
        return out
    except Exception as exc:
        return Unavailable(f"NVML query failed: {type(exc).__name__}: {exc}")
    finally:
        stage("nvmlShutdown")
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _emit(fd: int, obj: Any) -> None:
    data = (json.dumps(obj, allow_nan=False, default=str) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def main() -> int:
    """The child: run query() and write its stages and result as JSON lines on a private copy of stdout."""
    out = os.dup(1)
    os.dup2(2, 1)  # whatever the library or pynvml prints goes to stderr, never into the result
    sys.stdout = sys.stderr
    _emit(out, {"stage": "start"})
    result = query(lambda name: _emit(out, {"stage": name}))
    if isinstance(result, Unavailable):
        _emit(out, {"unavailable": result.reason})
    else:
        try:
            _emit(out, {"result": result})
        except (TypeError, ValueError) as exc:
            _emit(out, {"unavailable": f"NVML returned values that are not JSON: {exc}"})
    _emit(out, {"stage": "done"})
    return 0


def _package_parent() -> str:
    return str(Path(__file__).resolve().parents[2])


def _ask_child(timeout: float):
    """The bounded run of the child (a context.RunResult): own session, timeout, output cap, group killed."""
    from ..context import run_bounded

    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    code = (
        "import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
        "from bwdoctor.probes.nvml_query import main; raise SystemExit(main())"
    )
    # -S skips `site` (its .pth files can cost more than the NVML query); the child gets this process's sys.path
    # instead, which already holds what they added
    paths = [_package_parent()] + [p for p in sys.path if isinstance(p, str) and p]
    argv = [sys.executable, "-S", "-c", code, json.dumps(paths)]
    return run_bounded(argv, timeout=timeout, env=env, limit=OUTPUT_LIMIT)


class _Early:
    """The child started ahead of the nvml probe (start_early), run to its end in a thread of its own."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.environ = dict(os.environ)  # the child's environment: an answer for another one is not collected
        self.started = time.monotonic()
        self.result: Any = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="nvml-early")

    def _run(self) -> None:
        try:
            self.result = _ask_child(self.timeout)
        except Exception:  # collected as "no early answer": isolated() then asks a child of its own
            self.result = None
        finally:
            self.done.set()


_early: Optional[_Early] = None
EARLY_MAX_AGE = 60.0
_early_lock = threading.Lock()


def start_early(timeout: float = TIMEOUT) -> None:
    """Start the NVML child now, so that its interpreter start and nvmlInit (a tenth of a second or more on a
    datacenter GPU) overlap bwdoctor's own imports and the other probes; the nvml probe's isolated() collects its
    answer. The child is the same bounded run isolated() makes (own session, timeout, output cap, group killed)."""
    global _early
    with _early_lock:
        if _early is not None:
            return
        _early = _Early(timeout)
        _early.thread.start()


def _take_early(timeout: float) -> Optional[_Early]:
    global _early
    with _early_lock:
        early, _early = _early, None
    if early is None or early.timeout != timeout or early.environ != dict(os.environ):
        return None
    if time.monotonic() - early.started > EARLY_MAX_AGE:  # started for another run of this process
        return None
    return early


def isolated(timeout: float = TIMEOUT):
    """query() in a child interpreter: its facts, or Unavailable saying what happened to the child.

    A crash (signal), an exit before the result, output that is not the expected JSON, or a hang (the child and
    anything it started are killed at `timeout`) each become an Unavailable naming libnvidia-ml.so.1 and the NVML
    step it was in; bwdoctor itself never maps the library. A child start_early() started is collected instead of
    starting another."""
    early = _take_early(timeout)
    if early is not None:
        early.done.wait(timeout + 5.0)  # the run itself ends at its timeout; this only guards against a stuck thread
        if early.result is not None:
            return interpret(early.result, timeout)
    return interpret(_ask_child(timeout), timeout)


def _lines(stdout: str):
    for line in stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            yield None
            continue
        yield obj if isinstance(obj, dict) else None


def interpret(res, timeout: float = TIMEOUT):
    """The facts (or an Unavailable) from what the NVML child wrote and how it ended (a context.RunResult)."""
    stage, result, garbage = "start", None, False
    for obj in _lines(res.stdout):
        if obj is None:
            garbage = True
        elif isinstance(obj.get("stage"), str):
            stage = obj["stage"]
        elif "result" in obj or "unavailable" in obj:
            result = obj
    if result is not None and stage == "done":  # the answer is whole, whatever happened at the child's exit
        if "unavailable" in result:
            return Unavailable(str(result["unavailable"])[:2000])
        data = result.get("result")
        if isinstance(data, dict) and isinstance(data.get("gpus"), list):
            return data
        return Unavailable("the NVML query returned a result of an unexpected shape", failed=True)
    where = STAGES.get(stage, stage)
    tail = " ".join((res.stderr or "").strip().splitlines()[-2:])[-300:]
    said = f" (its last output: {tail})" if tail else ""
    if res.timed_out:
        return Unavailable(
            failed=True, reason=f"{LIBRARY} hung in {where}: the NVML query was stopped after {timeout:g} s"
        )
    if res.overflow:
        return Unavailable(
            failed=True,
            reason=f"the NVML query printed more than {OUTPUT_LIMIT // (1024 * 1024)} MiB in {where} and was stopped",
        )
    if res.error is not None:
        return Unavailable(failed=True, reason=f"the NVML query could not be run: {res.error}")
    if res.signal:
        return Unavailable(failed=True, reason=f"{LIBRARY} crashed ({res.signal}) in {where}")
    if garbage:
        return Unavailable(failed=True, reason=f"the NVML query wrote output that is not its JSON result (in {where})")
    return Unavailable(
        f"the NVML query process ended with exit code {res.returncode} in {where} without a result: "
        f"{LIBRARY} or pynvml ended the process{said}",
        failed=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
