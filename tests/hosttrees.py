"""Machine trees for --root tests, assembled from real text (each constant names its source)."""

from __future__ import annotations

from pathlib import Path

# /proc/driver/nvidia/version of a proprietary R570 module, as printed in a public install guide
# (quoted in a GitHub-hosted Ubuntu 22.04 NVIDIA driver guide: "NVRM version: NVIDIA UNIX x86_64 Kernel
# Module  570.181  Wed Jul 30 18:16:27 UTC 2025").
PROPRIETARY_570 = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.181  Wed Jul 30 18:16:27 UTC 2025\n"
    "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04.2) \n"
)
# The open-module form of the same file, as captured on the H100 box (tests/fixtures/roots/h100-box).
OPEN_580 = (Path(__file__).parent / "fixtures/roots/h100-box/proc/driver/nvidia/version").read_text()
# The same open form for a 570 driver (the open module prints this line shape; see OPEN_580).
OPEN_570 = OPEN_580.replace("580.159.04", "570.181")
OPEN_550 = OPEN_580.replace("580.159.04", "550.54.15")

# /proc/modules lines: nvidia_peermem as `lsmod`/`/proc/modules` print it on GPUDirect hosts
# ("nvidia_peermem 16384 0 - Live 0x0000000000000000", quoted in DeepEP install notes and NVIDIA
# gpu-operator tests); the rest from the H100 capture.
H100_MODULES = (Path(__file__).parent / "fixtures/roots/h100-box/proc/modules").read_text()
PEERMEM_LINE = "nvidia_peermem 16384 0 - Live 0x0000000000000000 (OE)\n"

# Ubuntu kernel release strings (Ubuntu 25.04 ships 6.14.0-*-generic; 24.04 GA ships 6.8.0-*-generic).
KERNEL_614 = "6.14.0-15-generic\n"
KERNEL_68 = "6.8.0-60-generic\n"

RTX5090 = {
    "vendor": "0x10de\n",
    "device": "0x2b85\n",
    "class": "0x030000\n",
    "subsystem_vendor": "0x10de\n",
    "subsystem_device": "0x0000\n",
}
RTX5090_AUDIO = {"vendor": "0x10de\n", "device": "0x22e8\n", "class": "0x040300\n"}
H100 = {"vendor": "0x10de\n", "device": "0x2330\n", "class": "0x030200\n"}


def write_tree(root: Path, files: dict) -> Path:
    """Create a --root tree from {relative path: text}."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def pci(bdf: str, attrs: dict) -> dict:
    """Files of one PCI device under sys/bus/pci/devices/BDF."""
    return {f"sys/bus/pci/devices/{bdf}/{k}": v for k, v in attrs.items()}


def blackwell_broken(root: Path) -> Path:
    """RTX 5090 with the proprietary 570 module, nvidia_peermem loaded, kernel 6.14."""
    return write_tree(
        root,
        {
            "proc/driver/nvidia/version": PROPRIETARY_570,
            "proc/modules": PEERMEM_LINE + H100_MODULES,
            "proc/sys/kernel/osrelease": KERNEL_614,
            **pci("0000:01:00.0", RTX5090),
            **pci("0000:01:00.1", RTX5090_AUDIO),
        },
    )


def blackwell_healthy(root: Path) -> Path:
    """RTX 5090 with the open 570 module, no nvidia_peermem, kernel 6.8."""
    return write_tree(
        root,
        {
            "proc/driver/nvidia/version": OPEN_570,
            "proc/modules": H100_MODULES,
            "proc/sys/kernel/osrelease": KERNEL_68,
            **pci("0000:01:00.0", RTX5090),
            **pci("0000:01:00.1", RTX5090_AUDIO),
        },
    )
