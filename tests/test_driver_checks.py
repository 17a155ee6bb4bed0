"""Pass and fail fact cases for the driver family (BW2xx)."""

import pytest

from bwdoctor.checks import driver as d
from bwdoctor.testing import run_check, statuses

RTX5090 = {"index": 0, "name": "NVIDIA GeForce RTX 5090", "cc": [12, 0], "arch": "sm_120", "source": "pci"}
H100 = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "cc": [9, 0],
    "arch": "sm_90",
    "source": "nvml",
    "uuid": "GPU-ab79c719-a76a-56b7-98fd-efb5c0604705",
}
OPEN = {"version": "580.159.04", "flavour": "open"}
PROP_570 = {"version": "570.181", "flavour": "proprietary"}
MODS = [{"name": "nvidia_uvm"}, {"name": "nvidia"}]
PEERMEM = MODS + [{"name": "nvidia_peermem"}]


@pytest.mark.parametrize(
    "kernel,mods,status",
    [
        ("6.14.0-15-generic", PEERMEM, "fail"),
        ("6.18.44-fc-v657-gpu", PEERMEM, "fail"),
        ("6.8.0-60-generic", PEERMEM, "pass"),
        ("6.18.44-fc-v657-gpu", MODS, "pass"),
    ],
)
def test_peermem(kernel, mods, status):
    f = run_check(d.peermem_on_new_kernel, {"kernel_release": kernel, "kernel_modules": mods})
    assert statuses(f) == [status]
    if status == "fail":
        assert f[0].severity == "warning" and "NCCL_DMABUF_ENABLE=1" in f[0].message


def test_peermem_skips_without_modules():
    f = run_check(d.peermem_on_new_kernel, {"kernel_release": "6.14.0", "kernel_modules": {"$unavailable": "x"}})
    assert statuses(f) == ["skip"] and "x" in f[0].message


def test_open_module():
    assert statuses(run_check(d.blackwell_needs_open_module, {"gpus": [RTX5090], "nvidia_driver": PROP_570})) == [
        "fail"
    ]
    assert statuses(run_check(d.blackwell_needs_open_module, {"gpus": [RTX5090], "nvidia_driver": OPEN})) == ["pass"]
    assert statuses(run_check(d.blackwell_needs_open_module, {"gpus": [H100], "nvidia_driver": PROP_570})) == ["skip"]


def test_driver_minimum():
    old = {"version": "560.35.03", "flavour": "open"}
    f = run_check(d.driver_supports_blackwell, {"gpus": [RTX5090], "nvidia_driver": old})
    assert statuses(f) == ["fail"] and f[0].severity == "error"
    assert statuses(run_check(d.driver_supports_blackwell, {"gpus": [RTX5090], "nvidia_driver": OPEN})) == ["pass"]
    assert statuses(run_check(d.driver_supports_blackwell, {"gpus": [H100], "nvidia_driver": old})) == ["skip"]


@pytest.mark.parametrize(
    "cvd,status,severity",
    [
        (None, "pass", None),
        ("0", "pass", None),
        ("-1", "fail", "error"),
        ("", "fail", "error"),
        ("3", "fail", "error"),
        ("0,7", "fail", "warning"),
        ("GPU-ab79c719", "pass", None),
        ("GPU-deadbeef", "fail", "error"),
    ],
)
def test_gpus_hidden(cvd, status, severity):
    env = {} if cvd is None else {"CUDA_VISIBLE_DEVICES": cvd}
    f = run_check(d.gpus_hidden, {"gpus": [H100], "environment": env})
    assert statuses(f) == [status]
    if severity:
        assert f[0].severity == severity


def test_gpus_hidden_vs_none_present():
    none = {"$unavailable": "no NVIDIA GPU found (NVML library not found)"}
    f = run_check(d.gpus_hidden, {"gpus": none, "environment": {"CUDA_VISIBLE_DEVICES": "-1"}})
    assert statuses(f) == ["skip"] and "NVML library not found" in f[0].message
    f = run_check(
        d.nvidia_gpu_present, {"gpus": none, "nvidia_driver": {"$unavailable": "no NVIDIA kernel driver loaded"}}
    )
    assert statuses(f) == ["fail"] and "no NVIDIA kernel driver loaded" in f[0].message
    assert "NVML library not found" in f[0].message
    f = run_check(d.nvidia_gpu_present, {"gpus": [H100], "nvidia_driver": OPEN})
    assert statuses(f) == ["pass"]
