"""Parsers of /proc, /sys and /etc text, on real captured input."""

from conftest import H100_ROOT
from hosttrees import PROPRIETARY_570

from bwdoctor.probes.parse import (
    parse_cpuinfo,
    parse_driver_version,
    parse_gpu_information,
    parse_meminfo,
    parse_os_release,
    parse_proc_modules,
)


def read(rel):
    return (H100_ROOT / rel).read_text()


def test_proc_modules_h100():
    mods = parse_proc_modules(read("proc/modules"))
    assert [m["name"] for m in mods] == ["nvidia_uvm", "nvidia"]
    assert mods[1]["size"] == 14299136 and mods[1]["state"] == "Live"


def test_proc_modules_garbage_lines_are_skipped():
    assert parse_proc_modules("x\n\n  \nnvidia_peermem 16384 0 - Live 0x0 (OE)\n")[0]["name"] == "nvidia_peermem"


def test_driver_version_open_and_proprietary():
    open_ = parse_driver_version(read("proc/driver/nvidia/version"))
    assert open_["version"] == "580.159.04" and open_["flavour"] == "open"
    prop = parse_driver_version(PROPRIETARY_570)
    assert prop["version"] == "570.181" and prop["flavour"] == "proprietary"
    assert parse_driver_version("garbage") is None and parse_driver_version("") is None


def test_gpu_information():
    info = parse_gpu_information(read("proc/driver/nvidia/gpus/0000:00:06.0/information"))
    assert info["Model"] == "NVIDIA H100 80GB HBM3"
    assert info["GPU UUID"].startswith("GPU-ab79c719")


def test_os_release_cpuinfo_meminfo():
    assert parse_os_release(read("etc/os-release"))["VERSION_ID"] == "24.04"
    cpu = parse_cpuinfo(read("proc/cpuinfo"))
    assert cpu["model"] == "Intel(R) Xeon(R) Processor" and "avx512f" in cpu["flags"]
    assert cpu["logical_cpus"] == 1  # the capture keeps the first processor block only
    mem = parse_meminfo(read("proc/meminfo"))
    assert mem["MemTotal"] == 131981020 * 1024
