"""Classes read from real reports (benchmarks/explain_eval rows, by id): what a text says beyond its error line.

- A CUDA library of one major that cannot be opened: missing-library first when no other CUDA major is named,
  cuda-major-mismatch first when one is (a torch +cuXYZ, a "CUDA 11.8") or the library is of CUDA 11 or older.
- An out-of-memory error while weights are loaded or moved to the GPU: the model does not fit.
- NCCL naming the CUDA call's own failure ("Cuda failure 'out of memory'"): that failure, not the NCCL release.
- torch 1.x's split CUDA libraries (libtorch_cuda_cu.so): an extension built against an older torch.
"""

from __future__ import annotations

import pytest
from evalrows import ROWS

from bwdoctor.explain import analyse_text, oom_phase
from bwdoctor.knowledge import load_all

ARTS = load_all()


def top(text: str) -> list:
    return [m["slug"] for m in analyse_text(text, ARTS)["matches"]]


@pytest.mark.parametrize("rid", ["h7057", "h7204", "h7056"])
def test_a_missing_cuda_library_alone_is_a_missing_library(rid):
    assert top(ROWS[rid]["excerpt"])[:2] == ["missing-library", "cuda-major-mismatch"]


def test_a_second_cuda_major_or_an_old_one_is_a_mismatch():
    bare = ROWS["h7057"]["excerpt"]
    assert top(bare + "\ntorch 2.4.0+cu118")[0] == "cuda-major-mismatch"
    assert top(bare + "\nnvcc: Cuda compilation tools, release 11.8, V11.8.89\nCUDA Version: 11.8")[0] == (
        "cuda-major-mismatch"
    )
    assert top(bare + "\ntorch 2.9.1+cu128")[0] == "missing-library"  # the same major: nothing mismatches
    # a CUDA 11 library alone is missing; asked for by an extension the text imports, that extension was built
    # for CUDA 11, which no current torch ships
    assert top(ROWS["h7205"]["excerpt"])[0] == "missing-library"
    assert top(ROWS["h077"]["excerpt"])[0] == "cuda-major-mismatch"
    assert top("from vllm import cuda_utils\n" + ROWS["h7205"]["excerpt"])[0] == "cuda-major-mismatch"
    assert top("I cannot import torch\n" + ROWS["h7205"]["excerpt"])[0] == "missing-library"


def test_an_oom_while_weights_move_to_the_gpu_is_a_model_that_does_not_fit():
    text = ROWS["h7187"]["excerpt"]
    assert oom_phase(text) == "startup" and top(text)[0] == "weights-do-not-fit"
    # the same allocator line without the loading frames stays a run's OOM
    assert top(text.splitlines()[-1])[0] == "runtime-oom"


def test_nccl_naming_an_oom_is_an_oom_at_start():
    text = ROWS["h7039"]["excerpt"]
    assert top(text)[0] == "startup-oom"
    no_kernel = text.replace("Cuda failure 'out of memory'", "Cuda failure 'no kernel image is available'")
    assert top(no_kernel)[0] == "nccl-too-old-blackwell"


def test_torch_1x_split_libraries_mean_an_extension_built_for_an_older_torch():
    assert top(ROWS["h7141"]["excerpt"])[0] == "undefined-symbol"
    assert top(ROWS["h3018"]["excerpt"])[0] == "cpu-torch-cuda-extension"  # libtorch_cuda.so itself: a CPU torch


def test_an_oom_in_an_engine_issue_title_is_read_as_the_engine_start_unless_requests_are_named():
    """vLLM's and SGLang's issue templates ("[Bug]:", "[CI Failure]:") say the OOM is an engine's: a bare one is its
    start; "across requests" or "under load" say the run; "when loading" says the start even beside context words."""
    assert oom_phase(ROWS["h8046"]["excerpt"]) == "startup" and top(ROWS["h8046"]["excerpt"])[0] == "startup-oom"
    assert oom_phase(ROWS["h8045"]["excerpt"]) == "runtime" and top(ROWS["h8045"]["excerpt"])[0] == "runtime-oom"
    assert oom_phase(ROWS["h6098"]["excerpt"]) == "startup"
    assert oom_phase("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB") == "runtime"


@pytest.mark.parametrize("rid", ["h8021", "h8057", "h8059", "h8175", "h9100"])
def test_serving_code_and_request_errors_get_no_article(rid):
    """A Ray bundle vLLM refuses, a model's attention type, an llm-compressor recipe, TGI's head count across shards,
    llama.cpp's request longer than the context: errors of the code, the model or the request."""
    assert ROWS[rid]["label"] is None and top(ROWS[rid]["excerpt"]) == []
