"""Build, link and packaging errors in the wording their upstream source prints (torch's cpp_extension and CMake
files, CUDA's host_config.h, nvcc, glibc's loader, torchvision, uv, numpy): `explain` names the article first, on
its signatures. Each excerpt is quoted from the thread cited above it, or formatted from the string literal of the
file cited (its variable parts filled in as the program fills them)."""

from __future__ import annotations

import pytest

from bwdoctor.explain import match_text
from bwdoctor.knowledge import load_all

ARTS = load_all()
NEW = {"cuda-library-shadowed", "static-tls-exhausted", "executable-stack-refused"}

CASES = [
    # https://github.com/pytorch/pytorch/issues/111469 (the issue title)
    (
        "cuda-library-shadowed",
        "ImportError: /usr/local/lib/python3.10/dist-packages/torch/lib/../../nvidia/cusparse/lib/libcusparse.so.12: "
        "undefined symbol: __nvJitLinkAddData_12_1, version libnvJitLink.so.12",
    ),
    # https://github.com/NVIDIA/cuml/issues/4332
    (
        "cuda-library-shadowed",
        "ImportError: /opt/conda/envs/rapids/lib/python3.7/site-packages/rmm/_lib/memory_resource.cpython-37m-x86_64-"
        "linux-gnu.so: symbol cudaMemPoolCreate, version libcudart.so.11.0 not defined in file libcudart.so.11.0 with "
        "link time reference",
    ),
    # https://github.com/PaddlePaddle/PaddleOCR/issues/9793
    (
        "cuda-library-shadowed",
        "python: relocation error: /usr/local/cuda-11.1/lib64/libcublas.so: symbol runGemmShortApi, version "
        "libcublasLt.so.11 not defined in file libcublasLt.so.11 with link time reference",
    ),
    # https://github.com/NVIDIA-AI-IOT/trt_pose/issues/111
    (
        "static-tls-exhausted",
        "OSError: /usr/lib/aarch64-linux-gnu/libgomp.so.1: cannot allocate memory in static TLS block",
    ),
    # https://github.com/lightgbm-org/LightGBM/issues/6509
    (
        "static-tls-exhausted",
        "E   ImportError: /root/miniforge/envs/test-env/lib/python3.12/site-packages/sklearn/utils/../../../../"
        "libgomp.so.1: cannot allocate memory in static TLS block",
    ),
    # https://github.com/conda-forge/pytorch-cpu-feedstock/issues/350
    (
        "executable-stack-refused",
        "ImportError: libtorch_cpu.so: cannot enable executable stack as shared object requires: Invalid argument",
    ),
    # https://github.com/OPHoperHPO/image-background-remove-tool/issues/123 (SELinux)
    (
        "executable-stack-refused",
        "    from torch._C import *  # noqa: F403\n"
        "ImportError: libtorch_cpu.so: cannot enable executable stack as shared object requires: Permission denied",
    ),
    # https://github.com/pytorch/vision/blob/main/torchvision/extension.py (_check_cuda_version)
    (
        "torchvision-mismatch",
        "RuntimeError: Detected that PyTorch and torchvision were compiled with different CUDA major versions. "
        "PyTorch has CUDA Version=13.0 and torchvision has CUDA Version=12.8. Please reinstall the torchvision that "
        "matches your PyTorch install.",
    ),
    # https://github.com/BVLC/caffe/issues/2776
    (
        "host-compiler-unsupported",
        "nvcc fatal   : The version ('60100') of the host compiler ('Apple clang') is not supported",
    ),
    # https://github.com/pytorch/pytorch/blob/v2.5.0/c10/util/C++17.h
    (
        "host-compiler-unsupported",
        ".../torch/include/c10/util/C++17.h:16:2: error: #error \"You're trying to build PyTorch with a too old "
        'version of GCC. We need GCC 9 or later."',
    ),
    # https://github.com/pytorch/pytorch/blob/main/torch/utils/cpp_extension.py (CUDA_NOT_FOUND_MESSAGE, whose two
    # halves are joined without a space)
    (
        "cuda-toolkit-missing",
        "OSError: CUDA was not found on the system, please set the CUDA_HOME or the CUDA_PATHenvironment variable or "
        "add NVCC to your system PATH. The extension compilation will fail.",
    ),
    # https://github.com/pytorch/pytorch/blob/main/cmake/Caffe2Config.cmake.in (a libtorch CMake build, no toolkit)
    (
        "cuda-toolkit-missing",
        "CMake Error at .../torch/share/cmake/Caffe2/Caffe2Config.cmake:90 (message):\n"
        "  Your installed Caffe2 version uses CUDA but I cannot find the CUDA\n"
        "  libraries.  Please set the proper CUDA prefixes and / or install CUDA.",
    ),
    # https://github.com/pytorch/pytorch/blob/main/torch/utils/cpp_extension.py (the RuntimeError gets the message
    # and its arguments as a tuple)
    (
        "cuda-major-mismatch",
        "RuntimeError: ('The detected CUDA version (%s) mismatches the version that was used to compilePyTorch (%s). "
        "Please make sure to use the same CUDA versions.', '12.8', '13.0')",
    ),
    # https://docs.nvidia.com/cuda/archive/13.0.0/cuda-toolkit-release-notes/index.html (pre-Turing targets removed)
    ("nvcc-dropped-arch", "nvcc fatal   : Unsupported gpu architecture 'compute_70'"),
    # https://github.com/numpy/numpy/blob/main/numpy/_core/src/common/npy_cpu_features.c
    (
        "cpu-isa-mismatch",
        "RuntimeError: NumPy was built with baseline optimizations: \n(X86_V2) but your machine doesn't support:\n"
        "(X86_V2).",
    ),
    # https://github.com/astral-sh/uv/blob/main/crates/uv-install-wheel/src/linker.rs
    (
        "files-owned-by-two-distributions",
        "warning: The file `triton/_C/libtriton.so` is provided by more than one package, which causes an install "
        "race condition and can result in a broken module. Packages containing the file:\n"
        "* pytorch-triton (pytorch_triton-3.3.0+git96316ce5-cp312-cp312-linux_x86_64.whl)\n"
        "* triton (triton-3.3.0-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl)",
    ),
    # https://github.com/pytorch/pytorch/blob/main/torch/__init__.py (_load_dll_libraries)
    (
        "missing-library",
        'OSError: [WinError 126] The specified module could not be found. Error loading "C:\\venv\\Lib\\site-'
        'packages\\torch\\lib\\fbgemm.dll" or one of its dependencies.',
    ),
]

# uv's module-level warning for the nvidia/ namespace all CUDA wheels share is harmless
LOOKALIKES = [
    "warning: The module `nvidia` is provided by more than one package, which causes an install race condition and "
    "can result in a broken module. Consider removing your dependency on either `nvidia-cublas-cu12` or "
    "`nvidia-cuda-runtime-cu12`.",
]


@pytest.mark.parametrize("slug,text", CASES)
def test_upstream_wording_is_explained_by_its_article(slug, text):
    res = match_text(text, ARTS)
    assert res, f"no article for a real {slug} excerpt"
    assert res[0]["slug"] == slug, [(m["slug"], m["tier"]) for m in res]
    assert res[0]["tier"] == "exact"


@pytest.mark.parametrize("text", LOOKALIKES)
def test_the_shared_nvidia_namespace_is_no_signature_hit(text):
    assert not [m for m in match_text(text, ARTS) if m["tier"] == "exact"]


def test_new_articles_cite_sources_and_each_has_real_cases():
    for slug in NEW:
        art = ARTS[slug]
        assert art.signatures and len(art.references) >= 5
        assert all(r.startswith("https://") for r in art.references)
    assert NEW <= {s for s, _ in CASES}
