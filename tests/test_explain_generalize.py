"""explain on real excerpts of benchmarks/explain_eval: evidence rules written for a class of error (not one
excerpt), pasted shapes (web-page markup, word-wrapped text, INFO records before the error), the phase of an OOM,
and the topics an article needs before tier 2 may name it. Each excerpt is quoted verbatim from the thread cited."""

from __future__ import annotations

import html
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bwdoctor import explain
from bwdoctor.explain import analyse_text, evidence_keys, extract_evidence, join_wrapped, match_text, oom_phase
from bwdoctor.knowledge import load_all

ROOT = Path(__file__).resolve().parents[1]
ARTS = load_all()
EVAL = ROOT / "benchmarks" / "explain_eval"


def top(text: str):
    res = match_text(text, ARTS)
    return (res[0]["slug"], res[0]["tier"]) if res else (None, None)


# ------------------------------------------------------------------ evidence rules for classes of error

# https://github.com/NVIDIA/nvidia-docker/issues/1671
NVML_IN_CONTAINER = "root@098b49afe624:/# nvidia-smi \nFailed to initialize NVML: Unknown Error"
# https://github.com/alibaba/BladeDISC/issues/1248
NVML_IN_DOCKER_TITLE = "Nvidia-smi is not working after few hours inside docker(NVML error)"
# https://github.com/vllm-project/vllm/issues/1284
CC_FLOOR = (
    "Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla P100-PCIE-16GB GPU has "
    "compute capability 6.0.\nRuntimeError: GPUs with compute capability below 7.0 are not supported."
)
# https://github.com/vllm-project/vllm/issues/26297
QUANT_CHECK = (
    '(Worker_TP0 pid=3928601) ERROR 10-06 22:12:39 [multiproc_executor.py:597]   File "/home/drc-whlab/miniconda3/'
    "envs/vllm011cp312/lib/python3.12/site-packages/vllm/model_executor/layers/quantization/compressed_tensors/"
    'compressed_tensors.py", line 626, in get_scheme\n'
    "(Worker_TP0 pid=3928601) ERROR 10-06 22:12:39 [multiproc_executor.py:597]     "
    "self._check_scheme_supported(scheme.get_min_capability())"
)
# https://github.com/pytorch/torchtitan/pull/3976
FA3_FLOOR = (
    "But torch's FA3 kernel is gated to *exactly* SM 9.x and raises `FA3 requires compute capability 9.0` on "
    "Blackwell, crashing the `VarlenAttention` path at init."
)
# https://github.com/Dao-AILab/flash-attention/issues/2003
FA3_GB200 = (
    "I'm trying to use FA3 for inference for WAN2.2, with GB200 chips, which are sm_100. But I'm seeing issues like "
    "`torch.AcceleratorError: CUDA error: unspecified launch failure` or some other errors."
)
# https://github.com/vllm-project/vllm/issues/9060
FA_GATE = "FATAL: FlashAttention requires building with sm version sm80-sm90, but was built for < 8.0!"
# https://github.com/sgl-project/sglang/issues/6017
PEERMEM_ABSENT = (
    "> > /sgl-workspace/nvshmem/src/modules/transport/ibgda/ibgda.cpp:nvshmemt_init:3626: neither nv_peer_mem, or "
    "nvidia_peermem detected. Skipping transport.\n"
    "> > /sgl-workspace/nvshmem/src/host/transport/transport.cpp:nvshmemi_transport_init:275: init failed for "
    "transport: IBGDA"
)
# https://github.com/rapidsai/cugraph/issues/2113
LIBNUMA_IMPORT = "[BUG] importing cugraph in Amazon SageMaker Studio Lab cause import error libnuma.so.1"
# https://github.com/MicrosoftDocs/azure-docs/issues/10589
DRIVER_WITHOUT_GPU = (
    "You do not appear to have an NVIDIA GPU supported by the 390.42 NVIDIA Linux graphics driver installed in this "
    "system."
)
# https://github.com/bitsandbytes-foundation/bitsandbytes/issues/1518
BNB_SETUP = (
    "/home/sklioui/miniconda3/envs/luma_unbias/lib/python3.10/site-packages/bitsandbytes/cuda_setup/main.py:167: "
    "UserWarning: /home/sklioui/miniconda3/envs/luma_unbias did not contain ['libcudart.so', 'libcudart.so.11.0', "
    "'libcudart.so.12.0'] as expected! Searching further paths...\n  warn(msg)"
)


@pytest.mark.parametrize(
    "text, slug, key",
    [
        (NVML_IN_CONTAINER, "no-driver-in-container", "family:nvml-container"),
        (NVML_IN_DOCKER_TITLE, "no-driver-in-container", "family:nvml-container"),
        (CC_FLOOR, "gpu-too-old", "family:cc-floor"),
        (QUANT_CHECK, "quant-needs-newer-gpu", "family:quant-capability-check"),
        (FA3_FLOOR, "fa3-blackwell", "family:fa3-named"),
        (FA3_GB200, "fa3-blackwell", "gpu:blackwell-datacenter"),
        (FA_GATE, "flash-attn-arch-gate", "family:flash-attn-gate"),
        (PEERMEM_ABSENT, "peermem-nccl-hang", "family:rdma-peermem"),
        (LIBNUMA_IMPORT, "system-library-missing", "soname:libnuma"),
        (DRIVER_WITHOUT_GPU, "driver-older-than-gpu", "family:gpu-unsupported-by-driver"),
        (BNB_SETUP, "bitsandbytes-sm120", "family:bnb-setup"),
    ],
)
def test_a_class_of_error_is_read_from_its_evidence(text, slug, key):
    keys = evidence_keys(extract_evidence(explain.normalize(text)))
    assert key in keys
    assert top(text)[0] == slug


def test_a_dtype_floor_alone_is_not_evidence_of_a_gpu_too_old():
    # the first line of https://github.com/vllm-project/vllm/issues/1284 alone: --dtype half is a fix, so the
    # capability-floor evidence ignores it (whether an article names it is up to the articles' own signatures)
    text = CC_FLOOR.split("\n")[0]
    assert "family:cc-floor" not in evidence_keys(extract_evidence(text))
    assert "family:cc-floor" in evidence_keys(extract_evidence(CC_FLOOR))


@pytest.mark.parametrize(
    "text",
    [
        # flash-attn's own checks of the input (the TORCH_CHECK messages of its flash_api.cpp), not of the GPU
        "RuntimeError: FlashAttention only support fp16 and bf16 data type",
        "RuntimeError: FlashAttention forward only supports head dimension at most 256",
        # a model architecture, not a GPU architecture
        "ValueError: fp8 quantization is not supported for this model architecture: Gemma3ForCausalLM",
        # any kernel's error, with nothing about peers
        "RuntimeError: Triton Error [CUDA]: invalid argument",
        # Triton's shared-memory limit of one kernel configuration
        "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 131072, Hardware limit: "
        "101376. Reducing block sizes or `num_stages` may help.",
    ],
)
def test_an_article_about_a_gpu_or_peers_needs_that_topic_in_the_text(text):
    assert match_text(text, ARTS) == []


# ------------------------------------------------------------------ where an OOM happened

# https://github.com/Sandermage/genesis-vllm-patches/issues/1 (a prefill step of a running engine)
OOM_PREFILL = (
    "(EngineCore pid=229) ERROR 04-19 12:21:04 [core.py:1134]     out = self._continuation_prefill(\n"
    "(EngineCore pid=229) ERROR 04-19 12:21:04 [core.py:1134] torch.OutOfMemoryError: CUDA out of memory. Tried to "
    "allocate 72.00 MiB. GPU 0 has a total capacity of 31.33 GiB of which 2.56 MiB is free."
)
# https://github.com/studio-dots-ai/dots.ocr/issues/196 (a script, not a serving engine)
OOM_SCRIPT = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 74.16 GiB. GPU 0 has a total capacity of 44.40 "
    "GiB of which 29.89 GiB is free. Process 2684311 has 14.51 GiB memory in use."
)
# https://github.com/vllm-project/vllm/pull/57595 (the allocator's message cut before "out of memory")
OOM_PROFILER = (
    "    Tried to allocate 136.00 MiB. GPU 0 has a total capacity of 22.36 GiB of\n"
    "    which 120.88 MiB is free. ... If this problem persists, try setting\n"
    "    VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0"
)
# https://github.com/vllm-project/vllm/issues/15105 (tests/corpus: a bare OOM in a vLLM worker is its start)
OOM_WORKER = (
    "(VllmWorker rank=1 pid=2978) ERROR 03-19 07:27:53 [multiproc_executor.py:375] torch.OutOfMemoryError: CUDA out "
    "of memory. Tried to allocate 1.74 GiB. GPU 1 has a total capacity of 23.57 GiB of which 605.88 MiB is free. "
    "Process 133288 has 22.97 GiB memory in use."
)


@pytest.mark.parametrize(
    "text, phase, slug",
    [
        (OOM_PREFILL, "runtime", "runtime-oom"),
        (OOM_SCRIPT, "runtime", "runtime-oom"),
        (OOM_PROFILER, "startup", "startup-oom"),
        (OOM_WORKER, "startup", "startup-oom"),
    ],
)
def test_an_oom_is_placed_in_the_start_or_the_run_from_its_text(text, phase, slug):
    assert oom_phase(text) == phase
    got = match_text(text, ARTS)
    assert got[0]["slug"] == slug
    # the article of the other phase is never offered beside it
    assert {"startup-oom", "runtime-oom"} - {slug} & {m["slug"] for m in got} == set()


def test_no_oom_no_phase():
    assert oom_phase("RuntimeError: CUDA error: no kernel image is available for execution on the device") is None


# ------------------------------------------------------------------ pasted shapes

# https://github.com/FFTAI/Wiki-GRx-Gym/issues/6
GLIBCXX = "ImportError: …/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by …/gymtorch.so)"
# https://github.com/tdrussell/diffusion-pipe/issues/154
NCCL_OLD = (
    "[rank1]: torch.distributed.DistBackendError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/"
    "ProcessGroupNCCL.cpp:3396, unhandled cuda error (run with NCCL_DEBUG=INFO for details), NCCL version 2.25.1\n"
    "[rank1]: ncclUnhandledCudaError: Call to CUDA function failed."
)
# https://github.com/mozilla-ai/llamafile/issues/400 (a llamafile killed by SIGILL)
SIGILL = (
    "llama_new_context_with_model:        CPU compute buffer size =   160.01 MiB\n"
    "llama_new_context_with_model: graph nodes  = 921\n"
    "llama_new_context_with_model: graph splits = 1\n"
    "fish: Job 1, './moondream2-q8.llamafile -ngl…' terminated by signal SIGILL (Illegal instruction)"
)


def _wrap(text: str, width: int = 80) -> str:
    return "\n".join(w for ln in text.split("\n") for w in (textwrap.wrap(ln, width, break_on_hyphens=False) or [""]))


def test_a_paste_from_a_web_page_loses_its_markup_and_entities():
    page = "<details><summary>log</summary>\n<pre><code>" + html.escape(GLIBCXX) + "</code></pre>\n</details>"
    assert "&#x27;" in page or "&#39;" in page
    assert top(page)[0] == "libstdcxx-too-old"
    assert "GLIBCXX_3.4.32' not found" in explain.normalize(page)


def test_a_word_wrapped_paste_is_joined_where_a_greedy_wrapper_broke_it():
    wrapped = _wrap(NCCL_OLD)
    assert "NCCL error in:\n/pytorch" in wrapped  # the break after a colon, before a path
    joined = [ln for ln in explain.normalize(wrapped).split("\n") if ln]
    assert any("NCCL error in: /pytorch" in ln and "unhandled cuda error" in ln for ln in joined)
    assert top(wrapped)[0] == "nccl-too-old-blackwell"


def test_a_capitalized_line_continues_only_where_its_first_word_would_not_have_fitted():
    # in a paste wrapped at 85 columns, "Ok" fits after a 61-column line: the writer broke it, not a wrapper
    lines = ["x" * 50 + " short line", "Ok then", "Y" * 85, "Z" * 80]
    assert join_wrapped(lines, [False] * 4, [len(ln) for ln in lines])[1] == "Ok then"
    # after an 84-column line it would not have fitted: a wrapper broke the sentence there
    lines = ["x" * 78 + " a line", "Ok then", "Y" * 85, "Z" * 80]
    out = join_wrapped(lines, [False] * 4, [len(ln) for ln in lines])
    assert out[0].endswith("a line Ok then") and out[1] == ""


def test_info_records_before_an_error_do_not_swallow_it():
    noise = "INFO 03-01 10:00:00 [api_server.py:1] vLLM API server version 0.9.1\n" * 50
    assert top(noise + SIGILL)[0] == "cpu-isa-mismatch"
    assert top(SIGILL + "\n" + "INFO 03-01 10:00:01 [launcher.py:1] Shutting down\n" * 50)[0] == "cpu-isa-mismatch"


def test_reply_quoting_does_not_count_toward_a_terminal_width():
    # tune t003 (https://github.com/kuvaus/LlamaGPTJ-chat/issues/21) quoted twice: 96 columns + "> > " is 100,
    # a terminal width, but the break came before the quoting, so no words are glued together
    ex = _eval_item("tune.jsonl", "t003")
    quoted = "\n".join("> > " + ln for ln in ex["excerpt"].split("\n"))
    assert "binIllegal" not in explain.normalize(quoted)
    assert top(quoted)[0] == "cpu-isa-mismatch"


def _eval_item(name: str, item_id: str) -> dict:
    for line in (EVAL / name).read_text(encoding="utf-8").splitlines():
        if line.strip():
            it = json.loads(line)
            if it["id"] == item_id:
                return it
    raise KeyError(item_id)


# ------------------------------------------------------------------ calibrated answer


def test_the_calibrated_answer_needs_gpu_evidence_of_several_kinds():
    kinds = explain.gpu_evidence(evidence_keys(extract_evidence(FA3_GB200)), FA3_GB200)
    assert {"arch", "gpu"} <= kinds
    assert explain.gpu_evidence([], "TypeError: forward() takes 2 positional arguments but 3 were given") == set()


def test_output_without_an_error_line_gets_no_calibrated_answer():
    # tune t191 (https://github.com/NVIDIA/nccl/issues/85): nccl-tests output with no error line and no GPU-stack
    # evidence keeps its nearest topic a topic, however far it leads
    # (the corpus model, fitted on this very row, may still answer it: that is the model's tier, not this one)
    ex = _eval_item("tune.jsonl", "t191")
    lines = [(i + 1, s) for i, s in enumerate(x for x in ex["excerpt"].split("\n") if len(x.strip()) >= 3)]
    tier2 = explain.rank_evidence(lines, ARTS)
    assert tier2["likely"] == []
    assert "pcie-p2p-acs-iommu" in [n["slug"] for n in tier2["nearest"]]
    res = analyse_text(ex["excerpt"], ARTS)
    assert all("corpus model: p=" in m["evidence"][0] for m in res["matches"])


# ------------------------------------------------------------------ the evaluation script


def test_evaluate_takes_the_holdout2_split_and_several_files():
    script = EVAL / "evaluate.py"
    one = subprocess.run(
        [sys.executable, str(script), "--split", "holdout2", "--json"], capture_output=True, text=True, timeout=300
    )
    assert one.returncode == 0, one.stderr
    c = json.loads(one.stdout)
    assert c["positives"] + c["negatives"] == len(
        [ln for ln in (EVAL / "holdout2.jsonl").read_text(encoding="utf-8").splitlines() if ln.strip()]
    )
    assert c["negatives_wrong"] == 0 and c["negatives"] > 0
    two = subprocess.run(
        [sys.executable, str(script), "--file", str(EVAL / "holdout.jsonl"), "--file", str(EVAL / "holdout2.jsonl")]
        + ["--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr
    assert json.loads(two.stdout)["positives"] > c["positives"]


# ------------------------------------------------------------------ tier 2 alone: wordings no signature knows


def tier2_top(text: str):
    scanner = explain._Scanner(explain._rules(ARTS))
    scanner.feed(text, 1)
    got = explain.rank_evidence(scanner.query.lines(), ARTS, lookalike=scanner.excluded)["likely"]
    return got[0]["slug"] if got else None


@pytest.mark.parametrize(
    "split, item_id, slug, key",
    [
        # https://github.com/open-mmlab/mmcv/issues/3217: the build looks for an nvcc that is not there
        ("holdout2.jsonl", "h2097", "cuda-toolkit-missing", "family:no-cuda-toolkit"),
        # https://github.com/tenstorrent/tt-xla/issues/2338
        ("holdout2.jsonl", "h2098", "cuda-toolkit-missing", "family:no-cuda-toolkit"),
        # https://github.com/noonghunna/club-3090/issues/922: `nvidia-smi topo -m` with no error line at all
        ("tune.jsonl", "t149", "custom-allreduce-p2p", "family:topo-matrix"),
        # https://github.com/NVIDIA/nccl/issues/629: lspci's ACSCtl lines pasted into an NCCL report
        ("holdout2.jsonl", "h2104", "pcie-p2p-acs-iommu", "symptom:iommu"),
        # https://github.com/NVIDIA/nvidia-docker/issues/1171
        ("holdout2.jsonl", "h2094", "no-driver-in-container", "family:nvml-container"),
    ],
)
def test_tier_two_alone_reads_the_class_of_error(split, item_id, slug, key):
    text = _eval_item(split, item_id)["excerpt"]
    assert key in evidence_keys(extract_evidence(explain.normalize(text)))
    assert tier2_top(text) == slug


def test_a_missing_libcuda_at_run_time_is_a_driver_not_mounted_in():
    # the dynamic loader's own message for libcuda at run time (the driver's library, mounted into a container
    # by the NVIDIA runtime), not a -lcuda at link time (that one is missing-library, by the linker's family)
    assert tier2_top("OSError: libcuda.so.1: cannot open shared object file: No such file or directory") == (
        "no-driver-in-container"
    )
    assert top("/usr/bin/ld: cannot find -lcuda: No such file or directory")[0] == "missing-library"


def test_terminal_colour_codes_are_dropped_with_or_without_their_escape():
    coloured = "\n".join("\x1b[1;31m" + ln + "\x1b[0m" for ln in NCCL_OLD.split("\n"))
    assert top(coloured)[0] == "nccl-too-old-blackwell"
    # copied from a rendered page, the ESC is gone and "[0m" stays in the text
    bare = "[1;36m(VllmWorker rank=0 pid=1)[0m " + GLIBCXX
    assert "[0m" not in explain.normalize(bare)
    assert top(bare)[0] == "libstdcxx-too-old"


def test_the_end_of_a_long_paste_is_read_whatever_its_words():
    # https://github.com/apple-aiml-research/ml-depth-pro/issues/62 (holdout h045): torchvision's frames hold no
    # error word; under 600 lines of other frames (a long paste) they are still read, because they close the paste
    ex = _eval_item("holdout.jsonl", "h045")
    frames = "".join(
        f'  File "/usr/lib/python3.10/site-packages/pkg/mod{i}.py", line {i}, in fn{i}\n    x = call{i}(y)\n'
        for i in range(300)
    )
    assert top(ex["excerpt"])[0] == "torchvision-mismatch"
    assert top("Traceback (most recent call last):\n" + frames + ex["excerpt"])[0] == "torchvision-mismatch"


@pytest.mark.parametrize(
    "url, text",
    [
        (
            "https://github.com/vllm-project/vllm/issues/13510",
            "ValueError: Invalid repository ID or local directory specified: "
            "'neuralmagic/Meta-Llama-3-8B-Instruct-FP8-dynamic'.\nPlease verify the following requirements:\n"
            "1. Provide a valid Hugging Face repository ID.\n"
            "2. Specify a local directory that contains a recognized configuration file.\n"
            "   - For Hugging Face models: ensure the presence of a 'config.json'.\n"
            "   - For Mistral models: ensure the presence of a 'params.json'.",
        ),
        (
            "https://github.com/huggingface/sentence-transformers/issues/3561",
            "# OSError: Can't load the model for 'emillykkejensen/EmbeddingGemma-Scandi-300m'. If you were trying to "
            "load it from 'https://huggingface.co/models', make sure you don't have a local directory with the same "
            "name. Otherwise, make sure 'emillykkejensen/EmbeddingGemma-Scandi-300m' is the correct path to a "
            "directory containing a file named pytorch_model.bin, tf_model.h5, model.ckpt or flax_model.msgpack.",
        ),
    ],
)
def test_a_model_that_cannot_be_found_or_loaded_gets_no_article(url, text):
    """A wrong repository id or model path is the user's input, not the machine: no article, not even a likely one
    (tier 2 had read these as an attention backend and a missing library)."""
    assert analyse_text(text, ARTS)["matches"] == [], url


@pytest.mark.parametrize(
    "url, text, slug",
    [
        (
            "https://github.com/woct0rdho/triton-windows/issues/113",
            "site-packages\\triton\\windows_utils.py:315: UserWarning: Failed to find Python libs.\n"
            '  warnings.warn("Failed to find Python libs.")\n'
            "C:/Users/steven/AppData/Local/Temp/tmptw09ntof/cuda_utils.c:14: error: include file 'Python.h' not found",
            "python-headers-missing",
        ),
        (
            "https://github.com/MiniMax-AI/MiniMax-01/issues/42",
            "(VllmWorkerProcess pid=221) ERROR 04-06 20:46:48 [multiproc_worker_utils.py:238] "
            "torch.distributed.DistBackendError: NCCL error in: "
            "/pytorch/torch/csrc/distributed/c10d/NCCLUtils.hpp:268, "
            "unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.21.5",
            "nccl-shm-too-small",
        ),
        (
            "https://github.com/pytorch/pytorch/issues/31179",
            "THCudaCheck FAIL file=/opt/conda/conda-bld/pytorch_1573049306803/work/aten/src/THC/THCGeneral.cpp "
            "line=50 error=999 : unknown error\n"
            "RuntimeError: cuda runtime error (999) : unknown error at "
            "/opt/conda/conda-bld/pytorch_1573049306803/work/aten/src/THC/THCGeneral.cpp:50",
            "cuda-unknown-error-999",
        ),
    ],
)
def test_tinycc_nccl_system_and_thc_999_wordings_name_their_articles(url, text, slug):
    """Wordings first met in holdout6 (after its sealed score): TinyCC's missing include (Triton on Windows), NCCL's
    ncclSystemError (not the CUDA error an old NCCL gives on Blackwell), torch 1.x THC's error 999."""
    matches = analyse_text(text, ARTS)["matches"]
    assert matches and matches[0]["slug"] == slug, (url, matches[:2])
