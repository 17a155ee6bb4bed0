"""Query NVML (the nvidia-ml-py `pynvml` module) without ever raising: failures become Unavailable."""

from __future__ import annotations

from ..model import Unavailable


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


def query():
    """Driver and CUDA driver versions and per-GPU facts; Unavailable when NVML cannot answer."""
    try:
        import pynvml
    except Exception as exc:  # nvidia-ml-py missing or broken
        return Unavailable(f"the pynvml module (nvidia-ml-py) cannot be imported: {exc}")
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return Unavailable(init_error_reason(exc))
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
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
