"""explain on classes of error first seen in benchmarks/explain_eval/holdout4.jsonl and holdout5.jsonl (the sealed
splits, development data since they were scored): each rule names a failure in a wording no signature had met (a
compiler out of host memory, a GPU refusing a low-precision format, PTX for the arch-specific target, an allocator
option refused, two CUDA runtimes, a removed flag, a Windows loader's missing entry point, no KV-cache block, an
unplaceable BAR, pip replacing torch, a missing -dev package, CUDA_VISIBLE_DEVICES hiding every GPU, an attention
backend refused for the device, several consumer GPUs deadlocking, a c10 typeinfo symbol, a warm-up out of memory).
Each is checked on its real excerpt, quoted verbatim from the thread cited, with the full matcher and with tier 2
alone, and on look-alikes that must not name the article."""

from __future__ import annotations

import pytest

from bwdoctor.explain import evidence_keys, extract_evidence, match_text, normalize, oom_phase, rank_evidence
from bwdoctor.knowledge import load_all

ARTS = load_all()

# https://github.com/vllm-project/vllm/issues/2175
COMPILER_OOM = (
    "#26 98.16 /usr/local/lib/python3.10/dist-packages/torch/include/c10/util/StringUtil.h(68):"
    " catastrophic error: out of memory\n"
    "#26 98.16     return _str(_str(ss, t), args...);\n"
    "#26 98.16            ^"
)
# https://github.com/predibase/lorax/issues/252
BUILD_KILLED = (
    " --expt-extended-lambda --use_fast_math -gencode arch=compute_80,code=sm_80 -gencode arch="
    "compute_90,code=sm_90 --threads 4 -DTORCH_API_INCLUDE_EXTENSION_H '-DPYBIND11_COMPILER_TYP"
    'E="_gcc"\' \'-DPYBIND11_STDLIB="_libstdcpp"\' \'-DPYBIND11_BUILD_ABI="_cxxabi1011"\' -DTORCH_EX'
    "TENSION_NAME=flash_attn_2_cuda\n"
    " -D_GLIBCXX_USE_CXX11_ABI=0\n"
    "Killed"
)
# https://github.com/bitsandbytes-foundation/bitsandbytes/issues/118
INT8_GPU = (
    "=============================================\n"
    "ERROR: Your GPU does not support Int8 Matmul!\n"
    "=============================================\n"
    "\n"
    "python: /home/gene/dockerx/temp/bitsandbytes/csrc/ops.cu:408: int igemmlt(cublasLtHandle_t"
    ", int, int, int, const int8_t*, const int8_t*, void*, float*, int, int, int) [with int FOR"
    "MATB = 3; int DTYPE_OUT = 32; int SCALE_ROWS = 0; cublasLtHandle_t = cublasLtContext*; int"
    "8_t = signed char]: Assertion `false' failed."
)
# https://github.com/NVIDIA/TransformerEngine/issues/1159
FP8_CC = (
    "   with te.fp8_autocast(enabled=True, fp8_recipe=fp8_recipe):\n"
    " assert fp8_available, reason_for_no_fp8\n"
    "AssertionError: Device compute capability 8.9 or higher required for FP8 execution."
)
# https://github.com/pytorch/pytorch/issues/174161
SM120A_PTX = (
    "nvcc -fatbin /tmp/torchinductor_larryliu/cn2b7b3axqd67apcipd7hhra5w6yptgpisf47u3ksrwycqjr4"
    "tiq/clps3nzvdel6iy7tuyubpl5bio42qofv3tnaw3kh6srfe7qy2w7u.ptx -o /tmp/torchinductor_larryli"
    "u/cn2b7b3axqd67apcipd7hhra5w6yptgpisf47u3ksrwycqjr4tiq/clps3nzvdel6iy7tuyubpl5bio42qofv3tn"
    "aw3kh6srfe7qy2w7u.fatbin -gencode arch=compute_120,code=compute_120 -gencode arch=compute_"
    "120,code=sm_120  failed with:\n"
    "stdout:\n"
    "\n"
    "stderr:\n"
    "ptxas fatal   : PTX with .target 'sm_120a' cannot be compiled for architecture 'sm_120'"
)
# https://github.com/NVIDIA/cutlass/issues/2451
ARCH_COND_MMA = (
    "ERROR : Arch conditional MMA instruction used without targeting appropriate compute capability. Aborting."
)
# https://github.com/OpenPipe/ART/issues/405
MEMPOOL_EXPANDABLE = (
    'File ".../vllm/model_executor/layers/vocab_parallel_embedding.py", line 34, in init\n'
    "weight = Parameter(torch.empty(sum(output_partition_sizes), ...))\n"
    "RuntimeError: torch.cuda.MemPool doesn't currently support expandable_segments."
)
# https://github.com/pytorch/pytorch/issues/122057
EXPANDABLE_PLATFORM = (
    "[W CUDAAllocatorConfig.h:28] Warning: expandable_segments not supported on this platform (function operator())"
)
# https://github.com/nv-tlabs/Cosmos-Drive-Dreams/issues/40
MULTI_CUDART = "RuntimeError: Multiple libcudart libraries found: libcudart.so.12 and libcudart.so.13"
# https://github.com/NVIDIA/cuda-quantum/issues/4236
BOTH_CUDART = "PyTorch + CUDA-Q: invalid resource handle when system and wheel libcudart both load"
# https://github.com/ai-dynamo/dynamo/pull/8693
REMOVED_FLAG = (
    "- vLLM removed the deprecated `--disable-log-requests` argument; the recipes for `qwen3-vl"
    "-30b` and `qwen3-32b` still passed it, causing pods on `vllm-runtime:1.1.0-rc5` (and main'"
    "s `vllm-runtime` built against vLLM 0.19.x) to crash on startup with `__main__.py: error: "
    "unrecognized arguments: --disable-log-requests`."
)
# https://github.com/vllm-project/vllm/issues/23283
ENGINE_ARGS_KW = "TypeError: AsyncEngineArgs.__init__() got an unexpected keyword argument 'disable_log_requests'"
# https://github.com/facebookresearch/xformers/issues/1248
PYD_ENTRY = (
    "The procedure entry point could not be located in the dynamic link library Z:\\_PSTART_\\_AP"
    "PS_\\_AI_\\ComfyUI_windows_portable\\python_embeded\\Lib\\site-packages\\xformers\\_C.pyd"
)
# https://github.com/netease-youdao/QAnything/issues/302
NO_BLOCKS = (
    "INFO 04-27 10:13:05 llm_engine.py:275] # GPU blocks: 0, # CPU blocks: 256\n"
    "2024-04-27 10:13:05 | ERROR | stderr | Traceback (most recent call last):"
)
# https://github.com/aikitoria/open-gpu-kernel-modules/issues/9
BAR_NO_SPACE = (
    "`[ 13.042021] kernel: nvidia 0000:84:00.0: BAR 1 [mem size 0x800000000 64bit pref]: can't assign; no space`"
)
# https://github.com/vllm-project/vllm/issues/34224
PIP_REPLACES_TORCH = (
    " Attempting uninstall: torch\n"
    "    Found existing installation: torch 2.10.0+cu130\n"
    "    Uninstalling torch-2.10.0+cu130:\n"
    "      Successfully uninstalled torch-2.10.0+cu130\n"
    "  Attempting uninstall: torchvision\n"
    "    Found existing installation: torchvision 0.25.0+cu130\n"
    "    Uninstalling torchvision-0.25.0+cu130:\n"
    "      Successfully uninstalled torchvision-0.25.0+cu130"
)
# https://github.com/vllm-project/vllm/issues/21745
IGNORES_TORCH = "[Bug]: vllm ignores existing pytorch installation"
# https://github.com/vllm-project/vllm/issues/20384
NUMA_DEV = "[Bug]: Docker build fails on dev stage due to missing libnuma-dev"
# https://github.com/pytorch/examples/issues/115
CVD_NO_DEVICE = (
    "(py35) ~/pytorch/examples/mnist$ CUDA_VISIBLE_DEVICES=2 python main.py\n"
    "THCudaCheck FAIL file=torch/csrc/cuda/Module.cpp line=109 error=38 : no CUDA-capable devic"
    "e is detected"
)
# https://github.com/vllm-project/vllm/issues/9096
SDPA_CPU = "And I have AssertionError: Torch SDPA backend is only used for the CPU device."
# https://github.com/deepspeedai/DeepSpeed/issues/4433
MULTI_4090_DEADLOCK = "[BUG] Deadlock in distribution with multiple 4090"
# https://github.com/pytorch/pytorch/issues/29544
TYPEINFO_C10 = (
    '  File "/usr/local/lib/python3.6/dist-packages/detectron2/utils/env.py", line 10, in <modu'
    "le>\n"
    "    import torch\n"
    '  File "/usr/local/lib/python3.6/dist-packages/torch/__init__.py", line 81, in <module>\n'
    "    from torch._C import *\n"
    "ImportError: /usr/local/lib/python3.6/dist-packages/torch/lib/libtorch_python.so: undefine"
    "d symbol: _ZTIN3c1014WarningHandlerE"
)
# https://github.com/huggingface/text-generation-inference/issues/755
TGI_WARMUP = (
    'Error: Warmup(Generation("Not enough memory to handle 4096 prefill tokens. You need to dec'
    'rease `--max-batch-prefill-tokens`"))'
)

# https://github.com/vllm-project/vllm/issues/32826
NVFP4_MOE_SM120 = "[Bug]: MiniMax-M2.1 NVFP4 fails on RTX PRO 6000 Blackwell (SM120) with expert parallel"


CASES = [
    (COMPILER_OOM, "build-oom", "family:compiler-oom"),
    (BUILD_KILLED, "build-oom", "family:compiler-oom"),
    (INT8_GPU, "quant-needs-newer-gpu", "family:gpu-lacks-quant"),
    (FP8_CC, "quant-needs-newer-gpu", "family:gpu-lacks-quant"),
    (SM120A_PTX, "arch-suffix-missing", "family:arch-specific-target"),
    (ARCH_COND_MMA, "arch-suffix-missing", "family:arch-specific-target"),
    (MEMPOOL_EXPANDABLE, "allocator-conf", "family:allocator-option-unsupported"),
    (EXPANDABLE_PLATFORM, "allocator-conf", "family:allocator-option-unsupported"),
    (MULTI_CUDART, "two-cuda-runtimes", "family:two-cudart"),
    (BOTH_CUDART, "two-cuda-runtimes", "family:two-cudart"),
    (REMOVED_FLAG, "unknown-serve-option", "family:unrecognized-flag"),
    (ENGINE_ARGS_KW, "unknown-serve-option", "family:engine-args-keyword"),
    (PYD_ENTRY, "undefined-symbol", "family:pyd-entry-point"),
    (NO_BLOCKS, "weights-do-not-fit", "family:no-kv-blocks"),
    (BAR_NO_SPACE, "rebar-above4g-disabled", "family:bar-unassigned"),
    (PIP_REPLACES_TORCH, "torch-pin-conflict", "family:torch-replaced"),
    (IGNORES_TORCH, "torch-pin-conflict", "family:torch-replaced"),
    (NUMA_DEV, "system-library-missing", "family:system-dev-package"),
    (CVD_NO_DEVICE, "gpus-hidden", "family:visible-devices-set"),
    (SDPA_CPU, "bad-attention-backend", "family:attn-backend-device"),
    (MULTI_4090_DEADLOCK, "consumer-p2p-hang", "family:multi-consumer-gpu"),
    (TYPEINFO_C10, "undefined-symbol", "symbol-demangled:typeinfo for c10::WarningHandler"),
    (TGI_WARMUP, "startup-oom", "family:oom:startup"),
    (NVFP4_MOE_SM120, "flashinfer-nvfp4-moe-sm120", "family:nvfp4-moe"),
]


def tier2(text: str) -> list:
    lines = [(n, s) for n, s in enumerate(normalize(text).split("\n"), 1)]
    return [m["slug"] for m in rank_evidence(lines, ARTS)["likely"]]


@pytest.mark.parametrize("text,slug,key", CASES)
def test_the_class_names_its_article_first(text: str, slug: str, key: str) -> None:
    res = match_text(text, ARTS)
    assert res and res[0]["slug"] == slug, [(m["slug"], m["tier"]) for m in res]
    assert key in evidence_keys(extract_evidence(text))


@pytest.mark.parametrize("text,slug,key", CASES)
def test_tier2_alone_names_it_from_the_evidence(text: str, slug: str, key: str) -> None:
    assert tier2(text)[:1] == [slug]


def test_a_compiler_oom_is_neither_phase_of_a_gpu_oom() -> None:
    assert oom_phase(COMPILER_OOM) == "build"
    assert "runtime-oom" not in [m["slug"] for m in match_text(COMPILER_OOM, ARTS)]
    assert oom_phase("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB") in (
        "startup",
        "runtime",
    )


LOOKALIKES = [
    # a program killed with no compiler on the lines before it
    ("$ python train.py --epochs 3\nKilled", "family:compiler-oom", "build-oom"),
    # a dtype, not a quantization format: a setting to change, not a newer GPU to buy
    ("ValueError: Your GPU does not support bfloat16", "family:gpu-lacks-quant", "quant-needs-newer-gpu"),
    # the plain target on both sides is not the suffix missing
    (
        "ptxas fatal   : PTX with .target 'sm_90' cannot be compiled for architecture 'sm_80'",
        "family:arch-specific-target",
        "arch-suffix-missing",
    ),
    # a positional argument passed twice is a usage error (h5006's shape), not a flag this release lacks
    (
        "api_server.py: error: unrecognized arguments: /root/models/Qwen3-8B",
        "family:unrecognized-flag",
        None,
    ),
    # another program's argparse refusing a flag: the flag is read, the serving CLI's article is not named
    ("train.py: error: unrecognized arguments: --fp16", None, "unknown-serve-option"),
    # the user's own call with a wrong keyword stays a code error
    (
        "TypeError: LLM.generate() got an unexpected keyword argument 'max_tokens'",
        "family:engine-args-keyword",
        "unknown-serve-option",
    ),
    # a DLL that is not a Python extension: not this family (the article's own signatures may still name it)
    (
        "The procedure entry point cudnnGetVersion could not be located in the dynamic link library cudnn64_8.dll",
        "family:pyd-entry-point",
        None,
    ),
    ("INFO 04-27 10:13:05 llm_engine.py:275] # GPU blocks: 1024, # CPU blocks: 256", "family:no-kv-blocks", None),
    ("pci 0000:84:00.0: BAR 1 [mem 0x38000000000-0x387ffffffff 64bit pref]: assigned", "family:bar-unassigned", None),
    ("Successfully installed torch-2.5.1 torchvision-0.20.1", "family:torch-replaced", "torch-pin-conflict"),
    ("CUDA_VISIBLE_DEVICES=0,1 vllm serve Qwen/Qwen3-8B -tp 2", None, "gpus-hidden"),
    # NVFP4 and MoE named together where nothing failed between them
    (
        "With nvcc 12.9 on sm_120 the same modules compile and run (FP8 GEMM, CUTLASS fused-MoE, CUTLASS NVFP4 GEMM "
        "all produced correct generations)",
        "family:nvfp4-moe",
        None,
    ),
    ("Training on multiple 4090 GPUs is 1.8x faster than one", None, "consumer-p2p-hang"),
    # the host's allocator, not the GPU's (a setting or a key present alone names nothing)
    (
        "RuntimeError: [enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: you tried "
        "to allocate 1073741824 bytes.",
        None,
        "startup-oom",
    ),
]


@pytest.mark.parametrize("text,key,slug", LOOKALIKES)
def test_a_lookalike_does_not_name_the_article(text: str, key: str | None, slug: str | None) -> None:
    if key is not None:
        assert key not in evidence_keys(extract_evidence(text))
    if slug is not None:
        assert slug not in [m["slug"] for m in match_text(text, ARTS)]


def test_a_typeinfo_symbol_of_another_namespace_is_no_torch_hint() -> None:
    text = "ImportError: libfoo.so: undefined symbol: _ZTIN5boost6system12system_errorE"
    assert "undefined-symbol" not in [m["slug"] for m in match_text(text, ARTS)]


def test_the_host_allocator_out_of_memory_names_no_gpu_memory_article() -> None:
    text = (
        "RuntimeError: [enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: you tried "
        "to allocate 1073741824 bytes."
    )
    got = [m["slug"] for m in match_text(text, ARTS)]
    assert not {"startup-oom", "runtime-oom", "weights-do-not-fit"} & set(got), got


# https://github.com/vllm-project/vllm/issues/14942
C10_ACCESS_ERROR = (
    "[Installation]: ImportError: vllm/vllm/_C.abi3.so: undefined symbol: "
    "_ZNK3c1011StorageImpl27throw_data_ptr_access_errorEv"
)


def test_a_mangled_name_is_read_case_sensitively() -> None:
    # "access_errorEv" holds "Ess" but not the old-ABI std::string "Ss": a c10 symbol of another torch, not the ABI
    res = match_text(C10_ACCESS_ERROR, ARTS)
    assert res[0]["slug"] == "undefined-symbol", [(m["slug"], m["tier"]) for m in res]
    assert "cxx11-abi-mismatch" not in [m["slug"] for m in res]
    old_abi = "undefined symbol: _ZN5torch3jit17parseSchemaOrNameERKSsb"
    assert match_text(old_abi, ARTS)[0]["slug"] == "cxx11-abi-mismatch"


# https://github.com/vllm-project/vllm/issues/4312
NCCL_NOT_FOUND = (
    "[Bug]: NameError: name 'ncclGetVersion' is not defined (or Failed to import NCCL library: Cannot find "
    "libnccl.so.2 in the system.)"
)


def test_a_missing_library_outweighs_the_name_error_it_causes() -> None:
    # the NameError is the wrapper's symptom of the library it could not load; a NameError alone stays code
    assert "soname:libnccl" in evidence_keys(extract_evidence(NCCL_NOT_FOUND))
    assert match_text(NCCL_NOT_FOUND, ARTS)[0]["slug"] == "missing-library"
    assert match_text("NameError: name 'num_gpus' is not defined", ARTS) == []
