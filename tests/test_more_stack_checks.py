"""Stack check that no other test names (BW503 nvcc-matches-torch-cuda): pass, fail and skip.

The cuda_toolkits fact comes from the real probe running nvcc stand-ins that print the captured output of
real nvcc releases (tests/fixtures/toolkit); torch_build has the shape the torch_build probe gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_toolkit import toolkit_env

from bwdoctor import registry
from bwdoctor.context import Context
from bwdoctor.model import Finding
from bwdoctor.probes import toolkit
from bwdoctor.testing import run_check

CHECKS = registry.load(no_plugins=True).checks
TORCH_291_CU128 = {
    "version": "2.9.1",
    "location": "/venv/lib/python3.12/site-packages",
    "requires": [],
    "cuda": "12.8",
    "hip": None,
    "git_version": None,
    "variant": "cu128",
    "has_libtorch_cuda": True,
    "shadowed": [],
}
TORCH_291_CPU = dict(TORCH_291_CU128, version="2.9.1+cpu", cuda=None, variant="cpu", has_libtorch_cuda=False)


@pytest.fixture(autouse=True)
def no_system_toolkits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the toolkits a test builds: this machine's own /usr/local/cuda* stay out."""
    monkeypatch.setattr(toolkit, "STANDARD_NVCC", ())


def nvcc_fact(tmp_path: Path, release: str) -> dict:
    bindir = toolkit_env(tmp_path, release)
    fact = toolkit.cuda_toolkits(Context(env={"PATH": f"{bindir}:/usr/bin:/bin"}))
    assert fact["used"] == str(bindir / "nvcc")
    return fact


def run(facts: dict[str, Any]) -> list[Finding]:
    found = run_check(CHECKS["BW503"].func, facts)
    assert len(found) == 1 and found[0].id == "BW503"
    return found


def test_bw503_nvcc_of_another_cuda_major_than_torch(tmp_path: Path) -> None:
    fact = nvcc_fact(tmp_path, "13.0.88")
    (f,) = run({"cuda_toolkits": fact, "torch_build": TORCH_291_CU128})
    assert (f.status, f.severity, f.kb) == ("fail", "error", "cuda-major-mismatch")
    assert "is CUDA 13.0 but torch 2.9.1 was built with CUDA 12.8" in f.message
    assert "mismatches the version that was used to compile PyTorch" in f.message
    assert f.evidence["nvcc_version"] == "13.0" and f.evidence["torch_cuda"] == "12.8"
    assert "CUDA 12.x toolkit" in f.evidence["fix"]


def test_bw503_same_major_passes_and_cpu_torch_skips(tmp_path: Path) -> None:
    fact = nvcc_fact(tmp_path, "12.6.85")  # an older minor of the same major builds extensions fine
    (f,) = run({"cuda_toolkits": fact, "torch_build": TORCH_291_CU128})
    assert f.status == "pass" and "nvcc CUDA 12.6 and torch CUDA 12.8 share a major version" in f.message
    (f,) = run({"cuda_toolkits": fact, "torch_build": TORCH_291_CPU})
    assert f.status == "skip" and "is not a CUDA build" in f.message
    (f,) = run({"cuda_toolkits": {"toolkits": [], "path_order": [], "used": None}, "torch_build": TORCH_291_CU128})
    assert f.status == "skip" and "no usable nvcc" in f.message
