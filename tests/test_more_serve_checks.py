"""Serve-config checks that no other test names (BW606-BW610, BW612): a pass and a fail case each.

The serve_configs fact comes from the real probe reading a config file (and a local model's config.json
under the inspected root); the GPU facts follow the H100 capture (tests/fixtures/roots/h100-box). Checks are
looked up by id, so a renamed function does not hide a missing check.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bwdoctor import registry
from bwdoctor.context import Context
from bwdoctor.model import Finding
from bwdoctor.probes.serve import serve_configs
from bwdoctor.testing import run_check

CAPACITY = Path(__file__).parent / "fixtures" / "capacity"
CHECKS = registry.load(no_plugins=True).checks
H100 = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "cc": [9, 0],
    "arch": "sm_90",
    "source": "nvml",
    "mem_total": 85520809984,
    "pci_bus_id": "00000000:00:06.0",
    "uuid": None,
}
NO_GPU = {"$unavailable": "no NVIDIA GPU found"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A machine tree holding a real model config at /models/ds32 (DeepSeek-R1-Distill-Qwen-32B, bf16)."""
    model = tmp_path / "models" / "ds32"
    model.mkdir(parents=True)
    shutil.copy(CAPACITY / "deepseek-r1-distill-qwen-32b" / "config.json", model / "config.json")
    return tmp_path


def probe(root: Path, text: str, name: str = "serve.sh") -> dict:
    path = root / name
    path.write_text(text)
    return serve_configs(Context(root=root, env={}, configs=[str(path)]))


def run(cid: str, fact: dict, targets: list[str], gpus: Any, vllm: str = "0.15.1") -> list[Finding]:
    facts: dict[str, Any] = {
        "serve_configs": fact,
        "distributions": [{"name": "vllm", "version": vllm}],
        "targets": targets,
        "gpus": gpus,
    }
    found = run_check(CHECKS[cid].func, facts)
    assert found and all(f.id == cid for f in found)
    return found


def only(found: list[Finding], status: str) -> Finding:
    assert [f.status for f in found] == [status], [(f.status, f.message) for f in found]
    return found[0]


def test_bw606_kv_cache_too_small_for_max_model_len(root: Path) -> None:
    # 61 GiB of bf16 weights on one 80 GB H100 leave room for ~28k tokens, not one 131,072-token sequence
    f = only(run("BW606", probe(root, "vllm serve /models/ds32 --max-model-len 131072\n"), ["sm_90"], [H100]), "fail")
    assert f.severity == "error" and f.kb == "kv-cache-too-small"
    assert "less than one --max-model-len 131,072 sequence" in f.message
    assert f.evidence["max_model_len"] == 131072 and 0 < f.evidence["kv_tokens"] < 131072
    assert f.location is not None and (Path(f.location.path).name, f.location.line) == ("serve.sh", 1)
    assert f.location.column == len("vllm serve /models/ds32 --max-model-len ") + 1  # at the value a person edits

    f = only(run("BW606", probe(root, "vllm serve /models/ds32 --max-model-len 8192\n"), ["sm_90"], [H100]), "pass")
    assert f.severity == "error"


def test_bw607_bitsandbytes_on_sm120(root: Path) -> None:
    fact = probe(root, "vllm serve m --quantization bitsandbytes\n")
    f = only(run("BW607", fact, ["sm_120"], NO_GPU), "fail")
    assert f.severity == "error" and f.kb == "bitsandbytes-sm120"
    assert "garbage output" in f.message and "sm_120" in f.message
    assert f.location is not None and f.location.column == len("vllm serve m --quantization ") + 1
    only(run("BW607", fact, ["sm_90"], [H100]), "pass")  # the same flag on Hopper is fine


def test_bw608_flashinfer_on_sm120_with_0151(root: Path) -> None:
    fact = probe(root, "vllm serve m --attention-backend FLASHINFER\n")
    f = only(run("BW608", fact, ["sm_120"], NO_GPU), "fail")
    assert f.severity == "warning" and f.kb == "flashinfer-sm120"
    assert "vLLM 0.15.1" in f.message and "TRITON_ATTN" in f.message
    assert f.evidence["vllm"] == "0.15.1"
    only(run("BW608", fact, ["sm_90"], [H100]), "pass")


def test_bw609_fa3_forced_on_blackwell(root: Path) -> None:
    fact = probe(root, "VLLM_FLASH_ATTN_VERSION=3 vllm serve m\n")
    f = only(run("BW609", fact, ["sm_120"], NO_GPU, vllm="0.14.1"), "fail")
    assert f.severity == "error" and f.kb == "fa3-blackwell"
    assert "Hopper-only" in f.message and "FlashAttention version not detected" in f.message
    only(run("BW609", fact, ["sm_90"], [H100], vllm="0.14.1"), "pass")  # FA3 is Hopper's own


def test_bw610_tensor_parallel_larger_than_gpus(root: Path) -> None:
    f = only(run("BW610", probe(root, "vllm serve m -tp 2\n"), ["sm_90"], [H100]), "fail")
    assert f.severity == "error" and f.kb == "tp-exceeds-gpus"
    assert "needs 2 GPUs; this machine has 1" in f.message
    assert f.location is not None and f.location.column == len("vllm serve m -tp ") + 1  # at the value
    only(run("BW610", probe(root, "vllm serve m -tp 1\n"), ["sm_90"], [H100]), "pass")
    f = only(run("BW610", probe(root, "vllm serve m -tp 2\n"), ["sm_90"], NO_GPU), "skip")
    assert "GPU count unknown" in f.message


def test_bw612_unreadable_config_and_include(root: Path) -> None:
    f = only(run("BW612", probe(root, "vllm serve m --config missing.yaml\n"), ["sm_90"], [H100]), "fail")
    assert f.severity == "warning" and f.kb == "unknown-serve-option"
    assert "--config missing.yaml could not be read" in f.message
    assert Path(f.evidence["config"]).name == "serve.sh"

    f = only(run("BW612", probe(root, "services: [\n", "docker-compose.yml"), ["sm_90"], [H100]), "fail")
    assert "invalid YAML" in f.message and Path(f.evidence["config"]).name == "docker-compose.yml"

    only(run("BW612", probe(root, "vllm serve m --max-model-len 4096\n"), ["sm_90"], [H100]), "pass")
