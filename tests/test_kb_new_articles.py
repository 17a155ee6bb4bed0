"""The environment articles added for errors real users hit often (driver/library mismatch, Fabric Manager,
/dev/shm, busy GPUs, CUDA's unknown error): each excerpt is quoted verbatim from the thread or page cited above
it, and `explain` must name its article first; look-alike text must not reach these articles."""

from __future__ import annotations

import pytest

from bwdoctor.explain import match_text
from bwdoctor.knowledge import load_all

ARTS = load_all()
NEW = {
    "driver-library-mismatch",
    "fabric-manager-missing",
    "nccl-shm-too-small",
    "gpu-busy-or-unavailable",
    "cuda-unknown-error-999",
    "cuda-stub-libcuda",
    "gpu-fallen-off-bus",
    "secure-boot-unsigned-module",
    "gpu-claimed-by-other-driver",
}

CASES = [
    # https://github.com/mozilla/translations/issues/1167
    (
        "driver-library-mismatch",
        "[task 2025-07-01T05:06:30.005+00:00] [train] [nvidia-smi(stdout)] Failed to initialize NVML: "
        "Driver/library version mismatch\n"
        "[task 2025-07-01T05:06:30.005+00:00] [train] [nvidia-smi(stdout)] NVML library version: 550.144",
    ),
    # https://github.com/saharmor/dalle-playground/issues/104 (the container toolkit's wording)
    (
        "driver-library-mismatch",
        "ERROR: for dalle-backend  Cannot start service dalle-backend: failed to create shim: OCI runtime create \n"
        "failed: runc create failed: unable to start container process: error during container init: error running \n"
        "hook #0: error running hook: exit status 1, stdout: , stderr: nvidia-container-cli: initialization error: \n"
        "nvml error: driver/library version mismatch: unknown",
    ),
    # https://github.com/negativo17/nvidia-driver/issues/43
    (
        "driver-library-mismatch",
        "NVRM: API mismatch: the client has the version 390.25, but\n"
        "NVRM: this kernel module has the version 390.12.  Please\n"
        "NVRM: make sure that this kernel module and all NVIDIA driver\n"
        "NVRM: components have the same version.",
    ),
    # https://github.com/Frogging-Family/nvidia-all/issues/394 (newer drivers name the client)
    (
        "driver-library-mismatch",
        "[    9.424670] NVRM: API mismatch: the client 'kwin_wayland' (pid 1005)\n"
        "               NVRM: has the version 595.84, but this kernel module has\n"
        "               NVRM: the version 595.80.  Please make sure that this\n"
        "               NVRM: kernel module and all NVIDIA driver components\n"
        "               NVRM: have the same version.",
    ),
    # https://github.com/huggingface/huggingface_hub/issues/4134
    (
        "fabric-manager-missing",
        "RuntimeError: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before calling "
        "NumCudaDevices() that might have already set an error? Error 802: system not yet initialized",
    ),
    # https://github.com/pytorch/pytorch/issues/35710
    (
        "fabric-manager-missing",
        "cudaGetDeviceProperties returned 802\n-> system not yet initialized\n"
        'CUDA error at bandwidthTest.cu:256 code=802(cudaErrorSystemNotReady) "cudaSetDevice(currentDevice)" ',
    ),
    # https://github.com/NVIDIA/gpu-operator/issues/544
    (
        "fabric-manager-missing",
        "nv-fabricmanager[3228]: fabric manager NVIDIA GPU driver interface version 530.30.02 don't match with "
        "driver version 530.41.03. Please update with matching NVIDIA driver package.",
    ),
    # https://github.com/ollama/ollama/issues/12136
    ("fabric-manager-missing", "> > ggml_cuda_init: failed to initialize CUDA: system not yet initialized"),
    # https://github.com/NVIDIA/nccl-tests/issues/166
    (
        "nccl-shm-too-small",
        "ubuntu:9621:9691 [6] misc/shmutils.cc:71 NCCL WARN Error: failed to extend /dev/shm/nccl-fjwOOB to "
        "5967876 bytes\n\n"
        "ubuntu:9621:9691 [6] misc/shmutils.cc:112 NCCL WARN Error while creating shared memory segment "
        "/dev/shm/nccl-fjwOOB (size 5967872)\n"
        "ubuntu:9621:9691 [6] NCCL INFO transport/shm.cc:114 -> 2",
    ),
    # https://github.com/NVIDIA/nccl/issues/342
    (
        "nccl-shm-too-small",
        "include/shm.h:28 NCCL WARN Call to posix_fallocate failed: No space left on device\n"
        "include/shm.h:48 NCCL WARN Error while creating shared memory segment nccl-shm-recv-250a7cc850ba9298-0-1-3 "
        "(size 9637888)",
    ),
    # https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting/runtime_and_mpi_issues.html
    ("nccl-shm-too-small", "NCCL WARN Error: failed to extend /dev/shm/nccl-03v824 to 4194660 bytes"),
    # https://github.com/open-mmlab/mmsegmentation/issues/1356
    (
        "nccl-shm-too-small",
        "**ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory "
        "(shm).**\n"
        "**RuntimeError: DataLoader worker (pid 7579) is killed by signal: Bus error. It is possible that "
        "dataloader's workers are out of shared memory. Please try to raise your shared memory limit.",
    ),
    # https://github.com/ggml-org/llama.cpp/issues/11841
    (
        "gpu-busy-or-unavailable",
        "CUDA error: CUDA-capable device(s) is/are busy or unavailable\n"
        "  current device: 0, in function ggml_cuda_set_device at "
        "/appuser/llama.cpp/llama.cpp-b4704/ggml/src/ggml-cuda/ggml-cuda.cu:86\n"
        "  cudaSetDevice(device)",
    ),
    # https://github.com/hiyouga/LlamaFactory/issues/10240 (the issue title)
    (
        "gpu-busy-or-unavailable",
        "运行vllm_infer.py 报错：torch.AcceleratorError: CUDA error: CUDA-capable device(s) is/are busy or unavailable",
    ),
    # https://github.com/NVIDIA/DIGITS/issues/2005
    (
        "gpu-busy-or-unavailable",
        "Check failed: error == cudaSuccess (46 vs. 0)  all CUDA-capable devices are busy or unavailable",
    ),
    # https://github.com/pytorch/pytorch/issues/3871
    (
        "gpu-busy-or-unavailable",
        "THCudaCheck FAIL file=/opt/conda/conda-bld/pytorch_1503970438496/work/torch/lib/THC/generic/THCStorage.cu "
        "line=66 error=46 : all CUDA-capable devices are busy or unavailable",
    ),
    # https://github.com/pytorch/pytorch/issues/115340
    (
        "cuda-unknown-error-999",
        ">>> import torch\n>>> torch.cuda.is_available()\n"
        "$HOME/.conda/envs/my_env/lib/python3.10/site-packages/torch/cuda/__init__.py:138: UserWarning: CUDA "
        "initialization: CUDA unknown error - this may be due to an incorrectly set up environment, e.g. changing "
        "env variable CUDA_VISIBLE_DEVICES after program start. Setting the available devices to be zero. "
        "(Triggered internally at ../c10/cuda/CUDAFunctions.cpp:108.)\n"
        "  return torch._C._cuda_getDeviceCount() > 0\nFalse",
    ),
    # https://github.com/gbionics/jaxsim/issues/50
    (
        "cuda-unknown-error-999",
        "> 2023-10-04 12:33:47.594219: E external/xla/xla/stream_executor/cuda/cuda_driver.cc:268] failed call to "
        "cuInit: CUDA_ERROR_UNKNOWN: unknown error\n"
        "No GPU/TPU found, falling back to CPU. (Set TF_CPP_MIN_LOG_LEVEL=0 and rerun for more info.)",
    ),
    # https://github.com/im-djh/CMD/issues/4 (the issue title)
    ("cuda-stub-libcuda", "CudaAPIError: [34] Call to cuInit results in CUDA_ERROR_STUB_LIBRARY"),
    # https://github.com/horovod/horovod/issues/3831 (the issue title)
    ("cuda-stub-libcuda", "NCCL WARN Cuda failure 'CUDA driver is a stub library', then segfault"),
    # https://github.com/NVIDIA/cutlass/issues/1636 (the issue title)
    ("cuda-stub-libcuda", "[QST] Error: Could not detect active GPU device ID [CUDA driver is a stub library]"),
    # https://github.com/NVIDIA/NVSentinel/issues/155 (no Xid line)
    (
        "gpu-fallen-off-bus",
        "[ 1843.308145] NVRM: The NVIDIA GPU 0000:b3:00.0\n"
        "               NVRM: (PCI ID: 10de:26b5) installed in this system has\n"
        "               NVRM: fallen off the bus and is not responding to commands.",
    ),
    # https://github.com/NVIDIA/open-gpu-kernel-modules/issues/1151
    (
        "gpu-fallen-off-bus",
        "NVRM: Xid (PCI:0000:06:00): 79, GPU has fallen off the bus.\n"
        "NVRM: GPU 0000:06:00.0: GPU has fallen off the bus.",
    ),
    # https://github.com/leptonai/gpud/issues/604 (NVML's status name)
    (
        "gpu-fallen-off-bus",
        "failed to get remapped rows for GPU-ac896b35-5782-c478-4b2a-a661de07770f: failed to get device remapped "
        "rows: ERROR_GPU_IS_LOST",
    ),
    # https://github.com/Delfictus/PRISM-AI-DoD/blob/main/docs/development/SECURE_BOOT_FIX.md
    ("secure-boot-unsigned-module", "Error: `modprobe: ERROR: could not insert 'nvidia': Key was rejected by service`"),
    # https://github.com/NVIDIA/nvidia-installer/blob/main/kernel.c (the installer's message, as it prints it)
    (
        "secure-boot-unsigned-module",
        "ERROR: The kernel module failed to load. Secure boot is enabled on this system, so this is likely because "
        "it was not signed by a key that is trusted by the kernel. Please try installing the driver again, and "
        "sign the kernel module when prompted to do so.",
    ),
    # https://github.com/MrMEEE/ironhide/issues/41 (an older driver's wording)
    (
        "gpu-claimed-by-other-driver",
        "[ 9687.215135] NVRM: The NVIDIA probe routine was not called for 1 device(s).\n"
        "[ 9687.215145] NVRM: This can occur when a driver such as nouveau, rivafb,\n"
        "[ 9687.215149] NVRM: nvidiafb, or rivatv was loaded and obtained ownership of\n"
        "[ 9687.215153] NVRM: the NVIDIA device(s).",
    ),
    # https://github.com/NVIDIA/nvidia-installer/blob/main/misc.c (the installer's warning, as it prints it)
    (
        "gpu-claimed-by-other-driver",
        "WARNING: The Nouveau kernel driver is currently in use by your system.  This driver is incompatible with "
        "the NVIDIA driver, and must be disabled before proceeding.",
    ),
]

# Text near these topics that belongs elsewhere or is no error at all
LOOKALIKES = [
    # https://docs.vllm.ai/en/latest/serving/deploying_with_docker.html: the recommended command, no error
    "$ docker run --runtime nvidia --gpus all \\\n-v ~/.cache/huggingface:/root/.cache/huggingface \\\n"
    '--env "HUGGING_FACE_HUB_TOKEN=<secret>" \\\n-p 8000:8000 \\\n--ipc=host \\\nvllm/vllm-openai:latest \\\n'
    "--model mistralai/Mistral-7B-v0.1",
    # https://github.com/NVIDIA/nvidia-docker/issues/1671: a container that lost its GPU (no-driver-in-container)
    "root@098b49afe624:/# nvidia-smi \nFailed to initialize NVML: Unknown Error",
    # Triton's OutOfResources (a kernel's on-chip shared memory, not /dev/shm), as tests/test_explain_generalize.py
    "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 131072, Hardware limit: "
    "101376. Reducing block sizes or `num_stages` may help.",
    # a link step that names the toolkit's stubs directory on purpose (no error)
    "g++ -shared build/temp.linux-x86_64-cpython-311/csrc/ops.o -L/usr/local/cuda/lib64/stubs -lcuda -lcudart "
    "-o build/lib/_C.so",
    # https://github.com/JafarAkhondali/acer-predator-turbo-and-rgb-keyboard-linux-module/issues/113: Secure Boot
    # refusing a module that is not NVIDIA's
    "insmod: ERROR: could not insert module src/facer.ko: Key was rejected by service",
    # https://github.com/Bumblebee-Project/Bumblebee/issues/810: the installer's generic load failure names nouveau
    # among possible causes; the kernel lines after it blame an unsupported GPU (driver-older-than-gpu)
    "ERROR: Unable to load the kernel module 'nvidia.ko'.  This happens most frequently when this kernel module "
    "was built against the wrong or improperly configured kernel sources, with a version of gcc that differs "
    "from the one used to build the target kernel, or if a driver such as rivafb, nvidiafb, or nouveau is "
    "present and prevents the NVIDIA kernel module from obtaining ownership of the NVIDIA graphics device(s), "
    "or no NVIDIA GPU installed in this system is supported by this NVIDIA Linux graphics driver release.",
]


@pytest.mark.parametrize("slug,text", CASES, ids=[f"{s}-{i}" for i, (s, _) in enumerate(CASES)])
def test_real_wording_is_explained_by_its_article(slug, text):
    res = match_text(text, ARTS)
    assert res, f"no article for a real {slug} excerpt"
    assert res[0]["slug"] == slug, [(m["slug"], m["tier"]) for m in res]
    assert res[0]["tier"] == "exact"


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_do_not_reach_the_new_articles(text):
    assert not {m["slug"] for m in match_text(text, ARTS)} & NEW


def test_new_articles_cite_sources_and_each_has_real_cases():
    for slug in NEW:
        art = ARTS[slug]
        assert art.signatures and len(art.references) >= 5
        assert all(r.startswith("https://") for r in art.references)
    assert {s for s, _ in CASES} == NEW
