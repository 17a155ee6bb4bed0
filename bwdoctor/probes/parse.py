"""Pure parsers for /proc, /sys and /etc text that the probes read (tested on captured real input)."""

from __future__ import annotations

import re
import shlex
from typing import Dict, List, Optional

from .. import lazyre

_DRIVER_RE = lazyre.compile(r"NVRM version:\s*(?P<desc>.*?)\s+(?P<ver>\d+\.\d+(?:\.\d+)?)\s")


def parse_proc_modules(text: str) -> List[dict]:
    """Loaded kernel modules from /proc/modules: name, size, refcount, users, state."""
    mods = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        size = int(parts[1]) if parts[1].isdigit() else None
        refs = int(parts[2]) if parts[2].lstrip("-").isdigit() else None
        users = [u for u in parts[3].split(",") if u and u != "-"] if len(parts) > 3 else []
        state = parts[4] if len(parts) > 4 else None
        mods.append({"name": parts[0], "size": size, "refcount": refs, "used_by": users, "state": state})
    return mods


def parse_driver_version(text: str) -> Optional[dict]:
    """Driver version and module flavour (open / proprietary) from /proc/driver/nvidia/version."""
    first = text.splitlines()[0] if text else ""
    m = _DRIVER_RE.search(first + " ")
    if not m:
        return None
    flavour = "open" if "open kernel module" in first.lower() else "proprietary"
    gcc = re.search(r"GCC version:\s*(.*)", text)
    return {
        "version": m["ver"],
        "flavour": flavour,
        "description": m["desc"].strip(),
        "line": first.strip(),
        "gcc": gcc.group(1).strip() if gcc else None,
    }


def parse_gpu_information(text: str) -> dict:
    """Fields of /proc/driver/nvidia/gpus/<bdf>/information (Model, GPU UUID, Bus Location...)."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, val = line.partition(":")
            out[key.strip()] = val.strip()
    return out


def parse_os_release(text: str) -> Dict[str, str]:
    """KEY=value pairs of /etc/os-release, shell quoting removed."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, val = line.partition("=")
        try:
            parts = shlex.split(val)
            out[key.strip()] = parts[0] if parts else ""
        except ValueError:
            out[key.strip()] = val.strip().strip("\"'")
    return out


def parse_cpuinfo(text: str) -> dict:
    """CPU model, logical CPU count and the flags of the first processor from /proc/cpuinfo."""
    model, count, vendor = None, 0, None
    flags: List[str] = []
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "processor":
            count += 1
        elif key == "model name" and model is None:
            model = val.strip()
        elif key == "vendor_id" and vendor is None:
            vendor = val.strip()
        elif key in ("flags", "Features") and not flags:
            flags = val.split()
        elif key == "CPU part" and model is None:  # arm64 has no model name
            model = f"ARM part {val.strip()}"
    return {"model": model, "vendor": vendor, "logical_cpus": count, "flags": sorted(set(flags))}


def parse_meminfo(text: str) -> Dict[str, int]:
    """/proc/meminfo values in bytes (MemTotal, MemAvailable, SwapTotal...)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?", line)
        if m:
            mult = 1024 if line.rstrip().endswith("kB") else 1
            out[m.group(1)] = int(m.group(2)) * mult
    return out
