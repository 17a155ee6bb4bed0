"""Checks of the NVIDIA driver, kernel modules and GPU visibility (family driver, BW2xx)."""

from __future__ import annotations

from bwdoctor.domain.arch import is_blackwell
from bwdoctor.domain.versions import driver_version_tuple, kernel_version_tuple
from bwdoctor.model import Pass, Problem, Skip, Unavailable
from bwdoctor.registry import check

# NVIDIA's first driver branch with Blackwell support is R570 (CUDA 12.8 GA needs >= 570.26; RTX 50xx
# launched with 570.86/570.124); see kb/driver-too-old.md for the sources.
BLACKWELL_MIN_DRIVER = (570, 0)
PEERMEM_KERNEL = (6, 14)


def _blackwell(gpus):
    return [g for g in gpus if is_blackwell(g.get("cc"))]


@check("BW201", "peermem-on-new-kernel", severity="warning", kb="peermem-nccl-hang")
def peermem_on_new_kernel(kernel_release, kernel_modules):
    """nvidia_peermem is not loaded on a kernel ≥ 6.14."""
    kv = kernel_version_tuple(kernel_release)
    loaded = any(m.get("name") == "nvidia_peermem" for m in kernel_modules)
    if not loaded:
        return Pass("nvidia_peermem is not loaded", {"kernel": kernel_release})
    if kv is None or kv < PEERMEM_KERNEL:
        return Pass(f"nvidia_peermem is loaded on kernel {kernel_release} (< 6.14)", {"kernel": kernel_release})
    return Problem(
        f"nvidia_peermem is loaded on kernel {kernel_release}: on kernels ≥ 6.14 use DMA-BUF instead "
        "(unload nvidia_peermem and set NCCL_DMABUF_ENABLE=1); peermem there leads to NCCL hangs "
        "and 'detected invalid context' errors",
        {
            "kernel": kernel_release,
            "module": "nvidia_peermem",
            "fix": "sudo modprobe -r nvidia_peermem && export NCCL_DMABUF_ENABLE=1",
        },
    )


@check("BW202", "blackwell-needs-open-module", severity="error", kb="open-kernel-module")
def blackwell_needs_open_module(gpus, nvidia_driver):
    """Blackwell GPUs run with the open NVIDIA kernel module."""
    bw = _blackwell(gpus)
    if not bw:
        return Skip("no Blackwell GPU on this machine")
    if nvidia_driver.get("flavour") == "open":
        return Pass(f"open kernel module {nvidia_driver.get('version')} with {bw[0].get('name')}")
    names = sorted({g.get("name") or "Blackwell GPU" for g in bw})
    return Problem(
        f"{', '.join(names)} needs the open NVIDIA kernel module, but the proprietary module "
        f"{nvidia_driver.get('version')} is loaded: the GPU fails to initialise (RmInitAdapter failed, "
        "'No devices were found')",
        {
            "driver": nvidia_driver.get("version"),
            "flavour": nvidia_driver.get("flavour"),
            "gpus": names,
            "fix": "install the -open driver flavour (e.g. apt install nvidia-driver-580-open), then reboot",
        },
    )


@check("BW203", "driver-supports-blackwell", severity="error", kb="driver-too-old")
def driver_supports_blackwell(gpus, nvidia_driver):
    """The NVIDIA driver is new enough for the Blackwell GPUs present (R570 or later)."""
    bw = _blackwell(gpus)
    if not bw:
        return Skip("no Blackwell GPU on this machine")
    ver = driver_version_tuple(nvidia_driver.get("version") or "")
    if ver is None:
        return Skip(f"driver version {nvidia_driver.get('version')!r} is not numeric")
    if ver >= BLACKWELL_MIN_DRIVER:
        return Pass(f"driver {nvidia_driver['version']} supports Blackwell")
    return Problem(
        f"driver {nvidia_driver['version']} predates Blackwell support: {bw[0].get('name')} needs R570 or "
        "later (and CUDA 12.8+ software)",
        {
            "driver": nvidia_driver["version"],
            "required": "570",
            "gpus": [g.get("name") for g in bw],
            "fix": "install NVIDIA driver 570 or newer, open flavour (e.g. nvidia-driver-580-open)",
        },
    )


HIDDEN_VALUES = ("-1", "", "none", "void", "nodevfiles")


def _visible_spec(environment):
    return environment.get("CUDA_VISIBLE_DEVICES")


@check("BW204", "gpus-hidden", severity="error", kb="gpus-hidden")
def gpus_hidden(gpus, environment):
    """CUDA_VISIBLE_DEVICES leaves the GPUs of this machine visible."""
    spec = _visible_spec(environment)
    if spec is None:
        return Pass("CUDA_VISIBLE_DEVICES is not set", {})
    if not gpus:
        return Skip("no NVIDIA GPU found to hide")
    items = [s.strip() for s in spec.split(",")]
    first = items[0] if items else ""
    count = len(gpus)
    if first.lower() in HIDDEN_VALUES or first.startswith("-"):
        return Problem(
            f"CUDA_VISIBLE_DEVICES={spec!r} hides all {count} GPU(s) present: CUDA, torch and vLLM will see "
            "no device ('No CUDA GPUs are available')",
            {"CUDA_VISIBLE_DEVICES": spec, "gpus_present": count, "fix": "unset CUDA_VISIBLE_DEVICES"},
        )
    visible = []
    for s in items:  # CUDA stops at the first invalid entry
        if s.isdigit() and int(s) < count:
            visible.append(s)
        elif s.startswith(("GPU-", "MIG-")) and any((g.get("uuid") or "").startswith(s) for g in gpus):
            visible.append(s)
        elif s.startswith(("GPU-", "MIG-")) and not any(g.get("uuid") for g in gpus):
            visible.append(s)  # no UUIDs known (PCI only): cannot judge, assume valid
        else:
            break
    if not visible:
        return Problem(
            f"CUDA_VISIBLE_DEVICES={spec!r} names no GPU of this machine ({count} present, indices 0–{count - 1}): "
            "CUDA will see no device",
            {"CUDA_VISIBLE_DEVICES": spec, "gpus_present": count, "fix": "set CUDA_VISIBLE_DEVICES to valid indices"},
        )
    if len(visible) < len(items):
        return Problem(
            f"CUDA_VISIBLE_DEVICES={spec!r}: entry {items[len(visible)]!r} is not a GPU of this machine, so "
            f"CUDA stops there and sees only {len(visible)} device(s)",
            {"CUDA_VISIBLE_DEVICES": spec, "gpus_present": count, "visible": visible},
            severity="warning",
        )
    return Pass(f"CUDA_VISIBLE_DEVICES={spec} shows {len(visible)} of {count} GPU(s)")


@check(
    "BW205", "nvidia-gpu-present", severity="warning", kb="no-driver-in-container", optional=("gpus", "nvidia_driver")
)
def nvidia_gpu_present(gpus, nvidia_driver):
    """An NVIDIA GPU is present and its driver answers."""
    if not isinstance(gpus, Unavailable) and gpus:
        return Pass(f"{len(gpus)} NVIDIA GPU(s): " + ", ".join(sorted({g.get("name") or "?" for g in gpus})))
    why = [x.reason for x in (gpus, nvidia_driver) if isinstance(x, Unavailable)]
    state = (
        why[0]
        if why and why[0].startswith("no NVIDIA GPU found")
        else "no NVIDIA GPU found (" + ("; ".join(why) or "the driver is loaded but reports no GPU") + ")"
    )
    if len(why) > 1:
        state += "; " + why[1]
    return Problem(
        state + "; in a container, start it with the NVIDIA "
        "container toolkit (docker run --gpus all); pass --target sm_XY to check software for a GPU "
        "this machine lacks",
        {"driver": state},
    )


# NVIDIA: CUDA forward compatibility is supported on data-center GPUs (and select NGC-ready RTX
# server parts), not on GeForce or workstation cards (docs.nvidia.com/deploy/cuda-compatibility).
def _forward_compat_capable(name: str) -> bool:
    n = (name or "").lower()
    return not any(k in n for k in ("geforce", "titan", "quadro", "rtx", "laptop", "gb10"))


@check("BW206", "libcuda-matches-driver", severity="error", kb="cuda-compat-mismatch", optional=("gpus",))
def libcuda_matches_driver(libcuda, nvidia_driver, gpus):
    """The libcuda.so.1 the loader picks belongs to the running kernel driver (no misused compat copy)."""
    chosen = libcuda.get("chosen")
    if not chosen:
        return Skip("no libcuda.so.1 visible to the loader")
    drv = nvidia_driver.get("version")
    names = [] if isinstance(gpus, Unavailable) else [g.get("name") or "" for g in gpus]
    ev = {"path": chosen["path"], "via": chosen["via"], "libcuda": chosen["version"], "driver": drv}
    if not chosen["compat"]:
        if chosen["version"] and drv and chosen["version"] != drv:
            return Problem(
                f"{chosen['path']} is libcuda {chosen['version']} but the kernel module is {drv}: "
                "a driver upgrade left old user-space libraries ('CUDA driver version is insufficient', "
                "'Failed to initialize NVML: Driver/library version mismatch')",
                dict(ev, fix="reinstall the driver's user-space packages for " + drv + ", or reboot after an upgrade"),
                kb="driver-library-mismatch",
            )
        return Pass(f"libcuda.so.1 → {chosen['real']} ({chosen['via']})")
    unsupported = [n for n in names if not _forward_compat_capable(n)]
    if unsupported:
        return Problem(
            f"{chosen['path']} ({chosen['via']}) is a CUDA forward-compatibility libcuda {chosen['version'] or ''} but "
            f"{unsupported[0]} does not support forward compatibility: CUDA fails with 'Error 804: forward "
            "compatibility was attempted on non supported HW'",
            dict(
                ev,
                fix="remove the compat directory from LD_LIBRARY_PATH / /etc/ld.so.conf.d and run ldconfig "
                "(vLLM images: unset VLLM_ENABLE_CUDA_COMPATIBILITY)",
            ),
        )
    if chosen["version"] and drv:
        have, running = driver_version_tuple(chosen["version"]), driver_version_tuple(drv)
        if have and running and have < running:
            return Problem(
                f"{chosen['path']} is forward-compat libcuda {chosen['version']}, older than the kernel driver {drv}: "
                "CUDA fails with 'Error 803: system has unsupported display driver / cuda driver combination'",
                dict(ev, fix="drop the compat libraries: the host driver is newer than them"),
            )
    return Pass(f"forward-compat libcuda {chosen['version']} on a data-center GPU with driver {drv}")
