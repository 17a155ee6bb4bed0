"""Driver, container, NVML, NCCL and vLLM GPU-count messages, each assembled from the upstream format string named
above it (variable parts filled in): `explain` must name the article for that root cause at the exact tier.
These pin the signatures taken from upstream source; tests/test_kb_new_articles.py holds verbatim thread quotes."""

from __future__ import annotations

import pytest

from bwdoctor.explain import match_text
from bwdoctor.knowledge import load_all

ARTS = load_all()

CASES = [
    # cuGetErrorString / cudaGetErrorString text of error 216 (CUDA driver and runtime API docs)
    (
        "gpu-busy-or-unavailable",
        "RuntimeError: CUDA error: exclusive-thread device already in use by a different thread",
    ),
    # cudaError_t name of error 216 (CUDA runtime API docs)
    ("gpu-busy-or-unavailable", "cudaErrorDeviceAlreadyInUse"),
    # CUresult name of error 216 (CUDA driver API docs)
    ("gpu-busy-or-unavailable", "CUDA_ERROR_CONTEXT_ALREADY_IN_USE"),
    # cudaGetErrorString text of error 34 (CUDA runtime API docs), as torch prints it
    ("cuda-stub-libcuda", "RuntimeError: CUDA error: CUDA driver is a stub library"),
    # NVIDIA/nccl src/transport/nvls.cc
    (
        "fabric-manager-missing",
        "transport/nvls.cc:376 NCCL WARN Failed to bind NVLink SHARP (NVLS) Multicast memory of size 2097152 "
        ": CUDA error 1 'invalid argument'.\n"
        "This is usually caused by a system or configuration error in the Fabric Manager or NVSwitches.",
    ),
    # NVIDIA/nccl src/os/linux.cc (Error while %s shared memory segment)
    (
        "nccl-shm-too-small",
        "misc/shmutils.cc:122 NCCL WARN Error while attaching to shared memory segment /dev/shm/nccl-xQ2dc9 ("
        "size 9637888), error: No such file or directory (2)",
    ),
    # NVIDIA/nccl src/os/linux.cc (failed to create shared memory file)
    (
        "nccl-shm-too-small",
        "NCCL WARN Error: failed to create shared memory file /dev/shm/nccl-abc123, error No space left on device (28)",
    ),
    # NVIDIA/libnvidia-container src/cli/configure.c (prefix nvidia-container-cli.real in the GPU operator)
    (
        "no-driver-in-container",
        "stderr: nvidia-container-cli.real: initialization error: load library failed: libnvidia-ml.so.1: can"
        "not open shared object file: no such file or directory: unknown",
    ),
    # NVIDIA/libnvidia-container src/cli/configure.c (permission error)
    (
        "no-driver-in-container",
        "nvidia-container-cli: permission error: capability change failed: operation not permitted",
    ),
    # NVIDIA/nvidia-container-toolkit internal/config/image/cuda_image.go
    (
        "no-driver-in-container",
        'level=warning msg="Ignoring devices requested by environment variable(s) in unprivileged container: '
        '[NVIDIA_VISIBLE_DEVICES]"',
    ),
    # NVIDIA/open-gpu-kernel-modules kernel-open/nvidia/nv-pci.c
    (
        "rebar-above4g-disabled",
        "NVRM: This PCI I/O region assigned to your NVIDIA device is invalid:\n"
        "NVRM: BAR1 is 0M @ 0x0 (PCI:0000:0b:00.0)",
    ),
    # NVIDIA/open-gpu-kernel-modules kernel-open/nvidia/nv-pci.c
    ("rebar-above4g-disabled", "NVRM: BAR1 is 0M @ 0x0 (PCI:0000:41:00.0)"),
    # NVIDIA/open-gpu-kernel-modules kernel-open/nvidia/nv-pci.c
    ("rebar-above4g-disabled", "NVRM: No address space to allocate resized BAR1."),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/src/kernel/gpu/gsp/arch/turing/kernel_gsp_tu102.c
    (
        "gsp-init-failure",
        "NVRM: GPU0 kgspBootstrap_GH100: failed to wait for GFW boot complete: 0x55 VBIOS version 96.00.89.00.01",
    ),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/src/kernel/gpu/gsp/kernel_gsp.c
    ("gsp-init-failure", "NVRM: ================ GSP core unresponsive ==============="),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/src/kernel/gpu/gsp/kernel_gsp.c
    ("gsp-init-failure", "NVRM: GPU1 kgspBootstrap_TU102: need firmware to initialize GSP"),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/src/kernel/gpu/gsp/arch/turing/kernel_gsp_booter_tu102.c
    (
        "gsp-init-failure",
        "NVRM: GPU0 kgspExecuteBooterLoad_TU102: failed to execute Booter Load (ucode for initial boot): 0x56",
    ),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/src/kernel/gpu/gsp/kernel_gsp.c
    ("gsp-init-failure", "NVRM: GPU0 kgspInitRm_IMPL: Max GSP-RM boot attempts exceeded: 3/3"),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/src/kernel/gpu/gsp/kernel_gsp.c
    ("gsp-init-failure", "NVRM: GPU0 _kgspIsHeartbeatTimedOut: GSP RM heartbeat timed out"),
    # vllm-project/vllm vllm/executor/multiproc_gpu_executor.py (older releases)
    ("tp-exceeds-gpus", "AssertionError: please set tensor_parallel_size to less than max local gpu count"),
    # vllm-project/vllm vllm/v1/executor/ray_utils.py
    (
        "tp-exceeds-gpus",
        "ValueError: Cannot provide a placement group requiring 8.0 GPUs (placement_group_specs=[{'GPU': 1.0}"
        "]) within 1800 seconds.\n"
        "Tensor parallel size may exceed available GPUs in your cluster.",
    ),
    # vllm-project/vllm vllm/v1/executor/ray_utils.py
    (
        "tp-exceeds-gpus",
        "WARNING ray_utils.py:300] Total GPU requirement (world_size=4) exceeds locally visible GPUs (2). For"
        " multi-node Ray clusters, this may be expected",
    ),
    # NVIDIA/nccl src/enqueue.cc
    (
        "nccl-too-old-blackwell",
        "enqueue.cc:81 NCCL WARN cudaArch 1200 dynamic smem 215040 exceeds device/fn maxSharedMem 101376",
    ),
    # NVIDIA/nccl src/transport/net_ib/common.h
    (
        "pcie-p2p-acs-iommu",
        "NCCL INFO HINT: In many cases this error occurs when ACS is enabled which would break GPU Direct RDM"
        "A protocol.",
    ),
    # NVML's nvmlErrorString text for NVML_ERROR_DRIVER_NOT_LOADED
    ("no-driver-in-container", "Failed to initialize NVML: Driver Not Loaded"),
    # NVIDIA/nccl src/misc/nvmlwrap.cc
    ("no-driver-in-container", "misc/nvmlwrap.cc:142 NCCL WARN nvmlInit_v2() failed: Driver Not Loaded"),
    # NVIDIA/open-gpu-kernel-modules kernel-open/nvidia/nv-pci.c
    ("driver-older-than-gpu", "NVRM: ignoring the legacy GPU 0000:01:00.0"),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/arch/nvalloc/unix/src/osapi.c (vGPU host)
    (
        "open-kernel-module",
        "NVRM: The NVIDIA GPU 0000:3b:00.0 (PCI ID: 10de:1eb8)\n"
        "NVRM: installed in this vGPU host system is not supported by\n"
        "NVRM: open nvidia.ko.\n"
        "NVRM: Please see the 'Open Linux Kernel Modules' and 'GSP\n"
        "NVRM: Firmware' sections in the NVIDIA Virtual GPU (vGPU)",
    ),
    # NVIDIA/open-gpu-kernel-modules kernel-open/nvidia/linux_nvswitch.c
    ("fabric-manager-missing", "nvidia-nvswitch: Version mismatch, kernel version 535.129.03 user version 535.104.05"),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/src/kernel/compute/fm_session_api.c
    ("fabric-manager-missing", "NVRM: nvidia-fabricmanager daemon shutdown detected, robust channel recovery invoked!"),
    # NVIDIA/open-gpu-kernel-modules src/nvidia/arch/nvalloc/unix/src/osapi.c
    (
        "driver-library-mismatch",
        "NVRM: kernel module and all NVIDIA driver components\nNVRM: have the same version.",
    ),
    # numba numba/cuda/cudadrv/driver.py
    (
        "cuda-unknown-error-999",
        "numba.cuda.cudadrv.driver.CudaAPIError: [999] Call to cuInit results in CUDA_ERROR_UNKNOWN",
    ),
    # NVIDIA/open-gpu-kernel-modules kernel-open/nvidia-peermem/nvidia-peermem.c
    (
        "peermem-nccl-hang",
        "nvidia-peermem nv_mem_client_init:477 ERROR nv_mem_client_init -- error while registering traditional client",
    ),
    # triton-inference-server/server nvidia_entrypoint.sh
    (
        "no-driver-in-container",
        "WARNING: The NVIDIA Driver was not detected.  GPU functionality will not be available.\n"
        "   Use the NVIDIA Container Toolkit to start this container with GPU support;",
    ),
    # triton-inference-server/server nvidia_entrypoint.sh
    (
        "driver-too-old",
        "ERROR: This container was built for NVIDIA Driver Release 460.32 or later, but\n"
        "       version 430.26 was detected and compatibility mode is UNAVAILABLE.",
    ),
    # NVIDIA/k8s-device-plugin internal/plugin/factory.go
    (
        "no-driver-in-container",
        "E0531 10:11:12.123456 1 factory.go:87] If this is a GPU node, did you set the docker default runtime"
        " to `nvidia`?",
    ),
    # NVIDIA/k8s-device-plugin cmd/nvidia-device-plugin/main.go
    ("no-driver-in-container", "I0601 08:00:00.000000 1 main.go:416] No devices found. Waiting indefinitely."),
    # NVIDIA/open-gpu-kernel-modules Xid 79 wording (docs.nvidia.com/deploy/xid-errors)
    (
        "gpu-fallen-off-bus",
        "NVRM: GPU at PCI:0000:06:00: GPU-0b6b7808-c002-f593-ac86-cd8e57757b94\n"
        "NVRM: GPU Board Serial Number: 0\n"
        "NVRM: Xid (PCI:0000:06:00): 79, GPU has fallen off the bus.\n"
        "NVRM: GPU 0000:06:00.0: GPU has fallen off the bus.\n"
        "NVRM: kgspRcAndNotifyAllChannels_IMPL: RC all channels for critical error 79.\n"
        "NVRM: _issueRpcAndWait: rpcSendMessage failed with status 0x0000000f for fn 78 sequence 7869!",
    ),
    # nvidia-smi with NVML_ERROR_GPU_IS_LOST
    (
        "gpu-fallen-off-bus",
        "Unable to determine the device handle for GPU 0000:05:00.0: GPU is lost.  Reboot the system to recov"
        "er this GPU",
    ),
    # torvalds/linux drivers/pci/setup-res.c
    ("rebar-above4g-disabled", "pci 0000:01:00.0: BAR 1 [mem size 0x800000000 64bit pref]: failed to assign"),
    # NVIDIA/nvidia-installer kernel.c
    (
        "secure-boot-unsigned-module",
        "ERROR: The kernel module failed to load. Secure boot is enabled on this system, so this is likely be"
        "cause it was not signed by a key that is trusted by the kernel. Please try installing the driver aga"
        "in, and sign the kernel module when prompted to do so.",
    ),
    # vllm-project/vllm vllm/platforms/cuda.py
    (
        "gpus-hidden",
        "RuntimeError: CUDA_VISIBLE_DEVICES is set to empty string, which means GPU support is disabled. If y"
        "ou are using ray, please unset the environment variable `CUDA_VISIBLE_DEVICES` inside the worker/act"
        "or.",
    ),
    # NVIDIA/nccl src/misc/nvmlwrap.cc with NVML's GPU is lost
    ("gpu-fallen-off-bus", "misc/nvmlwrap.cc:166 NCCL WARN nvmlDeviceGetHandleByIndex(1) failed: GPU is lost"),
    # NVIDIA/nvidia-installer misc.c
    (
        "gpu-claimed-by-other-driver",
        "WARNING: The Nouveau kernel driver is currently in use by your system.  This driver is incompatible "
        "with the NVIDIA driver, and must be disabled before proceeding.",
    ),
]


@pytest.mark.parametrize("slug,text", CASES, ids=[f"{s}-{i}" for i, (s, _) in enumerate(CASES)])
def test_upstream_wording_names_its_article(slug, text):
    res = match_text(text, ARTS)
    assert res and res[0]["slug"] == slug, [(m["slug"], m["tier"]) for m in res]
    assert res[0]["tier"] == "exact"
