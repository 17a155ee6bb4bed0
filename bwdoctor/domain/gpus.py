"""NVIDIA PCI device id → product name, chip and compute capability, for machines where NVML cannot answer.

Device-id ranges are per chip. Names and ids come from the supported-GPU table of NVIDIA's open kernel
module README (see pci_ids.py); the chip of each range and its compute capability from NVIDIA's CUDA
GPU list (https://developer.nvidia.com/cuda-gpus) for the products named in that range.
"""

from __future__ import annotations

from .arch import CC
from .pci_ids import NAMES

# (first id, last id, chip family, compute capability)
RANGES: tuple[tuple[int, int, str, CC], ...] = (
    (0x1DB0, 0x1DBF, "GV100 (Volta)", (7, 0)),
    (0x1E00, 0x1FFF, "TU10x/TU11x (Turing)", (7, 5)),
    (0x2180, 0x21FF, "TU11x (Turing)", (7, 5)),
    (0x20B0, 0x20FF, "GA100 (Ampere)", (8, 0)),
    (0x2200, 0x22FF, "GA102 (Ampere)", (8, 6)),
    (0x2400, 0x25FF, "GA103/GA104/GA106/GA107 (Ampere)", (8, 6)),
    (0x2680, 0x28FF, "AD10x (Ada)", (8, 9)),
    (0x2300, 0x23FF, "GH100 (Hopper)", (9, 0)),
    (0x2900, 0x297F, "GB100 (Blackwell)", (10, 0)),
    (0x3180, 0x31FF, "GB110 (Blackwell Ultra)", (10, 3)),
    (0x2B80, 0x2BFF, "GB202 (Blackwell)", (12, 0)),
    (0x2C00, 0x2CFF, "GB203 (Blackwell)", (12, 0)),
    (0x2D00, 0x2DFF, "GB206/GB207 (Blackwell)", (12, 0)),
    (0x2F00, 0x2FFF, "GB205 (Blackwell)", (12, 0)),
    (0x2E00, 0x2E7F, "GB10 (Blackwell, DGX Spark)", (12, 1)),
)


def lookup(device_id: int) -> tuple[str | None, str | None, CC | None]:
    """(product name, chip family, compute capability) for a device id; None where unknown."""
    name = NAMES.get(device_id)
    for lo, hi, chip, cc in RANGES:
        if lo <= device_id <= hi:
            return name, chip, cc
    return name, None, None
