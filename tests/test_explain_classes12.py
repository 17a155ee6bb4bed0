"""Classes read again from the development rows (benchmarks/explain_eval, by id), answered by the rules alone (the
corpus model switched off, so that the rule is what is tested):

- a CUDA library that cannot be opened is a missing library, CUDA 11 or not; only an extension the text imports
  (``import selective_scan_cuda``, ``from vllm import cuda_utils``) makes an old major a build for another CUDA;
- argparse's ``unrecognized arguments: --flag`` quoted without the program's name is still a serve option that
  this release does not know; a positional argument it refuses is not;
- vLLM's ``Quantization scheme is not supported`` cut short in a title is still the GPU being too old for it.
"""

from __future__ import annotations

import pytest
from evalrows import ROWS

from bwdoctor import explain_model
from bwdoctor.explain import analyse_text
from bwdoctor.knowledge import load_all

ARTS = load_all()


@pytest.fixture(autouse=True)
def _rules_only(monkeypatch):
    monkeypatch.setitem(explain_model._MODEL, "m", None)


def top(text: str) -> list:
    return [m["slug"] for m in analyse_text(text, ARTS)["matches"]]


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
