"""Probes of the host: kernel release, loaded modules, distribution, CPU, memory, disk."""

from __future__ import annotations

import os

from .. import fileio
from ..model import Unavailable
from ..registry import probe
from .parse import parse_cpuinfo, parse_meminfo, parse_os_release, parse_proc_modules


@probe("kernel_release", budget=1.0)
def kernel_release(ctx):
    """Kernel release from /proc/sys/kernel/osrelease (uname only on the live machine)."""
    text = ctx.read_or_unavailable("/proc/sys/kernel/osrelease")
    if not isinstance(text, Unavailable) and text.strip():
        return text.strip()
    if ctx.live_machine:
        return os.uname().release
    return text if isinstance(text, Unavailable) else Unavailable("/proc/sys/kernel/osrelease is empty")


@probe("kernel_modules", budget=1.0)
def kernel_modules(ctx):
    """Loaded kernel modules from /proc/modules."""
    text = ctx.read_or_unavailable("/proc/modules")
    return text if isinstance(text, Unavailable) else parse_proc_modules(text)


@probe("host", budget=2.0)
def host(ctx):
    """Distribution, CPU model and flags, memory and free disk of the host."""
    out = {}
    osr = ctx.read_or_unavailable("/etc/os-release")
    if isinstance(osr, Unavailable):
        osr = ctx.read_or_unavailable("/usr/lib/os-release")
    if not isinstance(osr, Unavailable):
        fields = parse_os_release(osr)
        out["distro"] = {
            "id": fields.get("ID"),
            "version_id": fields.get("VERSION_ID"),
            "pretty_name": fields.get("PRETTY_NAME"),
        }
    elif ctx.live_machine:
        try:
            import distro

            out["distro"] = {"id": distro.id(), "version_id": distro.version(), "pretty_name": distro.name(True)}
        except Exception as exc:
            out["distro"] = {"error": str(exc)}
    cpu = ctx.read_or_unavailable("/proc/cpuinfo", limit=16 * 1024 * 1024)
    out["cpu"] = parse_cpuinfo(cpu) if not isinstance(cpu, Unavailable) else {"error": cpu.reason}
    mem = ctx.read_or_unavailable("/proc/meminfo")
    if not isinstance(mem, Unavailable):
        info = parse_meminfo(mem)
        out["memory"] = {
            "total": info.get("MemTotal"),
            "available": info.get("MemAvailable"),
            "swap_total": info.get("SwapTotal"),
        }
    if ctx.live_machine:
        disks = {}
        for label, path in (
            ("root", "/"),
            ("tmp", ctx.env.get("TMPDIR") or "/tmp"),
            ("cwd", os.getcwd()),
            ("home", os.path.expanduser("~")),
        ):
            try:
                disks[label] = {"path": path, "free": fileio.disk_free(path)}
            except OSError:
                pass
        out["disk"] = disks
    return out
