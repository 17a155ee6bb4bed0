"""Classes of this round, answered by the rules alone (the corpus model switched off, so that the rule is what is
tested), each on a real development row (benchmarks/explain_eval, by id) or an upstream program's own message as
its source prints it (the file is named beside each):

- GPU code missing for an arch said in a sentence ("has no SM70 kernel image") is no-kernel-image;
- a driver floor in a library's words, a kernel's capability ceiling (a GPU too new), a capability floor given as
  an architecture's name, an sm number or a tuple, a CUDA library a program loads by its own name;
- NCCL's own "Cuda failure" WARN line without the NCCL error around it, a soname written ``libibverbs.so[.1]``,
  the peer-memory module "not ready";
- the kernel driver's load banner, a benign minor CUDA mismatch, Ollama's context-size warning and CUDA used
  before a fork are not environment failures; generic phrases ("make sure", "unable to load") decide nothing.
"""

from __future__ import annotations

import pytest
from evalrows import ROWS, slugs

from bwdoctor.explain import extract_evidence

pytestmark = pytest.mark.usefixtures("rules_only")

top = slugs


def first(text: str):
    got = top(text)
    return got[0] if got else None


def test_a_kernel_image_missing_for_an_arch_in_words_is_no_kernel_image():
    assert first(ROWS["h11184"]["excerpt"]) == "no-kernel-image"  # gptq_marlin_repack has no SM70 kernel image
    assert first("The sm_120 kernel image is missing from the 0.9.2 wheel") == "no-kernel-image"
    assert first("flash_attn ships no kernel image for compute capability 12.0") == "no-kernel-image"


def test_kernel_images_without_an_arch_are_not_no_kernel_image():
    assert "no-kernel-image" not in top("there is no kernel image problem here, the model config is wrong")


@pytest.mark.parametrize(
    "text, slug",
    [
        # NCCL src/transport/net_ib (one-sided RMA), src/enqueue.cc (graph capture)
        ("NCCL WARN One-sided RMA requires CUDA driver 12.5 or later (found 12.4).", "driver-too-old"),
        # Ollama discover/cuda_compat.go
        (
            'level=WARN source=cuda_compat.go:70 msg="NVIDIA driver too old" device="NVIDIA GeForce GTX 1080" '
            'compute=6.1 driver=560 required_driver="570 or newer"',
            "driver-too-old",
        ),
        # xformers fmha operator reasons: a GPU newer than the kernel's ceiling, for FA3 and for another operator
        (
            "`fa3F@2.7.2` is not supported because:\n    requires device with capability <= (9, 0) but your GPU has "
            "capability (12, 0) (too new)",
            "fa3-blackwell",
        ),
        (
            "`cutlassF` is not supported because:\n    requires device with capability <= (9, 0) but your GPU has "
            "capability (12, 0) (too new)",
            "no-kernel-image",
        ),
        # DeepSpeed op_builder: a floor by the architecture's name
        (" [WARNING]  NVIDIA Inference is only supported on Pascal and newer architectures", "gpu-too-old"),
        # LMDeploy check_env: a quantized format's floor as an sm number
        ("<CUDA> check failed!\nmodel_format=fp8 requires sm>=9.0.", "quant-needs-newer-gpu"),
        # Numba cudadrv: a floor as a tuple
        ("CudaSupportError: <CUDA device 0 'b'Tesla K10.G1.8GB''> has compute capability < (3, 5)", "gpu-too-old"),
        # TransformerEngine common/__init__.py, JAX's CUDA plugin
        ("RuntimeError: cudnn shared object not found.", "missing-library"),
        ("RuntimeError: Unable to load cuDNN. Is it installed?", "missing-library"),
        # FlashInfer's NVSHMEM loader
        (
            "FileNotFoundError: Could not find libnvshmem_host.so or libnvshmem_host.so.3 in /usr/lib/nvshmem/lib",
            "missing-library",
        ),
        # CTranslate2: int8 asked of a GPU without efficient int8
        (
            "ValueError: Requested int8 compute type, but the target device or backend do not support efficient int8 "
            "computation.",
            "quant-needs-newer-gpu",
        ),
        # DeepSpeed op report: a system library's development package
        (
            " [WARNING]  async_io requires the dev libaio .so object and headers but these were not found.",
            "system-library-missing",
        ),
        # xformers / exllamav2: an extension built for another torch
        (
            "WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for a different version "
            "of PyTorch or Python.",
            "undefined-symbol",
        ),
        # vLLM's allocator assertion
        ("AssertionError: Expandable segments are not compatible with memory pool.", "allocator-conf"),
    ],
)
def test_a_library_saying_the_failure_in_its_own_words(text, slug):
    assert first(text) == slug


def test_a_gpu_too_new_for_a_kernel_is_not_a_gpu_too_old():
    text = "requires device with capability <= (9, 0) but your GPU has capability (12, 0) (too new)"
    assert "gpu-too-old" not in top(text)


def test_nccl_s_own_cuda_failure_line_carries_its_cuda_error():
    assert extract_evidence("NCCL WARN Cuda failure 'unknown error'")["nccl_error"] == "cuda failure: unknown error"
    assert first("misc/strongstream.cc:53 NCCL WARN Cuda failure 'unknown error'") == "cuda-unknown-error-999"
    # without NCCL in the text the same words are not NCCL's
    assert "nccl_error" not in extract_evidence("Cuda failure 'unknown error'")


def test_a_soname_with_its_optional_version_in_brackets_is_read():
    ev = extract_evidence("NCCL INFO Failed to open libibverbs.so[.1]")
    assert {"name": "libibverbs.so", "base": "libibverbs"} in ev["sonames"]
    assert first("NCCL INFO Failed to open libibverbs.so[.1]") == "system-library-missing"


def test_the_peer_memory_module_not_ready_is_peermem():
    assert first("nvidia-peermem driver is not ready") == "peermem-nccl-hang"


def test_the_kernel_driver_s_load_banner_is_not_a_failure():
    banner = (
        "NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  570.133.20  Release Build  "
        "(dvs-builder@U16-I3-B03-4-3)  Tue Mar 11 19:10:48 UTC 2025"
    )
    assert top(banner) == []
    # a failure after it is still read
    assert first(banner + "\nNVRM: GPU 0000:01:00.0: RmInitAdapter failed! (0x62:0x40:1860)") is not None


@pytest.mark.parametrize(
    "text",
    [
        # torch cpp_extension.py: it says itself that this is no problem
        "UserWarning: The detected CUDA version (12.4) has a minor version mismatch with the version that was used to "
        "compile PyTorch (12.1). Most likely this shouldn't be a problem.",
        # Ollama server.go
        'level=WARN source=server.go:114 msg="requested context size too large for model" num_ctx=131072 '
        "n_ctx_train=8192",
        # Numba: CUDA used before the program forked
        "numba.cuda.cudadrv.error.CudaDriverError: CUDA initialized before forking",
        # CuPy: a backend name of its own, not an attention backend
        "ValueError: Invalid backend cuda",
        # llama.cpp: a bad model file on a healthy GPU; "found 1 CUDA devices" and "unable to load" say nothing
        ROWS["h10057"]["excerpt"],
    ],
)
def test_not_an_environment_failure(text):
    assert top(text) == []


def test_a_generic_phrase_in_an_article_decides_nothing():
    # a missing cuDNN library with "make sure ... is in your library path" (faster-whisper) stays a missing library
    assert first(ROWS["h12152"]["excerpt"]) == "missing-library"


@pytest.mark.parametrize(
    "text, slug",
    [
        # vLLM platforms/__init__.py, utils/mem_utils.py, envs.py, CMakeLists.txt, utils/numa_utils.py
        (
            "RuntimeError: Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG` "
            "to turn on verbose logging to help debug the issue.",
            "no-driver-in-container",
        ),
        (
            "AssertionError: Error in memory profiling. Initial free memory 23890755584, current free memory "
            "24101224448. This happens when the GPU memory was not properly cleaned up before initializing the vLLM "
            "instance.",
            "startup-oom",
        ),
        (
            "WARNING 04-21 12:32:10 [envs.py:1744] Unknown vLLM environment variable detected: VLLM_USE_V1",
            "unknown-serve-option",
        ),
        (
            "-- Not building scaled_mm_c3x_sm120 as CUDA Compiler version is not >= 12.8, we recommend upgrading to "
            "CUDA 12.8 or later",
            "nvcc-too-old",
        ),
        (
            "-- Not building scaled_mm_c3x_120 as no compatible archs found in CUDA target architectures",
            "torch-cuda-arch-list",
        ),
        ("vllm serve: error: argument --port: Port must be between 1024 and 65535", "bad-serve-flag-value"),
        # SGLang utils.py
        (
            "RuntimeError: The memory capacity is unbalanced. Some GPUs may be occupied by other processes. "
            "min_per_gpu_memory=16.28, local_gpu_memory=46.81",
            "gpu-busy-or-unavailable",
        ),
        # flash-attention and mamba setup.py
        ("RuntimeError: FlashAttention-3 is only supported on CUDA 12.3 and above", "nvcc-too-old"),
        # NCCL init.cc
        ("NCCL WARN Mismatched NCCL version detected : rank 8 version 22105 rank 0 version 22304", "fleet-drift"),
        # Kubernetes' device plugin
        ("XidCriticalError: Xid=79 on Device=GPU-5c3e2f1a; marking device as unhealthy.", "gpu-fallen-off-bus"),
        # XLA (JAX, TensorFlow)
        (
            "kernel version 550.120.0 does not match DSO version 560.35.5 -- cannot find working devices in this "
            "configuration",
            "driver-library-mismatch",
        ),
        (
            "I tensorflow/stream_executor/cuda/cuda_diagnostics.cc:156] kernel driver does not appear to be running on "
            "this host (3f2a9c1d7b8e): /proc/driver/nvidia/version does not exist",
            "no-driver-in-container",
        ),
        ("RuntimeError: Outdated cuBLAS installation found.", "cuda-library-shadowed"),
        # text-generation-inference
        ('Error: NotEnoughCUDADevices("`sharded` is true but only found 1 CUDA devices")', "tp-exceeds-gpus"),
        ("ImportError: GPU with CUDA capability 6 1 is not supported", "gpu-too-old"),
        # CTranslate2, CuPy, llama.cpp, ONNX Runtime
        ("ValueError: The CPU does not support AVX512", "cpu-isa-mismatch"),
        (
            "CuPy may not function correctly because multiple CuPy packages are installed\n  in your environment:\n\n"
            "    cupy-cuda11x, cupy-cuda12x",
            "files-owned-by-two-distributions",
        ),
        (
            "CMake Error at ggml/src/ggml-cuda/CMakeLists.txt:237 (message):\n  CUDA Toolkit not found",
            "cuda-toolkit-missing",
        ),
        ("Failed to create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 12.*.", "missing-library"),
    ],
)
def test_an_upstream_message_names_its_article(text, slug):
    assert first(text) == slug


def test_an_argparse_value_refused_is_not_an_unknown_option():
    assert first("vllm serve: error: argument --port: Port must be between 1024 and 65535") != "unknown-serve-option"
    assert first("vllm serve: error: argument --model: expected one argument") == "unknown-serve-option"


@pytest.mark.parametrize(
    "text, slug",
    [
        # SageAttention setup.py, DeepGEMM's JIT, FlashMLA setup.py, CMake of the kernel packages
        ("RuntimeError: CUDA 12.8 or higher is required for compute capability 12.0.", "nvcc-too-old"),
        ("RuntimeError: CUDA 12.0 or higher is required to build the package.", "nvcc-too-old"),
        (
            "RuntimeError: Assertion error (csrc/jit/compiler.hpp:187): (major > 12 or (major == 12 and minor >= 3)) "
            'and "NVCC version should be >= 12.3"',
            "nvcc-too-old",
        ),
        ("CMake Error at CMakeLists.txt:73 (message):\n  CUDA version 11.6 or greater is required.", "nvcc-too-old"),
        ("-- FA3 is disabled because CUDA version is not 12.0 or later.", "nvcc-too-old"),
        # DeepGEMM's JIT asserting on its toolkit paths, vLLM's CMake
        ("RuntimeError: Assertion error (csrc/jit/compiler.hpp:47): not cuda_home.empty()", "cuda-toolkit-missing"),
        (
            "CMake Error at CMakeLists.txt:182 (message):\n  Can't find CUDA or HIP installation.",
            "cuda-toolkit-missing",
        ),
        # the CuTe DSL
        (
            "DSLRuntimeError: CUDA driver version 12080 is below the minimum required version for the installed "
            "cuda-python package 13000.",
            "driver-too-old",
        ),
        ("DSLUserCodeError: expects arch to be at least sm_90, but got sm_86", "gpu-too-old"),
        ("flashinfer is not supported on CUDA arch < 80", "gpu-too-old"),
        # CUTLASS's Python package, Unsloth
        (
            "Exception: Python CUDA version of 12.9.0 must be greater than or equal to NVCC version of 13.0",
            "cuda-major-mismatch",
        ),
        ("Unsloth: vLLM was built for CUDA 12 but this system has CUDA 13.0.", "cuda-major-mismatch"),
        # Xid 119 from the device plugin: the GSP
        ("XidCriticalError: Xid=119 on Device=GPU-5c8ef0d1; marking device as unhealthy.", "gsp-init-failure"),
        # MLC's TVM loader
        ("RuntimeError: Cannot find libraries: libtvm_runtime.so", "missing-library"),
        # torchao, Unsloth: a quantized format's floor
        (
            "Cannot use tinygemm int4 kernel with a device of compute capability (7, 5), the minimum compute "
            "capability is 8.0 for tensor core kernels.",
            "quant-needs-newer-gpu",
        ),
        ("Unsloth: Your setup does not support `PYTORCH_CUDA_ALLOC_CONF`", "allocator-conf"),
        # DCGM, Ray, llama.cpp's CMake
        ("GPU 0: Fabric State is Not Started (1). Fabric Manager training has not started.", "fabric-manager-missing"),
        (
            "ValueError: Attempting to start raylet with 4 GPU, but CUDA_VISIBLE_DEVICES contains ['2', '3'].",
            "gpus-hidden",
        ),
        (
            "-- Warning: ccache not found - consider installing it for faster compilation or disable this warning "
            "with GGML_CCACHE=OFF",
            "ccache-missing",
        ),
    ],
)
def test_a_build_or_kernel_package_saying_the_failure(text, slug):
    assert first(text) == slug


def test_a_toolkit_too_old_for_a_gpu_is_not_a_gpu_too_old():
    assert "gpu-too-old" not in top("RuntimeError: CUDA 12.4 or higher is required for compute capability 8.9.")


@pytest.mark.parametrize(
    "text",
    [
        "sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification",
        "TypeError: gpu_idx must be a list of integers",
        "invalid -ns <namespace> flag: must not be empty string for cuda validation",
    ],
)
def test_a_phrase_of_common_words_alone_names_no_article(text):
    assert top(text) == []


# ---------------------------------------------------------------- holdout14, read once scored (development rows)


@pytest.mark.parametrize(
    "rid, slug",
    [
        ("h14003", "build-oom"),  # gcc's <command-line> warnings, then "Killed"
        ("h14094", "ptx-toolchain"),  # Numba's "[222] Call to cuLinkAddData", ptxas "Unsupported .version 8.1"
        ("h14096", "ptx-toolchain"),
        ("h14105", "allocator-conf"),  # "!block->expandable_segment_ INTERNAL ASSERT FAILED"
        ("h14133", "undefined-symbol"),  # a C symbol of torch without an underscore: torchInternalAssertFail
        ("h14153", "missing-library"),  # CTranslate2's "Unable to load any of {libcudnn_cnn.so.9.1.0, ...}"
        ("h14165", "cpu-isa-mismatch"),  # "非法指令 (核心已转储)": SIGILL in a Chinese locale
        ("h14179", "host-compiler-unsupported"),  # MSVC's STL1002
        ("h14201", "host-compiler-unsupported"),  # "#error You need C++14 to compile PyTorch"
        ("h14227", "gsp-init-failure"),  # the GSP firmware file the kernel could not load
        ("h14044", "sm12x-fp8-kernel-missing"),  # CUTLASS w8a8 FP8 on GeForce Blackwell (sm120)
        ("h14045", "sm12x-fp8-kernel-missing"),  # CUTLASS's scaled_mm on an RTX PRO 6000
        ("h14211", "cuda-compat-mismatch"),  # "an 804 error": the status outranks words about the container toolkit
        ("h14007", "glibc-too-old"),  # pip refusing a manylinux_2_38 wheel
    ],
)
def test_holdout14_classes(rid, slug):
    assert first(ROWS[rid]["excerpt"]) == slug


def test_host_memory_running_out_is_not_a_gpu_oom():
    assert top(ROWS["h14034"]["excerpt"]) == []  # "OOM (host)", "Running out of host memory"


def test_a_long_compiler_option_gives_no_words():
    # nvcc's "-forward-unknown-to-host-compiler" on every CMake build line is not a host compiler's failure
    line = "ccache /usr/local/cuda-11.8/bin/nvcc -forward-unknown-to-host-compiler -DTORCH_EXTENSION_NAME=_C -c x.cu"
    assert "host-compiler-unsupported" not in top("FAILED: x.cu.o\n" + line)


def test_conda_s_cuda_virtual_package_is_the_driver():
    # conda's __cuda virtual package is the CUDA version the driver supports
    assert first("nothing provides __cuda >=12.8 needed by pytorch-2.7.0-cuda128_py312") == "driver-too-old"
    text = (
        "The following package could not be installed\n"
        "└─ pytorch-cuda 12.4**  is not installable because it requires\n"
        "   └─ __cuda, which is missing on the system."
    )
    assert first(text) == "no-driver-in-container"


# ---------------------------------------------------------------- holdout15, read once scored (development rows)


@pytest.mark.parametrize(
    "rid, slug",
    [
        (
            "h15021",
            "missing-library",
        ),  # TensorFlow: "Couldn't open CUDA library libcudnn.so", "Unable to load cuDNN DSO"
        ("h15028", "missing-library"),
        ("h15034", "weights-do-not-fit"),  # TurboMind's OOM in utils/memory_utils.cu: the weights' allocation
        ("h9185", "weights-do-not-fit"),
        ("h15035", "driver-too-old"),  # "it prompts that the driver version is too low"
        ("h15036", "cuda-unknown-error-999"),  # a suspend, then nvidia_uvm in use and the runner gone
    ],
)
def test_holdout15_classes(rid, slug):
    assert first(ROWS[rid]["excerpt"]) == slug


def test_suspend_without_nvidia_uvm_is_not_the_uvm_article():
    assert "cuda-unknown-error-999" not in top("after suspend the fans spin up and the screen stays black")
    # "presumably" is not a resume
    assert "cuda-unknown-error-999" not in top("Error: presumably the nvidia_uvm module is missing from the image")


# ---------------------------------------------------------------- the toolchain and system layer, read from source


@pytest.mark.parametrize(
    "text, slug",
    [
        # conda / mamba: the __glibc and __cuda virtual packages
        ("nothing provides __glibc >=2.28,<3.0.a0 needed by libtorch-2.5.1-cuda126_mkl_h9e634b6_303", "glibc-too-old"),
        (
            "package pytorch-2.7.0-cuda128_py312_h1b2c3d4_300 requires __cuda >=12.8, but none of the providers can be "
            "installed",
            "driver-too-old",
        ),
        (
            "UnsatisfiableError: The following specifications were found to be incompatible with your system:\n\n"
            "  - pytorch==2.5.1=cuda126_py312h1763f6d_303 -> __cuda\n\nYour installed version is: not available",
            "no-driver-in-container",
        ),
        # uv's hints after a failed build or resolution
        (
            'hint: This error likely indicates that you need to install a library that provides "numa.h" for '
            "`sgl-kernel@0.3.9`",
            "system-library-missing",
        ),
        (
            'hint: This error likely indicates that you need to install a library that provides "cuda_runtime.h" for '
            "`xformers@0.0.30`",
            "cuda-toolkit-missing",
        ),
        (
            "hint: You're on Linux (`manylinux_2_17_x86_64`), but `flashinfer-python` (v0.3.1) only has wheels for the "
            "following platform: `manylinux_2_28_x86_64`",
            "glibc-too-old",
        ),
        ("warning: The package `torch` has multiple installed distributions:", "duplicate-packages"),
        ("vllm 0.9.2 has requirement torch==2.7.0, but you have torch 2.7.1.", "torch-pin-conflict"),
        # setuptools running g++ killed by SIGKILL; ninja's own words
        ("error: command '/usr/bin/g++' failed with exit code -9", "build-oom"),
        ("FAILED: [code=137] CMakeFiles/_C.dir/csrc/attention/paged_attention_v2.cu.o", "build-oom"),
        ("ninja: fatal: posix_spawn: Cannot allocate memory", "build-oom"),
        # CMake, meson, CCCL, pybind11
        ("Unable to find cudart library.", "cuda-toolkit-missing"),
        ("WARNING: CUDA 12.4 is too old for architecture 12.0", "nvcc-too-old"),
        ("WARNING: Architecture 3.5 is too old for CUDA 12.8", "nvcc-dropped-arch"),
        ('#error "CUDA versions below 12 are not supported."', "nvcc-too-old"),
        ("warning: CUB requires at least GCC 7.0. Define CCCL_IGNORE_DEPRECATED_COMPILER", "host-compiler-unsupported"),
        ("error: #error pybind11 requires gcc 4.8 or newer", "host-compiler-unsupported"),
        ("__cuda_ptx_tcgen05_ld_32x32b_is_only_supported_on_SM_100a_100f_103a_103f_110a_110f__", "arch-suffix-missing"),
        (
            '#error "CUDA compiler and CUDA toolkit headers are incompatible, please check your include paths"',
            "cuda-major-mismatch",
        ),
        # DKMS and the kernel driver
        (
            "Warning: Failed to sign module '/var/lib/dkms/nvidia/550.54.14/build/nvidia.ko'!",
            "secure-boot-unsigned-module",
        ),
        ("NVRM: _kgspBootGspRm: failed to parse FWSEC ucode from VBIOS image", "gsp-init-failure"),
        # the container runtimes
        ('failed to get sandbox runtime: no runtime for "nvidia" is configured', "no-driver-in-container"),
        (
            'error during container init: exec: "nvidia-smi": executable file not found in $PATH',
            "no-driver-in-container",
        ),
    ],
)
def test_the_toolchain_and_system_layer_saying_the_failure(text, slug):
    assert first(text) == slug


@pytest.mark.parametrize(
    "text",
    [
        "The kernel is built without module signing facility, modules won't be signed",
        "NVRM: RmFetchGspRmImages: Failed to load gsp_log_*.bin, no GSP-RM logs will be printed (non-fatal)",
        "docker: Error response from daemon: SHM size can not be less than 0",
        "docker: Error response from daemon: cannot set both Count and DeviceIDs on device request",
        # a program of the user's not found in a container is not the driver's utilities
        'bug: Issue while running example ("vllm": executable file not found in $PATH: unknown)',
    ],
)
def test_a_tool_s_own_notice_or_a_bad_argument_is_not_a_failure(text):
    assert top(text) == []
