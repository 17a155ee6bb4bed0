"""Network interfaces of the host (for NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME)."""

from __future__ import annotations

from ..model import Unavailable
from ..registry import probe


@probe("net_interfaces", budget=2.0)
def net_interfaces(ctx):
    """Names of the network interfaces (/sys/class/net under --root; psutil on the live machine)."""
    try:
        return ctx.listdir("/sys/class/net")
    except OSError:
        pass
    if ctx.live_machine:
        try:
            import psutil

            return sorted(psutil.net_if_addrs())
        except Exception as exc:
            return Unavailable(f"network interfaces unknown: {exc}")
    return Unavailable("/sys/class/net does not exist")


@probe("fleet_nodes", budget=1.0)
def fleet_nodes(ctx):
    """Facts of every node of a fleet run (given by `bwdoctor fleet`; unavailable elsewhere)."""
    return Unavailable("not a fleet run (bwdoctor fleet gathers every node's facts)")
