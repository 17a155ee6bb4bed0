"""explain on classes of error first seen in benchmarks/explain_eval/holdout3.jsonl: each rule names a failure
(an undefined symbol in a project's own extension, a capability stated far below any build, a package's own torch
gate, an arch name the build cannot parse, PTX older than the target, mixed torch files, GPUs hidden on a Ray worker,
a build eating the host's memory, an OOM while the weights are built) and is checked on the real excerpt, quoted
verbatim from the thread cited, with the full matcher and with tier 2 alone (no exact signature)."""

from __future__ import annotations

import pytest

from bwdoctor.explain import evidence_keys, extract_evidence, match_text, normalize, rank_evidence
from bwdoctor.knowledge import load_all

ARTS = load_all()

# https://github.com/vllm-project/vllm/issues/2747
OWN_EXT_CUT = "ImportError: /ramyapra/vllm/vllm/_C.cpython-310-x86_64-linux-gnu.so: undefined symbol:"
# https://github.com/pytorch/pytorch.github.io/issues/72
CC_ANCIENT = (
    "but then I realized that I can't use it at all because with my old graphics card (GeForce "
    "GM630m => cuda capability 2.1), I always get the `cuda runtime error (8) : invalid device "
    "function` error`."
)
# https://github.com/unslothai/unsloth/issues/4851
TORCH_GATE = (
    "$ vllm --help\n"
    "\n"
    "Skipping import of cpp extensions due to incompatible torch version. Please upgrade to tor"
    "ch >= 2.11.0 (found 2.10.0+cu128)."
)
# https://github.com/pytorch/pytorch/issues/113948
ARCH_NAME = (
    "-- Autodetected CUDA architecture(s): 3.5;5.0;8.0;8.6;8.9;9.0;9.0a\n"
    "CMake Error at cmake/Modules_CUDA_fix/upstream/FindCUDA/select_compute_arch.cmake:225 (mes"
    "sage):\n"
    "  Unknown CUDA Architecture Name 9.0a in CUDA_SELECT_NVCC_ARCH_FLAGS"
)
# https://github.com/pytorch/pytorch/issues/95082
TRITON_PTX = (
    "RuntimeError: Internal Triton PTX codegen error:\n"
    "ptxas /tmp/filelSnH8K, line 6; error   : PTX .version 7.4 does not support .target sm_89\n"
    "ptxas fatal   : Ptx assembly aborted due to errors"
)
# https://github.com/pytorch/pytorch/issues/56126
TORCH_C_ATTR = "AttributeError: module 'torch._C' has no attribute 'ComplexDoubleStorageBase'"
# https://github.com/vllm-project/vllm/issues/3818
RAY_WORKER = "[Bug]: When deployed on multiple nodes using ray, the 'torch.cuda.is_available()' on worker node is False"
# https://github.com/Dao-AILab/flash-attention/issues/382
BUILD_RAM = (
    "On a machine with about 39 GB CPU memory, `Building wheels for collected packages` of `fla"
    "sh-attn` 2.0.1 rapidly takes up all the memory and causes the machine to crash. (The CUDA "
    "version is 11.0, but I just need to install `flash-attn` to enable related code highlights"
    ") It there any workaround?"
)
# https://github.com/meta-llama/llama/issues/918
OOM_WEIGHTS = (
    '  File "/usr/local/lib/python3.10/dist-packages/fairscale/nn/model_parallel/layers.py", li'
    "ne 359, in __init__\n"
    "    self.master_weight = _initialize_affine_weight(\n"
    '  File "/usr/local/lib/python3.10/dist-packages/fairscale/nn/model_parallel/layers.py", li'
    "ne 68, in _initialize_affine_weight\n"
    "    master_weight = torch.empty(out_features, in_features, dtype=weight.dtype, requires_gr"
    "ad=False)\n"
    "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 448.00 MiB. GPU 1 has a"
    " total capacty of 15.77 GiB of which 289.38 MiB is free. Including non-PyTorch memory, thi"
    "s process has 15.49 GiB memory in use. Of the allocated memory 14.66 GiB is allocated by P"
    "yTorch, and 483.75 MiB is reserved by PyTorch but unallocated. If reserved but unallocated"
    " memory is large try setting max_split_size_mb to avoid fragmentation.  See documentation "
    "for Memory Management and PYTORCH_CUDA_ALLOC_CONF"
)
# https://github.com/bitsandbytes-foundation/bitsandbytes/issues/529
BNB_8BIT = (
    "UserWarning: WARNING: Compute capability < 7.5 detected! Only slow 8-bit matmul is support"
    "ed for your GPU! warn(msg) Detected 8-bit loading: activating 8-bit loading for this model"
)
# https://github.com/vllm-project/vllm/issues/6134
CUDA_ROOT = "[Installation]: Couldn't find CUDA library root."
# https://github.com/deepspeedai/DeepSpeed/issues/2902
CUDA_MATCH = (
    '[BUG] Can not install - getting error - "unable to compile cuda/cpp extensions without a matching cuda version"'
)
# https://github.com/ModelTC/LightLLM/issues/16
CUINIT = "AttributeError: /usr/local/cuda-11.8/lib64/libcudart.so: undefined symbol: cuInit"
# https://github.com/sgl-project/sglang/pull/13948
WRAPPED = (
    "ImportError: \n"
    "[sgl_kernel] CRITICAL: Could not load any common_ops library!\n"
    "Attempted locations:\n"
    "1. Architecture-specific pattern: /usr/local/lib/python3.10/dist-packages/sgl_kernel/sm100"
    "/common_ops.* - found files: ['/usr/local/lib/python3.10/dist-packages/sgl_kernel/sm100/co"
    "mmon_ops.abi3.so']\n"
    "2. Fallback pattern: /usr/local/lib/python3.10/dist-packages/sgl_kernel/common_ops.* - fou"
    "nd files: []\n"
    "3. Standard Python import: common_ops - failed\n"
    "GPU Info:\n"
    "- Compute capability: 86\n"
    "- Expected variant: SM86 (precise math for compatibility)\n"
    "Please ensure sgl_kernel is properly installed with:\n"
    "pip install --upgrade sgl_kernel\n"
    "Error details from previous import attempts:\n"
    "- ImportError: /usr/local/lib/python3.10/dist-packages/sgl_kernel/sm100/common_ops.abi3.so"
    ": undefined symbol: _ZNK3c106SymInt6sym_neERKS0_\n"
    "- ModuleNotFoundError: No module named 'common_ops'"
)
# https://github.com/sgl-project/sglang/issues/8131
DRIVER_SYM = (
    "$python ./sgl-kernel/tests/test_per_token_quant_fp8.py\n"
    "Traceback (most recent call last):\n"
    '  File "/root/luoyuan.luo/workspace/SGLang/./sgl-kernel/tests/test_per_token_quant_fp8.py"'
    ", line 6, in <module>\n"
    "    from sgl_kernel import sgl_per_token_quant_fp8\n"
    '  File "/opt/conda/lib/python3.10/site-packages/sgl_kernel/__init__.py", line 13, in <modu'
    "le>\n"
    "    from sgl_kernel import common_ops\n"
    "ImportError: /opt/conda/lib/python3.10/site-packages/sgl_kernel/common_ops.abi3.so: undefi"
    "ned symbol: cuGreenCtxStreamCreate"
)
# https://github.com/facebookresearch/xformers/issues/725
BUILT_FOR_OTHER_TORCH = (
    "WARNING【XFORMERS】: xFormers can't load C++/CUDA extensions. xFormers was built for:\n"
    "    PyTorch 1.13.1+cu117 with CUDA 1107 (you have 2.0.0+cu118)\n"
    "    Python  3.10.9 (you have 3.10.10)"
)
# https://github.com/vllm-project/vllm/issues/23910
TORCH_CUDA_LIB = (
    "[Installation]: ImportError: libtorch_cuda.so: cannot open shared object file: No such file or directory"
)
# https://github.com/NVIDIA/cub/issues/741
NVCC_NEW_ARCH = "nvcc fatal : Unsupported gpu architecture 'compute_80'"


CASES = [
    (OWN_EXT_CUT, "undefined-symbol", "family:own-extension-undefined"),
    (CC_ANCIENT, "gpu-too-old", "family:cc-stated-ancient"),
    (TORCH_GATE, "torch-pin-conflict", "family:torch-pin"),
    (ARCH_NAME, "torch-cuda-arch-list", "family:arch-name-refused"),
    (TRITON_PTX, "triton-too-old-arch", "family:ptx-version-target"),
    (TORCH_C_ATTR, "duplicate-packages", "family:torch-c-attribute"),
    (RAY_WORKER, "gpus-hidden", "family:cuda-unavailable-worker"),
    (BUILD_RAM, "build-oom", "family:build-host-memory"),
    (OOM_WEIGHTS, "weights-do-not-fit", "family:oom-building-weights"),
    (BNB_8BIT, "quant-needs-newer-gpu", "family:quant-context"),
    (CUDA_ROOT, "cuda-toolkit-missing", "family:no-cuda-toolkit"),
    (CUDA_MATCH, "cuda-major-mismatch", "family:cuda-version-mismatch"),
    (CUINIT, "missing-library", "symbol:cuInit"),
    (WRAPPED, "undefined-symbol", None),
    (DRIVER_SYM, "driver-too-old", None),
    (BUILT_FOR_OTHER_TORCH, "undefined-symbol", "family:ext-built-for-other-torch"),
    (TORCH_CUDA_LIB, "cpu-torch-cuda-extension", "soname:libtorch_cuda"),
    (NVCC_NEW_ARCH, "nvcc-too-old", "family:nvcc-unsupported-arch"),
]


def tier2(text: str) -> list:
    lines = [(n, s) for n, s in enumerate(normalize(text).split("\n"), 1)]
    return [m["slug"] for m in rank_evidence(lines, ARTS)["likely"]]


# the capability-2.1 thread also prints "invalid device function", which its row accepts as no-kernel-image
@pytest.mark.parametrize("text,slug,key", CASES)
def test_the_class_names_its_article_first(text: str, slug: str, key: str | None) -> None:
    res = match_text(text, ARTS)
    accepted = {slug, "no-kernel-image"} if text is CC_ANCIENT else {slug}
    assert res and res[0]["slug"] in accepted, [(m["slug"], m["tier"]) for m in res]
    assert slug in [m["slug"] for m in res]
    if key is not None:
        assert key in evidence_keys(extract_evidence(text))


@pytest.mark.parametrize("text,slug,key", [c for c in CASES if c[2] is not None])
def test_tier2_alone_names_it_from_the_evidence(text: str, slug: str, key: str) -> None:
    accepted = {slug, "no-kernel-image"} if text is CC_ANCIENT else {slug}
    assert tier2(text)[:1] and tier2(text)[0] in accepted


def test_a_driver_symbol_in_an_own_extension_stays_the_drivers() -> None:
    # the extension's name is not evidence of a torch mismatch when the symbol is the driver's
    assert "family:own-extension-undefined" not in evidence_keys(extract_evidence(DRIVER_SYM))


def test_a_cuda_attribute_of_torch_c_is_not_two_torch_copies() -> None:
    # "_cuda_*" missing from torch._C is a CPU-only torch, not mixed files; any other module's attribute error
    # stays a code error that names no article
    assert "family:torch-c-attribute" not in evidence_keys(
        extract_evidence("AttributeError: module 'torch._C' has no attribute '_cuda_setDevice'")
    )
    assert match_text("AttributeError: module 'numpy' has no attribute 'float'", ARTS) == []


def test_a_capability_of_a_current_gpu_is_not_ancient() -> None:
    ev = evidence_keys(extract_evidence("Found GPU0 NVIDIA GeForce RTX 3090 which is of cuda capability 8.6."))
    assert "family:cc-stated-ancient" not in ev


def test_an_oom_while_serving_is_not_the_weights() -> None:
    # an OOM with no layer construction in its frames keeps its phase
    ev = evidence_keys(extract_evidence(OOM_WEIGHTS.split("\n")[-1]))
    assert "family:oom-building-weights" not in ev


def test_worker_and_build_families_need_their_words_on_the_line() -> None:
    # CUDA unavailable with no worker named is any of several causes; memory eaten by something that is not a build
    # is not a build's OOM
    assert "family:cuda-unavailable-worker" not in evidence_keys(extract_evidence("torch.cuda.is_available() False"))
    assert "family:build-host-memory" not in evidence_keys(extract_evidence("the server takes up all the memory"))
    assert "family:own-extension-undefined" not in evidence_keys(
        extract_evidence("ImportError: /usr/lib/libfoo.so: undefined symbol:")
    )
