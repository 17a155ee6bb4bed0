"""Classes read again from the development rows (benchmarks/explain_eval, by id), answered by the rules alone (the
corpus model switched off, so that the rule is what is tested):

- a CUDA library that cannot be opened is a missing library, CUDA 11 or not; only an extension the text imports
  (``import selective_scan_cuda``, ``from vllm import cuda_utils``) makes an old major a build for another CUDA;
- argparse's ``unrecognized arguments: --flag`` quoted without the program's name is still a serve option that
  this release does not know; a positional argument it refuses is not;
- vLLM's ``Quantization scheme is not supported`` cut short in a title is still the GPU being too old for it;
- (holdout12) vLLM's /dev/shm check and a bus error in a text about /dev/shm; the start-up free-memory check
  quoted without its figures; an engine creating its model instance, a model's constructor allocating its
  parameters, or "loading parameters" placing an OOM; Ollama's "failed to get device context 999" and CUDA 999 by
  number; text-embeddings-inference's compute-cap check; a Windows DLL "or one of its dependencies" not found;
  bitsandbytes' loader wrapping a GLIBCXX error; Triton's fp8e4nv refusal; an ``__nvJitLink`` symbol with its
  version cut off and torch's NCCL config refused by an older NCCL; a kernel's illegal memory access alone is
  not the GPU falling off the bus;
- (holdout13) llama.cpp's "no device code compatible with CUDA arch" and "compiled without support for the
  current GPU architecture"; Xid 79 named in a title; the GSP's PMU halting; CTranslate2's "Library ... is not
  found or cannot be loaded"; a GPU that "does not support bfloat16"; NVHPC's compiler check; transformers spilling
  weights to the disk; Warp's CUDA error 36; torch's environment report with a driver below what its CUDA needs,
  or with no driver; torch's advice lines under a CUDA error are read as nothing.
"""

from __future__ import annotations

import pytest
from evalrows import ROWS, slugs

from bwdoctor.domain.cuda import min_driver_for
from bwdoctor.explain import extract_evidence

pytestmark = pytest.mark.usefixtures("rules_only")


top = slugs


@pytest.mark.parametrize("rid", ["h3019", "h3036", "h9112", "h10123"])
def test_an_old_cuda_library_alone_is_missing(rid):
    assert top(ROWS[rid]["excerpt"])[0] == "missing-library"


def test_an_extension_asking_for_an_old_cuda_library_was_built_for_that_cuda():
    assert top(ROWS["h077"]["excerpt"])[0] == "cuda-major-mismatch"  # ---> 11 import selective_scan_cuda
    assert top(ROWS["t130"]["excerpt"])[0] == "cuda-major-mismatch"  # "from vllm import cuda_utils"
    line = "ImportError: libcublas.so.11: cannot open shared object file: No such file or directory"
    assert top("from . import _C\n" + line)[0] == "cuda-major-mismatch"
    assert top("I can't import anything\n" + line)[0] == "missing-library"


@pytest.mark.parametrize("rid", ["h10072", "h8036"])
def test_an_unrecognized_flag_quoted_alone_is_an_unknown_serve_option(rid):
    assert top(ROWS[rid]["excerpt"])[0] == "unknown-serve-option"


def test_an_unrecognized_positional_argument_is_not_a_serve_option():
    assert top(ROWS["h5006"]["excerpt"]) == []  # api_server.py: error: unrecognized arguments: /root/models/...
    assert top("error: unrecognized arguments: 8000") == []
    # a program that names itself is not vLLM's or SGLang's server (an argparse script of the user's)
    assert top("train.py: error: unrecognized arguments: --fp16") == []


def test_a_quantization_scheme_refused_in_a_title_needs_a_newer_gpu():
    assert top(ROWS["h11019"]["excerpt"])[0] == "quant-needs-newer-gpu"
    assert top("Quantization scheme is not supported for the current GPU. Min capability: 80.")[0] == (
        "quant-needs-newer-gpu"
    )


def test_a_title_that_says_the_process_hung_or_crashed_is_read_as_an_error():
    # "Obvious hang caused by Custom All Reduce OP": the words of a failure, not of an error message
    assert top(ROWS["h9043"]["excerpt"])[0] == "custom-allreduce-p2p"
    # and a sentence without any failure word stays without an answer
    assert top("Custom All Reduce OP and the GPUs of this box") == []


# ------------------------------------------------------------------ read from holdout12


@pytest.mark.parametrize(
    "rid, slug",
    [
        ("h12016", "nccl-shm-too-small"),  # Insufficient space in /dev/shm: 240 MiB required, 64 MiB free.
        ("h12044", "nccl-shm-too-small"),  # SIGBUS once the ring buffer outgrows /dev/shm
        ("h12033", "startup-oom"),  # "Free Memory on device on startup is less than desired ..." in a title
        ("h12063", "startup-oom"),  # turbomind's _create_model_instance
        ("h11052", "startup-oom"),  # Triton server: "Failed to create instance ... creating modelInstanceState"
        ("h12011", "weights-do-not-fit"),  # nn.Linear's __init__ allocating the weights
        ("h12062", "cuda-unknown-error-999"),  # Ollama: "failed to get device context 999"
        ("h12116", "no-kernel-image"),  # TEI: Runtime compute cap 120 is not compatible with compile time ... 80
        ("h12117", "no-kernel-image"),  # ... cap 52 vs 75 (gpu-too-old, no-kernel-image also right)
        ("h12085", "missing-library"),  # llama.dll (or one of its dependencies)
        ("h12113", "libstdcxx-too-old"),  # bitsandbytes' loader wraps GLIBCXX_3.4.32 not found
        ("h12186", "quant-needs-newer-gpu"),  # fp8e4nv data type is not supported on CUDA arch < 89
        ("h12206", "cuda-library-shadowed"),  # __nvJitLinkAddData_12_1, version libnvJitL (cut)
        ("h12022", "cuda-library-shadowed"),  # Invalid config blocking attribute value -2147483648
        ("h12141", "missing-library"),  # Triton: libcuda.so cannot found! Possible files ... libcuda.so.1
    ],
)
def test_holdout12_classes(rid, slug):
    assert top(ROWS[rid]["excerpt"])[0] == slug


def test_the_holdout12_rules_keep_to_their_class():
    # a bus error with no word of shared memory, and /dev/shm with no bus error, stay without this answer
    assert "nccl-shm-too-small" not in top("Fatal Python error: Bus error\nThread 0x7f (most recent call first):")
    # CUDA 999 by its number, as a loader prints it, is the unknown error; another number is not
    assert top("cuda driver library failed to get device context 801")[:1] != ["cuda-unknown-error-999"]
    assert top("CUDA error 999 during cudaMalloc")[0] == "cuda-unknown-error-999"
    # bitsandbytes' loader wrapping its own missing CUDA build stays its article
    wrapped = "Could not load bitsandbytes native library: libbitsandbytes_cuda128.so: cannot open shared object file"
    assert top(wrapped)[0] != "libstdcxx-too-old"
    # an OOM while serving is not moved to the start by the word "instance" alone
    assert top("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB in a new instance")[0] != (
        "startup-oom"
    )
    # a kernel's illegal memory access alone answers nothing; the driver saying the GPU is lost still does
    assert top("RuntimeError: CUDA error: an illegal memory access was encountered") == []
    lost = "NVRM: Xid (PCI:0000:01:00): 79, pid=1, GPU has fallen off the bus.\n" + (
        "RuntimeError: CUDA error: an illegal memory access was encountered"
    )
    assert top(lost)[0] == "gpu-fallen-off-bus"


# ------------------------------------------------------------------ read from holdout13


@pytest.mark.parametrize(
    "rid, slug",
    [
        ("h13040", "no-kernel-image"),  # has no device code compatible with CUDA arch 610 (was: fallen off the bus)
        ("h13053", "no-kernel-image"),  # ggml-cuda was compiled without support for the current GPU architecture
        ("h13058", "gpu-fallen-off-bus"),  # "Random Xid 79 with zero precursor" in a title
        ("h13059", "gpu-fallen-off-bus"),  # "Falls Off Bus with Xid 79 Under Load"
        ("h13079", "gsp-init-failure"),  # Received signal from GSP that PMU has halted
        ("h13107", "missing-library"),  # Library libcublas.so.12 is not found or cannot be loaded
        ("h13009", "gpu-too-old"),  # "2080 Ti does not support bfloat16"
        ("h13049", "host-compiler-unsupported"),  # nvc++ is the only NVHPC compiler that is supported.
        ("h13161", "weights-do-not-fit"),  # device_map had weights offloaded to the disk
        ("h13042", "driver-too-old"),  # Warp CUDA error 36
        ("h13064", "driver-too-old"),  # collect_env: CUDA used to build PyTorch 10.2, driver 410.104, no CUDA
        ("h10018", "no-driver-in-container"),  # collect_env: Nvidia driver version: No CUDA
    ],
)
def test_holdout13_classes(rid, slug):
    assert top(ROWS[rid]["excerpt"])[0] == slug


REPORT = """PyTorch version: 2.7.0+cu128
CUDA used to build PyTorch: 12.8
Is CUDA available: {avail}
CUDA runtime version: 12.8.93
Nvidia driver version: {driver}
"""


def test_an_environment_report_is_read_by_the_driver_table():
    fams = extract_evidence(REPORT.format(avail="False", driver="470.82.01")).get("families", [])
    assert "driver-below-torch-cuda" in fams  # below 12.x's floor (525.60.13)
    # at or above the floor (minor-version compatibility), or with CUDA available, the driver is not the cause
    assert "driver-below-torch-cuda" not in extract_evidence(REPORT.format(avail="False", driver="535.104.05")).get(
        "families", []
    )
    assert "driver-below-torch-cuda" not in extract_evidence(REPORT.format(avail="True", driver="470.82.01")).get(
        "families", []
    )
    # a report with no driver at all, and a malformed one, are read without error
    assert "collect-env-no-driver" in extract_evidence(REPORT.format(avail="No", driver="N/A"))["families"]
    assert extract_evidence(REPORT.format(avail="False", driver="999.99999.1") + "\x00\ufffd") is not None
    # before minor-version compatibility a release needs its own driver
    assert min_driver_for("10.2") == ("440.33", None)
    assert min_driver_for("12.8") == ("570.26", "525.60.13")


def test_torch_advice_lines_say_nothing_of_the_cause():
    advice = (
        "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might "
        "be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1\nCompile with `TORCH_USE_CUDA_DSA` to "
        "enable device-side assertions."
    )
    # a negative (CUDA graph capture misuse in the code) whose only CUDA words are the advice (h12029)
    assert top(ROWS["h12029"]["excerpt"]) == []
    assert top("RuntimeError: CUDA error: operation not permitted when stream is capturing\n" + advice) == []
    # the error above the advice still answers
    assert top("RuntimeError: CUDA error: no kernel image is available for execution on the device\n" + advice)[0] == (
        "no-kernel-image"
    )


# ------------------------------------------------------------------ read from Ollama's GPU probes (its source)


def test_a_cuda_status_article_is_not_given_to_another_status_in_the_same_words():
    # Ollama prints every driver status in one wording: 100 (no device) is not the unknown error 999
    line = 'msg="unable to load cuda driver library" error="cuda driver library init failure: {}"'
    assert "cuda-unknown-error-999" not in top(line.format(100))
    assert top(line.format(999))[0] == "cuda-unknown-error-999"
    assert top(line.format(802))[0] == "fabric-manager-missing"
    # cuDriverGetVersion / cudaDriverGetVersion failing with a status is that status
    assert top("cuDriverGetVersion failed: 34")[0] == "cuda-stub-libcuda"
    assert top("cudaDriverGetVersion failed: 35")[0] == "driver-too-old"


def test_the_quantization_article_needs_a_quantized_format_in_the_text():
    # TGI's "Cannot determine GPU compute capability" names a GPU and a capability, but no quantized format
    assert top("RuntimeError: Cannot determine GPU compute capability: foo") == []
    assert top("fp8 is not supported on this GPU with compute capability 7.5")[0] == "quant-needs-newer-gpu"
