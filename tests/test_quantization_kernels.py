"""BW307: a --quantization method needs its kernel family's code for the GPU (read per unit, on request)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from bwdoctor.probes.kernelfams import family_entries, requested_quantizations

CUDA = Path(__file__).parent / "fixtures" / "cuda"


def _venv_with_vllm(tmp_path: Path) -> Path:
    """A real venv whose site-packages holds a 'vllm' distribution: vllm/_C.abi3.so is the nvcc-built two-unit
    library (marlin kernels for sm_80 only, attention kernels for sm_120 only), listed in its RECORD."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "vllm").mkdir()
    shutil.copy(CUDA / "units_80_120.so", site / "vllm" / "_C.abi3.so")
    (site / "vllm" / "__init__.py").write_text("")
    info = site / "vllm-0.15.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.15.1\n")
    (info / "RECORD").write_text(
        "vllm/__init__.py,,\nvllm/_C.abi3.so,,\nvllm-0.15.1.dist-info/METADATA,,\nvllm-0.15.1.dist-info/RECORD,,\n"
    )
    return venv / "bin" / "python"


def _serve(tmp_path: Path, quant: str) -> Path:
    script = tmp_path / "serve.sh"
    script.write_text(f"#!/bin/sh\nvllm serve /models/m --quantization {quant} --max-model-len 4096\n")
    return script


def _bw307(python: Path, script: Path, target: str) -> tuple:
    res = run_cli(
        "check", "--python", str(python), "--config", str(script), "--target", target, "--select", "BW307",
        "--format", "json",
    )  # fmt: skip
    doc = json.loads(res.stdout)
    return res.returncode, [f for f in doc["findings"] if f["id"] == "BW307"]


def test_marlin_without_the_gpu_fails_although_the_file_has_code_for_it(tmp_path):
    py = _venv_with_vllm(tmp_path)
    rc, found = _bw307(py, _serve(tmp_path, "gptq_marlin"), "sm_120")
    assert rc == 1 and found[0]["status"] == "fail"
    assert "marlin kernels" in found[0]["message"] and "sm_120" in found[0]["message"]
    # the same file through `cubins`: native for sm_120 (the union hides the marlin unit)
    res = run_cli("cubins", str(CUDA / "units_80_120.so"), "--target", "sm_120", "--format", "json")
    assert json.loads(res.stdout)["files"][0]["verdicts"]["sm_120"]["status"] == "native"


def test_marlin_on_its_own_gpu_passes(tmp_path):
    py = _venv_with_vllm(tmp_path)
    rc, found = _bw307(py, _serve(tmp_path, "awq_marlin"), "sm_80")
    assert rc == 0 and found[0]["status"] == "pass" and "native" in found[0]["message"]


def test_a_method_without_a_known_family_reads_nothing(tmp_path):
    py = _venv_with_vllm(tmp_path)
    rc, found = _bw307(py, _serve(tmp_path, "bitsandbytes"), "sm_120")
    assert rc in (0, 3) and found[0]["status"] == "skip"


def test_requested_quantizations_from_argv_tokens():
    fact = {
        "configs": [
            {"path": "a.sh", "argv": [["--quantization", 2, 1], ["GPTQ_Marlin", 2, 16]]},
            {"path": "b.yaml", "argv": [["-q=fp8", 3, 1]]},
            {"path": "c", "argv": [["--quantization", 1, 1], ["--dtype", 1, 16]]},  # no value
        ]
    }
    assert requested_quantizations(fact) == {"gptq_marlin": ["a.sh:2:1"], "fp8": ["b.yaml:3:1"]}


@pytest.mark.parametrize("wanted", [["marlin"], ["marlin", "paged-attention"]])
def test_family_entries_of_the_real_two_unit_library(wanted):
    got = family_entries(str(CUDA / "units_80_120.so"), wanted)
    assert got["marlin"] == {"kernels": 1, "entries": [["fatbin", "sm_80"]]}
    if "paged-attention" in wanted:
        assert got["paged-attention"]["entries"] == [["fatbin", "sm_120"]]
