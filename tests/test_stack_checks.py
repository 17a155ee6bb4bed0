"""Pass and fail fact cases for the stack checks (pins, runtimes, NCCL, bitsandbytes, patches, multi-GPU, live).

Requires-Dist strings are the real ones of the named releases (vllm 0.11.0 METADATA: torch==2.8.0;
torchvision 0.23.0: torch==2.8.0); NVML shapes follow cmd/nvml.json of the H100 capture."""

import json
from pathlib import Path

import pytest

from bwdoctor.checks import live, multigpu, packages, stack
from bwdoctor.probes import pystack
from bwdoctor.testing import run_check, statuses

TORCH_291 = {"version": "2.9.1", "cuda": "12.8", "variant": "cu128", "hip": None}
TORCH_280 = {"version": "2.8.0+cu128", "cuda": "12.8", "variant": "cu128", "hip": None}
VLLM_011 = {
    "name": "vllm",
    "version": "0.11.0",
    "requires": ["torch==2.8.0", "torchaudio==2.8.0", 'xformers==0.0.32.post1; platform_system == "Linux"'],
}
TV_023 = {"name": "torchvision", "version": "0.23.0", "requires": ["numpy", "torch==2.8.0", "pillow!=8.3.*,>=5.3.0"]}
TV_024 = {"name": "torchvision", "version": "0.24.1", "requires": ["numpy", "torch==2.9.1", "pillow!=8.3.*,>=5.3.0"]}


def test_vllm_pin_conflict_names_vllm():
    f = run_check(stack.torch_pin_conflict, {"distributions": [VLLM_011], "torch_build": TORCH_291})
    assert statuses(f) == ["fail"] and f[0].evidence["distribution"] == "vllm"
    assert "use_existing_torch.py" in f[0].evidence["fix"]
    f = run_check(stack.torch_pin_conflict, {"distributions": [VLLM_011], "torch_build": TORCH_280})
    assert statuses(f) == ["pass"]  # a local tag satisfies the plain pin (PEP 440)


def test_torchvision_pairs():
    f = run_check(stack.torchvision_matches_torch, {"distributions": [TV_023], "torch_build": TORCH_291})
    assert statuses(f) == ["fail"] and f[0].evidence["import"] == "torchvision"
    assert f[0].evidence["fix"].startswith("pip install torchvision==0.24.*")
    assert statuses(
        run_check(stack.torchvision_matches_torch, {"distributions": [TV_024], "torch_build": TORCH_291})
    ) == ["pass"]


def test_driver_vs_runtime():
    rt = [{"source": "torch", "distribution": "torch", "cuda": "12.8", "version": "2.9.1"}]
    f = run_check(
        stack.driver_supports_cuda_runtime,
        {"cuda_runtimes": rt, "nvidia_driver": {"version": "520.61.05"}, "nvml": {"$unavailable": "x"}},
    )
    assert statuses(f) == ["fail"] and f[0].severity == "error" and f[0].evidence["required"] == "525.60.13"
    f = run_check(
        stack.driver_supports_cuda_runtime,
        {"cuda_runtimes": rt, "nvidia_driver": {"version": "550.54.15"}, "nvml": {"$unavailable": "x"}},
    )
    assert statuses(f) == ["fail"] and f[0].severity == "warning"
    f = run_check(
        stack.driver_supports_cuda_runtime,
        {"cuda_runtimes": rt, "nvidia_driver": {"$unavailable": "x"}, "nvml": {"driver": "580.159.04"}},
    )
    assert statuses(f) == ["pass"]
    cu13 = [{"source": "torch", "distribution": "torch", "cuda": "13.0", "version": "2.11.0+cu130"}]
    f = run_check(
        stack.driver_supports_cuda_runtime,
        {"cuda_runtimes": cu13, "nvidia_driver": {"version": "575.57.08"}, "nvml": {"$unavailable": "x"}},
    )
    assert f[0].severity == "error"  # CUDA 13 has no minor-version compatibility below 580


def test_cpu_torch_under_vllm():
    cpu = {"version": "2.13.0+cpu", "cuda": None, "variant": "cpu", "hip": None}
    f = run_check(
        stack.torch_is_cuda_build, {"torch_build": cpu, "gpus": {"$unavailable": "none"}, "distributions": [VLLM_011]}
    )
    assert statuses(f) == ["fail"]
    f = run_check(
        stack.torch_is_cuda_build, {"torch_build": cpu, "gpus": {"$unavailable": "none"}, "distributions": []}
    )
    assert statuses(f) == ["skip"]


@pytest.mark.parametrize(
    "version,gpus,status,severity",
    [
        ("2.21.5", 1, "fail", "warning"),
        ("2.21.5", 2, "fail", "error"),
        ("2.26.2", 2, "pass", None),
        ("2.27.3", 1, "pass", None),
    ],
)
def test_nccl(version, gpus, status, severity):
    f = run_check(
        packages.nccl_supports_blackwell,
        {
            "targets": ["sm_120"],
            "distributions": [{"name": "nvidia-nccl-cu12", "version": version}],
            "gpus": [{"cc": [12, 0]}] * gpus,
        },
    )
    assert statuses(f) == [status]
    if severity:
        assert f[0].severity == severity
    assert statuses(
        run_check(
            packages.nccl_supports_blackwell,
            {"targets": ["sm_90"], "distributions": [{"name": "nvidia-nccl-cu12", "version": version}], "gpus": []},
        )
    ) == ["skip"]


def test_bitsandbytes():
    bnb = lambda v: [{"name": "bitsandbytes", "version": v}]
    base = {"targets": ["sm_120"], "torch_build": {"cuda": "12.8"}}
    f = run_check(
        packages.bitsandbytes_supports_blackwell,
        dict(base, distributions=bnb("0.45.0"), native_libraries={"bitsandbytes": []}),
    )
    assert statuses(f) == ["fail"]
    f = run_check(
        packages.bitsandbytes_supports_blackwell,
        dict(base, distributions=bnb("0.45.5"), native_libraries={"bitsandbytes": ["libbitsandbytes_cuda126.so"]}),
    )
    assert statuses(f) == ["fail"] and "libbitsandbytes_cuda128" in f[0].message
    f = run_check(
        packages.bitsandbytes_supports_blackwell,
        dict(base, distributions=bnb("0.45.5"), native_libraries={"bitsandbytes": ["libbitsandbytes_cuda128.so"]}),
    )
    assert statuses(f) == ["pass"]


def test_duplicate_torch():
    d = [{"name": "torch", "version": "2.9.1", "location": "/a", "shadowed": [{"version": "2.8.0", "dist_info": "/b"}]}]
    assert statuses(run_check(packages.single_copy, {"distributions": d})) == ["fail"]
    assert statuses(run_check(packages.single_copy, {"distributions": [dict(d[0], shadowed=[])]})) == ["pass"]


def make_dist(tmp_path, files):
    """A real installed-distribution layout: package files plus a .dist-info with a RECORD of their hashes."""
    import base64
    import hashlib

    site = tmp_path / "site"
    di = site / "vllm-0.11.0.dist-info"
    di.mkdir(parents=True)
    rows = []
    for rel, body in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        rows.append(f"{rel},sha256={digest},{len(body)}")
    rows.append("vllm-0.11.0.dist-info/RECORD,,")
    (di / "RECORD").write_text("\n".join(rows) + "\n")
    return {"name": "vllm", "version": "0.11.0", "location": str(site), "dist_info": str(di)}


def test_record_drift_finds_patched_and_missing_files(tmp_path):
    import os
    import time

    dist = make_dist(tmp_path, {"vllm/a.py": b"x = 1\n", "vllm/b.py": b"y = 2\n", "vllm/c.py": b"z = 3\n"})
    site = Path(dist["location"])
    (site / "vllm/a.py").write_bytes(b"x = 1  # patched by hand\n")  # size changes
    later = time.time() + 10
    (site / "vllm/b.py").write_bytes(b"y = 9\n")  # same size, newer, different hash
    os.utime(site / "vllm/b.py", (later, later))
    (site / "vllm/c.py").unlink()
    r = pystack.record_drift_for(dist)
    assert r["modified"] == ["vllm/a.py", "vllm/b.py"] and r["missing"] == ["vllm/c.py"]
    f = run_check(packages.no_local_patches, {"record_drift": [r]})
    assert statuses(f) == ["fail"] and "reinstall" in f[0].message
    clean = pystack.record_drift_for(make_dist(tmp_path / "clean", {"vllm/a.py": b"x = 1\n"}))
    assert statuses(run_check(packages.no_local_patches, {"record_drift": [clean]})) == ["pass"]


def test_torch_version_py_parsing():
    text = (Path(__file__).parent / "fixtures/roots/h100-box/cmd/torch-version.py").read_text()
    info = pystack.parse_torch_version_py(text)
    assert info["__version__"] == "2.11.0+cu130" and info["cuda"] == "13.0" and info["hip"] is None
    assert pystack.variant_of("2.11.0+cu130", "13.0") == "cu130"
    assert pystack.variant_of("2.9.1", "12.8") == "cu128"
    assert pystack.variant_of("2.13.0+cpu", None) == "cpu"


PAIR_PCIE = {"a": 0, "b": 1, "p2p_read": "OK", "topology": "PCIe host bridge", "nvlink": False}
PAIR_NOP2P = dict(PAIR_PCIE, p2p_read="chipset not supported")
PAIR_NVL = dict(PAIR_PCIE, nvlink=True)
RTX = {"name": "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "cc": [12, 0]}
H100 = {"name": "NVIDIA H100 80GB HBM3", "cc": [9, 0]}


def test_iommu_and_p2p():
    nvml = {"gpus": [], "pairs": [PAIR_PCIE]}
    f = run_check(
        multigpu.p2p_not_behind_iommu, {"nvml": nvml, "environment": {}, "kernel_cmdline": ["quiet", "intel_iommu=on"]}
    )
    assert statuses(f) == ["fail"] and "iommu=pt" in f[0].evidence["fix"]
    f = run_check(
        multigpu.p2p_not_behind_iommu,
        {"nvml": nvml, "environment": {}, "kernel_cmdline": ["intel_iommu=on", "iommu=pt"]},
    )
    assert statuses(f) == ["pass"]
    f = run_check(
        multigpu.p2p_not_behind_iommu,
        {"nvml": {"gpus": [], "pairs": [PAIR_NOP2P]}, "environment": {}, "kernel_cmdline": []},
    )
    assert statuses(f) == ["fail"] and f[0].severity == "info"
    f = run_check(multigpu.p2p_not_behind_iommu, {"nvml": {"gpus": []}, "environment": {}, "kernel_cmdline": []})
    assert statuses(f) == ["skip"]


def test_custom_allreduce():
    f = run_check(multigpu.custom_allreduce_safe, {"gpus": [RTX, RTX], "nvml": {"pairs": [PAIR_PCIE]}})
    assert statuses(f) == ["fail"] and "--disable-custom-all-reduce" in f[0].evidence["fix"]
    f = run_check(multigpu.custom_allreduce_safe, {"gpus": [H100, H100], "nvml": {"pairs": [PAIR_NVL]}})
    assert statuses(f) == ["pass"]
    f = run_check(multigpu.custom_allreduce_safe, {"gpus": [H100, H100], "nvml": {"pairs": [PAIR_NOP2P]}})
    assert statuses(f) == ["fail"]


def test_rebar():
    h100 = json.loads((Path(__file__).parent / "fixtures/roots/h100-box/cmd/nvml.json").read_text())
    for i, g in enumerate(h100["gpus"]):
        g["index"] = i
    assert statuses(run_check(multigpu.resizable_bar_enabled, {"nvml": h100})) == ["pass"]
    h100["gpus"][0]["bar1_total"] = 256 << 20
    f = run_check(multigpu.resizable_bar_enabled, {"nvml": h100})
    assert statuses(f) == ["fail"] and "256 MiB" in f[0].message


def test_nccl_env():
    f = run_check(
        multigpu.nccl_env_sane,
        {"environment": {"NCCL_P2P_LEVEL": "FAST", "NCCL_DMABUF_ENABLE": "yes"}, "nvml": {"$unavailable": "x"}},
    )
    assert sorted(x.severity for x in f) == ["error", "warning"]
    f = run_check(multigpu.nccl_env_sane, {"environment": {"NCCL_P2P_DISABLE": "1"}, "nvml": {"pairs": [PAIR_NVL]}})
    assert statuses(f) == ["fail"]
    assert statuses(
        run_check(multigpu.nccl_env_sane, {"environment": {"NCCL_P2P_LEVEL": "SYS"}, "nvml": {"pairs": []}})
    ) == ["pass"]


def test_live_verdicts():
    ok = {
        "status": "ok",
        "torch": "2.11.0+cu130",
        "devices": [{"index": 0, "name": "H100", "cc": [9, 0], "launch": "ok"}],
    }
    assert statuses(run_check(live.live_kernel_launch, {"live_torch": ok, "gpus": [H100]})) == ["pass"]
    bad = dict(
        ok,
        devices=[
            {
                "index": 0,
                "name": "RTX 5090",
                "launch": "failed",
                "error": "CUDA error: no kernel image is available for execution on the device",
            }
        ],
    )
    f = run_check(live.live_kernel_launch, {"live_torch": bad, "gpus": [RTX]})
    assert statuses(f) == ["fail"] and "no kernel image" in f[0].message
    f = run_check(
        live.live_kernel_launch, {"live_torch": {"status": "timeout", "error": "timed out after 90 s"}, "gpus": [RTX]}
    )
    assert statuses(f) == ["fail"]
    f = run_check(
        live.live_kernel_launch, {"live_torch": dict(ok, devices=[], device_count=0, available=False), "gpus": [RTX]}
    )
    assert statuses(f) == ["fail"] and "sees no CUDA device" in f[0].message
    f = run_check(live.live_kernel_launch, {"live_torch": {"$unavailable": "live probe not requested"}, "gpus": []})
    assert statuses(f) == ["skip"]
