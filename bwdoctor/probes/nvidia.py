"""Probes of the NVIDIA driver and GPUs: /proc/driver/nvidia, the PCI bus, NVML, and the targets."""

from __future__ import annotations

import json
from typing import Optional

from ..domain.arch import arch_key, arch_of, normalize_target
from ..domain.gpus import lookup
from ..model import Unavailable
from ..registry import probe
from .parse import parse_driver_version, parse_gpu_information

NVIDIA_VENDOR = 0x10DE


@probe("nvidia_driver", budget=2.0)
def nvidia_driver(ctx):
    """NVIDIA kernel driver version and module flavour (open or proprietary)."""
    text = ctx.read_or_unavailable("/proc/driver/nvidia/version")
    if isinstance(text, Unavailable):
        return (
            Unavailable("no NVIDIA kernel driver loaded (/proc/driver/nvidia/version is absent)")
            if "does not exist" in text.reason
            else text
        )
    parsed = parse_driver_version(text)
    if parsed is None:
        return Unavailable("/proc/driver/nvidia/version has no 'NVRM version' line")
    gpus = []
    try:
        entries = ctx.listdir("/proc/driver/nvidia/gpus")
    except OSError:
        entries = []
    for bdf in entries:
        info = ctx.read_or_unavailable(f"/proc/driver/nvidia/gpus/{bdf}/information")
        if not isinstance(info, Unavailable):
            fields = parse_gpu_information(info)
            gpus.append(
                {
                    "bus": bdf,
                    "model": fields.get("Model"),
                    "uuid": fields.get("GPU UUID"),
                    "excluded": fields.get("GPU Excluded"),
                }
            )
    parsed["gpus"] = gpus
    return parsed


def _read_hex(ctx, path):
    try:
        return int(ctx.read_text(path, 64).strip(), 16)
    except (OSError, ValueError):
        return None


@probe("pci_gpus", budget=2.0)
def pci_gpus(ctx):
    """NVIDIA GPUs on the PCI bus (vendor 0x10de, display class), with name and compute capability."""
    try:
        devices = ctx.listdir("/sys/bus/pci/devices")
    except FileNotFoundError:
        return Unavailable("/sys/bus/pci/devices does not exist")
    except OSError as exc:
        return Unavailable(f"/sys/bus/pci/devices could not be listed: {exc.strerror or exc}")
    out = []
    for bdf in devices:
        d = f"/sys/bus/pci/devices/{bdf}"
        if _read_hex(ctx, f"{d}/vendor") != NVIDIA_VENDOR:
            continue
        cls = _read_hex(ctx, f"{d}/class")
        if cls is None or (cls >> 16) != 0x03:  # display controllers only (not audio/USB functions)
            continue
        dev = _read_hex(ctx, f"{d}/device")
        name, chip, cc = lookup(dev) if dev is not None else (None, None, None)
        entry = {
            "bus": bdf,
            "device_id": f"0x{dev:04x}" if dev is not None else None,
            "class": f"0x{cls:06x}",
            "name": name,
            "chip": chip,
            "cc": list(cc) if cc else None,
        }
        for attr in ("current_link_speed", "current_link_width", "max_link_speed", "max_link_width", "numa_node"):
            try:
                entry[attr] = ctx.read_text(f"{d}/{attr}", 64).strip()
            except OSError:
                pass
        out.append(entry)
    return out


def _nvml_from_capture(ctx):
    """NVML facts saved in a captured --root tree (cmd/nvml.json), for replaying a real machine."""
    try:
        data = json.loads(ctx.read_text("/cmd/nvml.json"))
    except FileNotFoundError:
        return Unavailable("--root replays files only and the tree has no cmd/nvml.json; NVML reads the live machine")
    except (OSError, ValueError) as exc:
        return Unavailable(f"cmd/nvml.json under --root is unreadable: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("gpus"), list):
        return Unavailable("cmd/nvml.json under --root does not have a 'gpus' list")
    gpus = []
    for i, g in enumerate(data["gpus"]):
        if isinstance(g, dict):
            gpus.append({"index": g.get("index", i), **{k: v for k, v in g.items() if k != "index"}})
    return {"driver": data.get("driver"), "cuda_driver": data.get("cuda_driver"), "gpus": gpus, "source": "capture"}


NVML_LIB = "libnvidia-ml.so.1"


def driver_signs(ctx) -> bool:
    """Whether this machine shows an NVIDIA driver: /proc/driver/nvidia, /dev/nvidiactl or libnvidia-ml.so.1
    where the loader finds it. When it does, the nvml probe asks NVML whatever the PCI bus says."""
    if ctx.exists("/proc/driver/nvidia") or ctx.exists("/dev/nvidiactl"):
        return True
    from .libcuda import DEFAULT_DIRS, soname_locations

    aarch64 = ("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu")
    return bool(soname_locations(ctx, NVML_LIB, DEFAULT_DIRS + aarch64)[0])


def _no_driver_here(ctx, pci_gpus) -> Optional[str]:
    """Why NVML need not be asked (no sign of an NVIDIA driver or GPU anywhere), or None when it must be."""
    if not isinstance(pci_gpus, list) or pci_gpus:
        return None
    if driver_signs(ctx):
        return None
    return f"no NVIDIA driver: no {NVML_LIB}, no /proc/driver/nvidia and no NVIDIA device on the PCI bus"


def start_nvml_early(ctx) -> bool:
    """Start the NVML child before the probes run when the nvml probe will surely ask it (a live machine with
    signs of a driver): its start-up then overlaps the imports and the other probes. True when started."""
    if not ctx.live_machine or not driver_signs(ctx):
        return False
    from . import nvml_query

    nvml_query.start_early()
    return True


@probe("nvml", budget=8.0)
def nvml(ctx, pci_gpus):
    """Driver, CUDA driver version and per-GPU facts from NVML (nvidia-ml-py), asked in a child process: a
    libnvidia-ml.so.1 that crashes, exits or hangs there becomes an Unavailable fact saying so. Not asked where
    nothing of an NVIDIA driver is installed (no library, no /proc/driver/nvidia, no device on the PCI bus)."""
    if not ctx.live_machine:
        return _nvml_from_capture(ctx)
    why = _no_driver_here(ctx, pci_gpus)
    if why:
        return Unavailable(why)
    from . import nvml_query

    return nvml_query.isolated()


@probe("gpus", budget=1.0)
def gpus(ctx, nvml, pci_gpus):
    """The GPUs of this machine: from NVML when it answers, else from the PCI bus."""
    if not isinstance(nvml, Unavailable) and nvml.get("gpus"):
        out = []
        for g in nvml["gpus"]:
            cc = g.get("cc")
            out.append(
                {
                    "index": g.get("index"),
                    "name": g.get("name"),
                    "cc": cc,
                    "arch": arch_of(cc),
                    "source": "nvml",
                    "mem_total": g.get("mem_total"),
                    "pci_bus_id": g.get("pci_bus_id"),
                    "uuid": g.get("uuid"),
                }
            )
        return out
    nvml_why = nvml.reason if isinstance(nvml, Unavailable) else "NVML reports no GPU"
    if isinstance(pci_gpus, Unavailable):
        return Unavailable(f"no NVIDIA GPU found ({nvml_why}; PCI bus: {pci_gpus.reason})")
    if not pci_gpus:
        return Unavailable(f"no NVIDIA GPU found ({nvml_why}; no NVIDIA display device on the PCI bus)")
    return [
        {
            "index": i,
            "name": p.get("name") or f"NVIDIA device {p.get('device_id')}",
            "cc": p.get("cc"),
            "arch": arch_of(p.get("cc")),
            "source": "pci",
            "mem_total": None,
            "pci_bus_id": p.get("bus"),
            "uuid": None,
        }
        for i, p in enumerate(pci_gpus)
    ]


@probe("targets", budget=1.0)
def targets(ctx, gpus):
    """Architectures to check for: --target values, else each distinct compute capability present."""
    if ctx.targets:
        return sorted({normalize_target(t) for t in ctx.targets}, key=arch_key)
    if isinstance(gpus, Unavailable):
        return []
    return sorted({g["arch"] for g in gpus if g.get("arch")}, key=arch_key)
