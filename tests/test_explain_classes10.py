"""Classes read from real reports (benchmarks/explain_eval rows, by id), answered by the rules alone (the corpus
model switched off, so that the rule is what is tested):

- a CUDA status printed by a loader that probes the GPU (Ollama's "cudart init failure: 35", "cuda driver library
  init failure: 802", "cudaSetDevice err: 802", Warp's "(CUDA error 34)") is that CUDA error: 35 an old driver,
  802 a system whose Fabric Manager is not up, 34 the toolkit's stub libcuda;
- an undefined symbol of a CUDA library's own API (ncclCommRegister, cudnnSetConvolutionGroupCount,
  cudaLaunchKernelExC@libcudart) is an older copy of that library loaded first, not a torch/extension mismatch;
  looked up in the interpreter itself, nothing was loaded, so nothing shadows;
- (holdout11) a build missing the toolkit's headers or CMake's CUDA toolset, torch's capability list or xformers'
  "built for sm70" alone, a bus error inside NCCL, a GLIBCXX version retold without its underscore.
"""

from __future__ import annotations

import pytest
from evalrows import ARTS, ROWS, slugs

from bwdoctor.explain import analyse_text, evidence_keys, extract_evidence

pytestmark = pytest.mark.usefixtures("rules_only")


top = slugs


@pytest.mark.parametrize(
    "row, code",
    [
        ("h10048", 802),  # https://github.com/ollama/ollama/issues/12173
        ("h10049", 35),  # https://github.com/ollama/ollama/issues/8151
        ("h10063", 34),  # https://github.com/NVIDIA/warp/issues/219
        ("h10065", 802),  # https://github.com/ollama/ollama/issues/9031
        ("h10066", 802),  # https://github.com/ollama/ollama/issues/5567 (wrapped inside "failure")
    ],
)
def test_a_probe_loaders_cuda_status_is_that_cuda_error(row, code):
    r = ROWS[row]
    assert f"cuda-error:{code}" in evidence_keys(extract_evidence(r["excerpt"]))
    assert top(r["excerpt"])[:1] == [r["label"]]


@pytest.mark.parametrize(
    "text, code",
    [
        ('msg="Unable to load cudart library /usr/lib/libcudart.so.12: cudart init failure: 35"', 35),
        ("cudaSetDevice err: 802", 802),
        ("cuda driver library init failure: 34", 34),
        ("Warp CUDA error: Failed to get driver entry point 'cuInit' (CUDA error 34)", 34),
    ],
)
def test_status_wordings_give_the_code(text, code):
    assert f"cuda-error:{code}" in evidence_keys(extract_evidence(text))


@pytest.mark.parametrize(
    "text",
    [
        "init failure: 35",  # no CUDA component named
        "loader error: 802 entries skipped",
        "cudart init failure: 7",  # a code no article is about
    ],
)
def test_numbers_that_are_not_a_cuda_status_give_no_code(text):
    assert not [k for k in evidence_keys(extract_evidence(text)) if k.startswith("cuda-error:")]


@pytest.mark.parametrize("row", ["h10121", "h10136", "h10137", "h10139"])
def test_a_cuda_librarys_own_symbol_missing_is_an_older_copy_loaded(row):
    # pytorch/pytorch#3251, #119932, #120186, #125300
    r = ROWS[row]
    assert top(r["excerpt"])[:1] == ["cuda-library-shadowed"]


def test_a_torch_symbol_is_still_the_extension_mismatch():
    text = "ImportError: flash_attn_2_cuda.so: undefined symbol: _ZN3c104cuda9SetDeviceEi"
    assert top(text)[:1] == ["undefined-symbol"]


def test_a_cuda_symbol_looked_up_in_the_interpreter_is_no_shadowed_copy():
    # holdout9 h9120 (bitsandbytes' CUDA SETUP): libcudart not found, the symbol looked up in python itself
    r = ROWS["h9120"]
    assert "cuda-library-shadowed" not in top(r["excerpt"])
    assert top(r["excerpt"])[:1] == [r["label"]]


@pytest.mark.parametrize(
    "row",
    [
        "h10010",  # https://github.com/vllm-project/vllm/issues/8448: "build image got Killed"
        "h10033",  # https://github.com/vllm-project/vllm/issues/1782: "OOM of my entire system during ... build"
    ],
)
def test_the_oom_killer_taking_a_build_is_the_builds_host_memory(row):
    r = ROWS[row]
    assert "family:build-host-memory" in evidence_keys(extract_evidence(r["excerpt"]))
    assert top(r["excerpt"])[:1] == ["build-oom"]


@pytest.mark.parametrize(
    "text",
    [
        # a GPU OOM while building a CUDA graph or compiling with torch.compile is the GPU's memory
        "torch.OutOfMemoryError: CUDA out of memory while building the CUDA graph. GPU 0 has a total capacity",
        "RuntimeError: CUDA out of memory when compiling the model with torch.compile",
        # killed at run time, no build
        "the server got killed after two hours of serving",
    ],
)
def test_a_gpu_oom_or_a_kill_outside_a_build_is_no_build_oom(text):
    assert "family:build-host-memory" not in evidence_keys(extract_evidence(text))
    assert "build-oom" not in top(text)


def test_a_tgi_shard_that_did_not_start_places_the_oom_at_start():
    # https://github.com/huggingface/text-generation-inference/issues/866: the allocator message and then the
    # launcher's "Shard 0 failed to start" / "Error: ShardCannotStart"
    r = ROWS["h10125"]
    assert "family:oom:startup" in evidence_keys(extract_evidence(r["excerpt"]))
    assert top(r["excerpt"])[:1][0] in {r["label"], *r["also"]}
    assert "runtime-oom" not in top(r["excerpt"])[:1]


# ------------------------------------------------------------------ read from holdout11


@pytest.mark.parametrize(
    "row",
    [
        "h11045",  # https://github.com/sgl-project/sglang/issues/3830: cuda_fp8.h, gcc's message in Chinese
        "h11118",  # https://github.com/deepspeedai/DeepSpeed/issues/2682: cuda_profiler_api.h
        "h9213",  # https://github.com/lzccccc/SMOKE/issues/73: cuda_runtime_api.h
        "h11021",  # https://github.com/abetlen/llama-cpp-python/issues/744: CMake's "No CUDA toolset found."
        "h11046",  # https://github.com/abetlen/llama-cpp-python/issues/247
    ],
)
def test_a_build_without_the_toolkits_headers_or_toolset_is_the_toolkit_missing(row):
    assert top(ROWS[row]["excerpt"])[:1] == ["cuda-toolkit-missing"]


@pytest.mark.parametrize(
    "text",
    [
        "fatal error: cudnn.h: No such file or directory",  # cuDNN is not the toolkit
        "fatal error: my_cuda_helpers.h: No such file or directory",  # the project's own header
    ],
)
def test_other_headers_are_not_the_toolkits(text):
    assert "cuda-toolkit-missing" not in top(text)[:1]


@pytest.mark.parametrize(
    "row",
    [
        "h11178",  # https://github.com/fedbiomed/fedbiomed/issues/464: torch's capability list alone
        "h11100",  # https://github.com/facebookresearch/xformers/issues/692: xformers' kernel built for sm70
    ],
)
def test_a_build_without_code_for_this_gpu_said_in_other_words_is_no_kernel_image(row):
    assert top(ROWS[row]["excerpt"])[:1] == ["no-kernel-image"]


@pytest.mark.parametrize(
    "row",
    [
        "h11059",  # https://github.com/NVIDIA/nccl/issues/983: "call ncclCommInitRank got Signal: Bus error (7)"
        "h10091",  # https://github.com/NVIDIA/JAX-Toolbox/issues/183: SIGBUS in ncclShmOpen
    ],
)
def test_a_bus_error_in_nccl_is_its_shared_memory(row):
    r = ROWS[row]
    keys = evidence_keys(extract_evidence(r["excerpt"]))
    assert {"signal:SIGBUS", "component:nccl"} <= set(keys)
    assert top(r["excerpt"])[:1] == ["nccl-shm-too-small"]


def test_a_bus_error_outside_nccl_is_not_its_shared_memory():
    text = 'Fatal Python error: Bus error\n\nThread 0x00007f (most recent call first):\n  File "train.py", line 3'
    assert "nccl-shm-too-small" not in top(text)


def test_a_lower_case_word_starting_with_nccl_is_not_the_library():
    assert "component:nccl" not in evidence_keys(extract_evidence("error: ncclassify failed to open input"))


def test_a_glibcxx_version_retold_without_the_underscore_is_still_that_version():
    # https://github.com/triton-lang/triton/issues/7946: '... libstdc++.so.6   ... GLIBCXX 3.4.32 not found.'
    r = ROWS["h11089"]
    assert "libc:GLIBCXX" in evidence_keys(extract_evidence(r["excerpt"]))
    assert top(r["excerpt"])[:1] == ["libstdcxx-too-old"]


def test_nccls_numbered_cuda_failure_999_is_the_unknown_error():
    # https://github.com/vllm-project/vllm-omni/issues/4163: "unhandled cuda error ... Cuda failure 999 'unknown
    # error'" on NCCL 2.28: the CUDA call's own error, not an old NCCL
    r = ROWS["h11020"]
    assert "nccl-error:cuda failure: unknown error" in evidence_keys(extract_evidence(r["excerpt"]))
    assert top(r["excerpt"])[:1] == ["cuda-unknown-error-999"]


def test_trtllms_kv_cache_that_could_not_be_created_is_the_kv_cache():
    # https://github.com/NVIDIA/TensorRT-LLM/issues/5872
    assert top(ROWS["h11053"]["excerpt"])[:1] == ["kv-cache-too-small"]


def test_deepspeeds_cuda_version_mismatch_retold_in_a_title():
    # https://github.com/deepspeedai/DeepSpeed-MII/issues/277:
    # "Installed CUDA version 11.7 does not match torch version"
    assert top(ROWS["h11088"]["excerpt"])[:1] == ["cuda-major-mismatch"]


# ------------------------------------------------------------------ negatives and look-alikes


@pytest.mark.parametrize(
    "row",
    [
        "h10094",  # https://github.com/ggml-org/llama.cpp/issues/14951: "unknown model architecture: 'mllama'"
        "h11065",  # https://github.com/NVIDIA/TensorRT-LLM/issues/214: "does not satisfy any optimization profile"
    ],
)
def test_a_model_or_engine_the_build_cannot_run_gets_no_article(row):
    r = ROWS[row]
    assert r["label"] is None
    res = analyse_text(r["excerpt"], ARTS)
    assert res["matches"] == [] and res.get("not_environment")


def test_cutlass_scaled_mm_on_a_card_below_sm12x_is_not_the_sm12x_article():
    # https://github.com/vllm-project/vllm/issues/9419: "... less than CUDA device capability: 75" on a Turing card
    r = ROWS["h10007"]
    assert top(r["excerpt"])[:1] == ["quant-needs-newer-gpu"]
    sm120 = "NotImplementedError: No compiled cutlass_scaled_mm for CUDA device capability: 120"
    assert top(sm120)[:1] == ["sm12x-fp8-kernel-missing"]


def test_nccls_numbered_cuda_failure_carries_the_cuda_error_code():
    # https://github.com/alibaba/ChatLearn/issues/374: "Cuda failure 217 'peer access is not support between ...'"
    r = ROWS["h10221"]
    assert "cuda-error:217" in evidence_keys(extract_evidence(r["excerpt"]))
    assert top(r["excerpt"])[:1][0] in {r["label"], *r["also"]}
    # a number no article is about gives no code
    assert not [
        k
        for k in evidence_keys(extract_evidence("NCCL WARN Cuda failure 1 'invalid argument'"))
        if k.startswith("cuda-error:")
    ]


@pytest.mark.parametrize(
    "row",
    [
        "h7108",  # https://github.com/NVIDIA/dcgm-exporter/issues/612: NVML's ERROR_LIBRARY_NOT_FOUND
        "h11064",  # https://github.com/NVIDIA/warp/issues/672: "Could not open libcuda.so." and "Driver 0.0"
    ],
)
def test_no_nvml_or_libcuda_to_open_is_no_driver_visible(row):
    assert top(ROWS[row]["excerpt"])[:1] == ["no-driver-in-container"]


def test_torchs_cudnn_version_incompatibility_is_another_cudnn_loaded():
    # holdout9 h9151 / h9152: torch/backends/cudnn/__init__.py, "cuDNN version incompatibility: PyTorch was compiled
    # against ... but found runtime version ..."
    for row in ("h9151", "h9152"):
        assert top(ROWS[row]["excerpt"])[:1] == ["cuda-library-shadowed"]


def test_an_invalid_device_ordinal_is_a_gpu_the_process_cannot_see_not_a_missing_kernel():
    text = "RuntimeError: CUDA error: invalid device ordinal"
    assert top(text)[:1] == ["gpus-hidden"]
    assert "no-kernel-image" not in top(text)


def test_a_standard_library_symbol_missing_is_an_older_libstdcxx():
    # holdout9 h9099: std::filesystem::path::has_filename() const, undefined in the libstdc++ that was loaded
    r = ROWS["h9099"]
    assert top(r["excerpt"])[:1] == ["libstdcxx-too-old"]
    # the __cxx11 forms stay the ABI's article
    abi = "ImportError: ext.so: undefined symbol: _ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm"
    assert top(abi)[:1] == ["cxx11-abi-mismatch"]
