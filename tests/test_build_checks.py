"""Pre-build checks: fact cases, and the real CLI gate on the seeds' scenarios."""

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from test_toolkit import toolkit_env

from bwdoctor.checks import build
from bwdoctor.context import Context
from bwdoctor.probes.build import source_tree
from bwdoctor.testing import run_check, statuses

SRC = Path(__file__).parent / "fixtures" / "vllm-src"
GIB = 1 << 30
BASE = {
    "max_jobs": None,
    "nvcc_threads": None,
    "torch_cuda_arch_list": None,
    "cmake_cuda_architectures": None,
    "cores": 16,
    "mem_total": 128 * GIB,
    "disk": {},
    "vllm_flash_attn_version": None,
}


def env(**kw):
    return dict(BASE, **kw)


@pytest.mark.parametrize(
    "value,status,severity",
    [
        ("8.0;8.6;8.9;9.0", "fail", "error"),  # seed 000/003: an arch list written before Blackwell
        ("9.0+PTX", "fail", "warning"),
        ("12.0", "pass", None),
        ("8.0 12.0a", "pass", None),
        ("sm_120", "fail", "error"),
    ],
)
def test_arch_list(value, status, severity):
    f = run_check(build.arch_list_covers_target, {"targets": ["sm_120"], "build_env": env(torch_cuda_arch_list=value)})
    assert statuses(f) == [status], f[0].message
    if severity:
        assert f[0].severity == severity


def test_arch_list_unset_and_cmake():
    f = run_check(build.arch_list_covers_target, {"targets": ["sm_120"], "build_env": env()})
    assert statuses(f) == ["fail"] and f[0].severity == "info" and "12.0" in f[0].evidence["fix"]
    f = run_check(
        build.arch_list_covers_target, {"targets": ["sm_120"], "build_env": env(cmake_cuda_architectures="90a;100")}
    )
    assert statuses(f) == ["fail"]
    f = run_check(
        build.arch_list_covers_target, {"targets": ["sm_120"], "build_env": env(cmake_cuda_architectures="native")}
    )
    assert statuses(f) == ["pass"]


def test_arch_suffix():
    f = run_check(
        build.arch_suffix_fits_targets, {"targets": ["sm_121"], "build_env": env(torch_cuda_arch_list="12.0a")}
    )
    assert statuses(f) == ["fail"] and "12.0f" in f[0].evidence["fix"]
    f = run_check(
        build.arch_suffix_fits_targets, {"targets": ["sm_120"], "build_env": env(torch_cuda_arch_list="12.0")}
    )
    assert f[0].severity == "info"
    assert statuses(
        run_check(
            build.arch_suffix_fits_targets, {"targets": ["sm_120"], "build_env": env(torch_cuda_arch_list="12.0f")}
        )
    ) == ["pass"]


def test_fa3():
    f = run_check(build.no_fa3_on_blackwell, {"targets": ["sm_120"], "build_env": env(vllm_flash_attn_version="3")})
    assert statuses(f) == ["fail"]
    assert statuses(
        run_check(build.no_fa3_on_blackwell, {"targets": ["sm_90"], "build_env": env(vllm_flash_attn_version="3")})
    ) == ["pass"]


@pytest.mark.parametrize(
    "jobs,threads,mem,cores,status",
    [
        (42, None, 24, 32, "fail"),  # seed 004: MAX_JOBS=42 on a 24 GiB machine
        (None, None, 24, 16, "fail"),  # unset = every core
        (4, None, 24, 16, "pass"),
        (16, 2, 64, 32, "pass"),
        (16, 4, 24, 32, "fail"),
    ],
)
def test_build_jobs(jobs, threads, mem, cores, status):
    f = run_check(
        build.build_jobs_fit_memory,
        {"build_env": env(max_jobs=jobs, nvcc_threads=threads, mem_total=mem * GIB, cores=cores)},
    )
    assert statuses(f) == [status]
    if status == "fail":
        assert int(f[0].evidence["fix"].split("MAX_JOBS=")[1].split()[0]) * 4 <= mem


def test_disk():
    f = run_check(
        build.build_disk_space,
        {
            "build_env": env(
                disk={"tmp": {"path": "/tmp", "free": 5 * GIB}, "build_dir": {"path": "/src", "free": 20 * GIB}}
            )
        },
    )
    assert [(x.status, x.severity) for x in f] == [("fail", "error"), ("fail", "warning")]


def test_host_compiler_and_headers(tmp_path):
    lim = {"max_major": 14, "source": "host_config.h"}
    f = run_check(
        build.host_compiler_supported,
        {
            "build_env": env(
                gcc={"path": "/usr/bin/gcc", "version": "15.1.0"}, nvcc_gcc_max=lim, nvcc="/usr/local/cuda/bin/nvcc"
            )
        },
    )
    assert statuses(f) == ["fail"] and "gcc-14" in f[0].evidence["fix"]
    f = run_check(build.python_headers_present, {"build_env": env(python_include=str(tmp_path), python_h=False)})
    assert statuses(f) == ["fail"]


def test_nvcc_host_config_parsing(tmp_path):
    from bwdoctor.probes.build import nvcc_gcc_max

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/nvcc").write_text("")
    (tmp_path / "include/crt").mkdir(parents=True)
    # the guard as CUDA's crt/host_config.h writes it
    (tmp_path / "include/crt/host_config.h").write_text(
        "#if defined(__GNUC__)\n#if __GNUC__ > 14\n#error -- unsupported GNU version! gcc versions later than 14 "
        "are not supported!\n#endif /* __GNUC__ > 14 */\n#endif\n"
    )
    assert nvcc_gcc_max(Context(), str(tmp_path / "bin/nvcc"))["max_major"] == 14


def test_real_cuda_host_config():
    import shutil

    from bwdoctor.probes.build import nvcc_gcc_max

    nvcc = shutil.which("nvcc")
    if not nvcc:
        pytest.skip("no CUDA toolkit here")
    lim = nvcc_gcc_max(Context(), nvcc)
    assert lim is None or lim["max_major"] >= 12


def test_cuda_home_matches_nvcc_reads_paths_the_probe_resolved(tmp_path):
    """BW706: symlinks are resolved by the build_env probe on the machine; the check only compares the fact."""
    import shutil

    from bwdoctor.model import Unavailable
    from bwdoctor.probes.build import build_env

    for ver in ("12.8", "13.0"):
        (tmp_path / f"cuda-{ver}/bin").mkdir(parents=True)
        (tmp_path / f"cuda-{ver}/bin/nvcc").write_text("#!/bin/sh\nexit 0\n")
        (tmp_path / f"cuda-{ver}/bin/nvcc").chmod(0o755)
    (tmp_path / "cuda").symlink_to(tmp_path / "cuda-12.8")  # as /usr/local/cuda -> cuda-12.8
    none = Unavailable("not needed here")

    def fact(**env):
        ctx = Context(env={"PATH": str(tmp_path / "cuda-12.8/bin"), **env}, options={"src": str(tmp_path)})
        return build_env(ctx, none, none)

    one = fact(CUDA_HOME=str(tmp_path / "cuda"))
    assert one["nvcc_realpaths"][str(tmp_path / "cuda/bin/nvcc")] == str(tmp_path / "cuda-12.8/bin/nvcc")
    two = fact(CUDA_HOME=str(tmp_path / "cuda"), CMAKE_CUDA_COMPILER=str(tmp_path / "cuda-13.0/bin/nvcc"))
    # the facts replayed where none of these paths exist (--facts on another machine) give the same answers
    shutil.rmtree(tmp_path / "cuda-12.8"), shutil.rmtree(tmp_path / "cuda-13.0"), (tmp_path / "cuda").unlink()
    f = run_check(build.cuda_home_matches_nvcc, {"build_env": one})
    assert statuses(f) == ["pass"], f[0].message
    f = run_check(build.cuda_home_matches_nvcc, {"build_env": two})
    assert statuses(f) == ["fail"] and f[0].evidence["nvcc"]["CMAKE_CUDA_COMPILER"].endswith("cuda-13.0/bin/nvcc")
    # a fact recorded without resolved paths compares the paths as written
    f = run_check(
        build.cuda_home_matches_nvcc,
        {"build_env": env(cuda_home="/usr/local/cuda", nvcc_on_path="/usr/local/cuda/bin/nvcc")},
    )
    assert statuses(f) == ["pass"]


def test_source_tree_pins_before_and_after():
    before = source_tree(Context(options={"src": str(SRC / "before")}))
    assert [p["requirement"] for p in before["torch_pins"]] == ["torch==2.8.0"] * 3 and before["is_vllm"]
    torch = {"version": "2.9.1+cu128"}
    f = run_check(build.source_tree_accepts_torch, {"source_tree": before, "torch_build": torch})
    assert statuses(f) == ["fail"] * 3
    assert f[0].location.path.endswith("requirements/build.txt") and f[0].location.line == 7
    assert "use_existing_torch.py" in f[0].evidence["fix"]
    after = source_tree(Context(options={"src": str(SRC / "after")}))
    assert after["torch_pins"] == []
    assert statuses(run_check(build.source_tree_accepts_torch, {"source_tree": after, "torch_build": torch})) == [
        "pass"
    ]
    assert statuses(
        run_check(build.source_tree_accepts_torch, {"source_tree": before, "torch_build": {"version": "2.8.0+cu128"}})
    ) == ["pass"]


def gate(tmp_path, *args, path_dirs=(), **envvars):
    """Run the real `bwdoctor prebuild` with only the given toolkits on PATH."""
    e = {
        "PATH": ":".join([*map(str, path_dirs), os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "TMPDIR": str(tmp_path),
        **envvars,
    }
    for var in (
        "CUDA_HOME",
        "CUDA_PATH",
        "TORCH_CUDA_ARCH_LIST",
        "MAX_JOBS",
        "NVCC_THREADS",
        "CMAKE_CUDA_COMPILER",
        "VLLM_FLASH_ATTN_VERSION",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
    ):
        e.setdefault(var, "")
    res = run_cli("prebuild", "--format", "json", "--python", sys.executable, *args, env={k: v for k, v in e.items()})
    assert "Traceback" not in res.stderr, res.stderr
    return res, json.loads(res.stdout)


def failed(report):
    return {f["id"] for f in report["findings"] if f["status"] == "fail" and f["severity"] == "error"}


@pytest.fixture(autouse=True)
def _no_system_toolkits(monkeypatch):
    monkeypatch.setenv("BWDOCTOR_NVCC_SEARCH", "path")


def test_gate_nvcc_12_6_for_sm120_blocks(tmp_path):
    res, rep = gate(
        tmp_path,
        "--target",
        "sm_120",
        path_dirs=[toolkit_env(tmp_path, "12.6.85")],
        TORCH_CUDA_ARCH_LIST="12.0",
        MAX_JOBS="2",
    )
    assert res.returncode == 1 and "BW501" in failed(rep)


def test_gate_nvcc_12_8_for_sm103_blocks(tmp_path):
    res, rep = gate(
        tmp_path,
        "--target",
        "sm_103",
        path_dirs=[toolkit_env(tmp_path, "12.8.93")],
        TORCH_CUDA_ARCH_LIST="10.3",
        MAX_JOBS="2",
    )
    assert res.returncode == 1 and failed(rep) == {"BW501"}


def test_gate_arch_list_without_12_0_blocks(tmp_path):
    res, rep = gate(
        tmp_path,
        "--target",
        "sm_120",
        path_dirs=[toolkit_env(tmp_path, "12.8.93")],
        TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0",
        MAX_JOBS="2",
    )
    assert res.returncode == 1 and failed(rep) == {"BW701"}


def test_gate_max_jobs_42_blocks(tmp_path):
    res, rep = gate(
        tmp_path,
        "--target",
        "sm_120",
        path_dirs=[toolkit_env(tmp_path, "12.8.93")],
        TORCH_CUDA_ARCH_LIST="12.0",
        MAX_JOBS="42",
    )
    mem = next(f for f in rep["findings"] if f["id"] == "BW704")
    if mem["status"] == "skip":
        pytest.skip(mem["message"])
    if mem["evidence"]["mem_total_gib"] >= 168:
        pytest.skip("this machine has RAM for 42 jobs")
    assert res.returncode == 1 and failed(rep) == {"BW704"}


def test_gate_correct_setup_passes(tmp_path):
    res, rep = gate(
        tmp_path,
        "--target",
        "sm_120",
        "--src",
        str(SRC / "after"),
        path_dirs=[toolkit_env(tmp_path, "12.8.93")],
        TORCH_CUDA_ARCH_LIST="12.0",
        MAX_JOBS="1",
    )
    assert res.returncode == 0, [f for f in rep["findings"] if f["status"] == "fail"]
    assert {"BW501", "BW701", "BW704"} <= {f["id"] for f in rep["findings"] if f["status"] == "pass"}


def test_vllm_fa2_not_required_below_cc_8():
    """vLLM's FA2 extension (sm_80 + compute_80 in real wheels) is not used on Turing: no error there."""
    from bwdoctor.checks import gpucode

    empty = {"elf": [], "ptx": []}
    files = [
        {
            "path": "/sp/vllm/_C.abi3.so",
            "fatbin": {"elf": ["sm_75", "sm_80", "sm_120"], "ptx": []},
            "relfatbin": empty,
            "error": None,
        },
        {
            "path": "/sp/vllm/_vllm_fa2_C.abi3.so",
            "fatbin": {"elf": ["sm_80"], "ptx": ["compute_80"]},
            "relfatbin": empty,
            "error": None,
        },
    ]
    fact = {"vllm": {"version": "0.11.0", "files": files}}
    f = run_check(gpucode.vllm_has_native_code, {"targets": ["sm_75"], "cuda_binaries": fact})
    assert statuses(f) == ["pass"]
    f = run_check(gpucode.vllm_has_native_code, {"targets": ["sm_120"], "cuda_binaries": fact})
    assert [(x.status, x.severity) for x in f] == [("pass", "error"), ("fail", "info")]
