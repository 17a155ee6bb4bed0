"""The kernel command line (/proc/cmdline): IOMMU and other boot options."""

from __future__ import annotations

from ..model import Unavailable
from ..registry import probe


@probe("kernel_cmdline", budget=1.0)
def kernel_cmdline(ctx):
    """Boot options from /proc/cmdline as a list of tokens."""
    text = ctx.read_or_unavailable("/proc/cmdline")
    return text if isinstance(text, Unavailable) else text.split()
