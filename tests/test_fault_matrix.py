"""Every fault-matrix case holds: valid output, no traceback, a documented exit code, in time."""
import os
import shutil

import pytest

import faults


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


def case_names():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        return [c[0] for c in faults.cases(Path(d))]


@pytest.mark.parametrize("name", case_names())
def test_fault_case(work, name):
    case = next(c for c in faults.cases(work) if c[0] == name)
    r = faults.run_case(case)
    assert not r["problems"], r


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to switch to a plain user")
def test_as_a_plain_user(work):
    r = faults.run_case(("as nobody", ["check"], {"HOME": "/nonexistent"}, {0, 1}, 15, "json"), as_user=65534)
    assert not r["problems"], r
