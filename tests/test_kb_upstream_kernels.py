"""explain on messages as the upstream code prints them (kernels, attention, quantization, memory, allocator, serve
flags): each text is rebuilt from the string literal in the file named beside it, with its variable parts filled in
the way a log shows them. Each must name its article; the last ones must not name the article they resemble."""

from __future__ import annotations

from typing import Optional

import pytest

from bwdoctor.explain import match_text
from bwdoctor.knowledge import load_all

ARTS = load_all()


def top(text: str) -> Optional[str]:
    res = match_text(text, ARTS)
    return res[0]["slug"] if res else None


CASES = [
    # vllm/v1/core/kv_cache_planning.py, _check_enough_kv_cache_memory (wrapped the way a terminal wraps it)
    (
        "kv-cache-too-small",
        "ValueError: To serve at least one request with the model's max seq len (131072), (16.00 GiB KV\n"
        "cache is needed, which is larger than the available KV cache memory (5.43 GiB). Based on the available "
        "memory, the estimated maximum model length is 44480.",
    ),
    # sglang/srt/managers/tp_worker.py
    (
        "kv-cache-too-small",
        "WARNING KV pool holds 20480 tokens, fewer than --context-length 131072. One full-length request cannot "
        "fit, so long requests will be refused or truncated at serving time.",
    ),
    # sglang/srt/mem_cache/kv_cache_configurator.py
    (
        "weights-do-not-fit",
        "ValueError: Loaded weights leave no GPU memory for the KV cache under --mem-fraction-static=0.88. "
        "Raise --mem-fraction-static above 0.951",
    ),
    # sglang/srt/model_executor/runner/decode_cuda_graph_runner.py + torch's allocator message
    (
        "startup-oom",
        "[2025-03-01 10:00:00 TP0] Scheduler hit an exception: Exception: Capture cuda graph failed: CUDA out of "
        "memory. Tried to allocate 1.02 GiB. GPU 0 has a total capacity of 23.55 GiB",
    ),
    # vllm/v1/worker/utils.py (weights held by another process)
    (
        "startup-oom",
        "ValueError: Free memory on device cuda:0 (10.1/79.2 GiB) on startup is less than the engine's budget "
        "after excluding external process's weights (0.9, 30.0 GiB).",
    ),
    # vllm/v1/worker/gpu_worker.py
    (
        "startup-oom",
        "AssertionError: Error in memory profiling. Initial free memory 20.5 GiB, current free memory 22.1 GiB. "
        "This happens when other processes sharing the same container release GPU memory while vLLM is profiling "
        "during initialization.",
    ),
    # c10/cuda/CUDAMallocAsyncAllocator.cpp, in an engine's start
    (
        "startup-oom",
        "(EngineCore_DP0 pid=123) ERROR [core.py:700] EngineCore failed to start.\n"
        "torch.OutOfMemoryError: Allocation on device 0 would exceed allowed memory. (out of memory)\n"
        "Currently allocated     : 21.43 GiB",
    ),
    # sglang/srt/mem_cache/allocation.py: the request pool runs dry while serving
    (
        "runtime-oom",
        "[2025-01-01 00:00:00 TP0] Scheduler hit an exception: RuntimeError: alloc_req_slots runs out of memory. "
        "Please set a smaller number for `--max-running-requests`. req_to_token_pool.available_size()=0, num_reqs=1,",
    ),
    # vllm/v1/worker/gpu_model_runner.py, the pooler's warm-up
    (
        "sampler-warmup-oom",
        "RuntimeError: CUDA out of memory occurred when warming up pooler (task='embed') with 1024 dummy requests. "
        "Please try lowering `max_num_seqs` or `gpu_memory_utilization` when initializing the engine.",
    ),
    # flash-attention hopper/flash_api.cpp
    ("flash-attn-arch-gate", "RuntimeError: Attention combine function only supports Ampere GPUs or newer."),
    # flashinfer/compilation_context.py (nvcc older than 12.9 on SM120 leaves the arch list empty)
    ("flashinfer-sm120", "RuntimeError: No supported CUDA architectures found for major versions [12]."),
    # flashinfer/utils.py, backend_requirement
    (
        "flashinfer-trtllm-gen-sm120",
        "flashinfer.utils.BackendSupportedError: mm_fp4 does not support backend 'trtllm' with capability 120",
    ),
    # sglang/srt/arg_groups/attention_hook.py
    (
        "flashinfer-trtllm-gen-sm120",
        "ValueError: TRTLLM FMHAv2 prefill on SM120 does not support fp8_e4m3 KV cache or skip-softmax.",
    ),
    # vllm/model_executor/layers/quantization/torchao.py
    (
        "quant-needs-newer-gpu",
        "ValueError: torchao FP8 activation quantization config 'Float8DynamicActivationFloat8WeightConfig' "
        "requires GPU compute capability >= 8.9 (e.g., NVIDIA Ada Lovelace / Hopper or AMD MI300+) (current GPU "
        "compute capability: 8.6).",
    ),
    # vllm/model_executor/kernels/linear/__init__.py (note the double space vLLM prints)
    (
        "quant-needs-newer-gpu",
        "ValueError: Failed to find a kernel that can implement the WNA16 linear layer. Reasons: \n"
        "MarlinLinearKernel requires capability 75, current compute  capability is 70",
    ),
    # vllm/model_executor/layers/quantization/utils/marlin_utils.py: no type at all for this GPU
    (
        "quant-needs-newer-gpu",
        "ValueError: Marlin does not support weight_bits = uint4b8. Only types = [] are supported (for group_size "
        "= 128, device_capability = 70, zp = False).",
    ),
    # vllm/config/multimodal.py
    (
        "bad-attention-backend",
        "ValueError: Attention backend 'XFORMERS' has been removed (See PR #29262 for details). Please select a "
        "supported attention backend.",
    ),
    # argparse on SGLang's --attention-backend choices: the backend article, not the generic flag-value one
    (
        "bad-attention-backend",
        "launch_server.py: error: argument --attention-backend: invalid choice: 'fa5' (choose from triton, "
        "flashinfer, fa3)",
    ),
    # vllm csrc/quantization/fp4/nvfp4_scaled_mm_entry.cu on a GPU before Blackwell ...
    (
        "quant-needs-newer-gpu",
        "NotImplementedError: No compiled nvfp4 mm kernel for SM 89. Recompile with CUDA >= 12.8 and CC >= 100.",
    ),
    # ... and on SM120 with a build that left the SM120 kernels out (csrc/quantization/fp4/nvfp4_quant_entry.cu)
    (
        "sm12x-fp8-kernel-missing",
        "NotImplementedError: No compiled nvfp4 quantization kernel for SM 120. Recompile with CUDA >= 12.8 and "
        "CC >= 100.",
    ),
    # vllm/model_executor/model_loader/weight_utils.py, maybe_remap_kv_scale_name
    (
        "missing-kv-scales",
        "WARNING [weight_utils.py:1757] Found kv_scale in the checkpoint (e.g. model.layers.0.self_attn.kv_scale), "
        "but not found the expected name in the model (e.g. model.layers.0.self_attn.attn.kv_scale). kv_scale is "
        "not loaded.",
    ),
    # vllm/v1/attention/backends/flash_attn.py through vllm/platforms/cuda.py's refusal
    (
        "attn-sink-unsupported",
        "ValueError: Selected backend AttentionBackendEnum.FLASH_ATTN is not valid for this configuration. "
        "Reason: ['sink not supported on compute capability < 9.0']",
    ),
    # bitsandbytes/cextension.py
    (
        "bitsandbytes-sm120",
        "RuntimeError: No compatible CUDA binary found at "
        "/usr/lib/python3/site-packages/bitsandbytes/libbitsandbytes_cuda130.so",
    ),
    # c10/core/AllocatorConfig.cpp: '=' where the parser wants ':'
    ("allocator-conf", "RuntimeError: Error parsing CachingAllocator::AllocatorConfig settings, expected :"),
    # c10/cuda/CUDACachingAllocator.cpp (torch 2.0-2.5): the backend changed after torch was imported
    (
        "allocator-conf",
        'RuntimeError: config[i] == get()->name() INTERNAL ASSERT FAILED at "../c10/cuda/CUDACachingAllocator.cpp"'
        ":644, please report a bug to PyTorch. Allocator backend parsed at runtime != allocator backend parsed "
        "at load time",
    ),
    ("allocator-conf", "RuntimeError: Unknown allocator backend, options are native and cudaMallocAsync"),
    # argparse (Lib/argparse.py) on vLLM's typed flags
    (
        "bad-serve-flag-value",
        "usage: vllm serve [model_tag] [options]\nvllm serve: error: argument --kv-cache-dtype: invalid choice: "
        "'fp8_e5m3' (choose from auto, bfloat16, fp8)",
    ),
    (
        "bad-serve-flag-value",
        "vllm serve: error: argument --max-model-len: invalid human_readable_int value: '32kk'",
    ),
    # pydantic on vllm/config/cache.py's Field(gt=0, le=1)
    (
        "bad-serve-flag-value",
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for CacheConfig\n"
        "gpu_memory_utilization\n  Input should be less than or equal to 1 [type=less_than_equal, "
        "input_value=1.5, input_type=float]",
    ),
    # torch/cuda/__init__.py (2.14) on a Blackwell GPU that this build has no kernels for
    (
        "no-kernel-image",
        "UserWarning: Found GPU0 NVIDIA GeForce RTX 5090 which is of compute capability (CC) 12.0.\n"
        "The following list shows the CCs this version of PyTorch was built for and the hardware CCs it supports:\n"
        "- 8.0 which supports hardware CC >=8.0,<9.0\n"
        "Your installed torch==2.14.1+cu126 does not include kernels for this GPU. Reinstall the same version "
        "against a CUDA build that does, e.g.:",
    ),
]


@pytest.mark.parametrize("slug,text", CASES, ids=[f"{i:02d}-{c[0]}" for i, c in enumerate(CASES)])
def test_upstream_wording_names_its_article(slug: str, text: str) -> None:
    assert top(text) == slug


def test_old_gpu_in_torchs_new_warning_is_too_old_not_a_missing_build() -> None:
    # torch/cuda/__init__.py (2.14): the same warning for a Pascal card is the too-old article
    text = (
        "UserWarning: Found GPU0 NVIDIA GeForce GTX 1080 Ti which is of compute capability (CC) 6.1.\n"
        "The following list shows the CCs this version of PyTorch was built for and the hardware CCs it supports:\n"
        "- 7.5 which supports hardware CC >=7.5,<8.0\n"
        "Your installed torch==2.14.1+cu130 does not include kernels for this GPU. Reinstall the same version "
        "against a CUDA build that does, e.g.:"
    )
    assert top(text) == "gpu-too-old"


def test_nvfp4_on_sm120_is_not_the_old_gpu_article() -> None:
    text = "NotImplementedError: No compiled nvfp4 mm kernel for SM 120. Recompile with CUDA >= 12.8 and CC >= 100."
    assert top(text) != "quant-needs-newer-gpu"


def test_flashinfer_arch_list_without_sm12x_is_no_proof_of_the_sm120_article() -> None:
    # the same FlashInfer error for a kernel family that is datacenter-Blackwell only may be a Hopper running it:
    # a hint at most, never the exact answer
    res = match_text("RuntimeError: No supported CUDA architectures found for major versions [10].", ARTS)
    assert not [m for m in res if m["slug"] == "flashinfer-sm120" and m["tier"] == "exact"]
    exact = match_text("RuntimeError: No supported CUDA architectures found for major versions [12].", ARTS)
    assert exact and exact[0]["slug"] == "flashinfer-sm120" and exact[0]["tier"] == "exact"
