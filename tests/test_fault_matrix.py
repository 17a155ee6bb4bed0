"""Every fault-matrix case holds: valid output, no traceback, a documented exit code, in time."""

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import faults
import pytest


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def matrix(work) -> dict[str, tuple]:
    """The cases by name, prepared once: no case's files are rewritten while another case runs."""
    return {c[0]: c for c in faults.cases(work)}


@pytest.fixture(scope="module")
def hanging(matrix) -> Iterator[dict[str, Future]]:
    """The cases where a tool or library hangs, started side by side as soon as the module starts.

    Each spends its time waiting out a probe's budget in its own process (and is still timed against its own
    budget by run_case), so running them next to each other and next to the quick cases keeps every assertion
    and takes their waits off the suite's wall time."""
    slow = [c for name, c in matrix.items() if "hang" in name]
    with ThreadPoolExecutor(max_workers=max(1, len(slow))) as pool:
        yield {c[0]: pool.submit(faults.run_case, c) for c in slow}


def case_names():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        return [c[0] for c in faults.cases(Path(d))]


@pytest.mark.parametrize("name", case_names())
def test_fault_case(matrix, hanging, name):
    r = hanging[name].result() if name in hanging else faults.run_case(matrix[name])
    assert not r["problems"], r


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to switch to a plain user")
def test_as_a_plain_user(work):
    r = faults.run_case(("as nobody", ["check"], {"HOME": "/nonexistent"}, {0, 1}, 15, "json"), as_user=65534)
    assert not r["problems"], r
