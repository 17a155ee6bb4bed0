"""Wrong results fixed on real input: torch's own libraries (the DT_NEEDED and RPATH of the PyPI torch 2.9.1 wheel),
soname majors that are not CUDA versions, and an undefined torch symbol ranked over a CUDA library that is installed
(the shape of vLLM 0.15.1's _flashmla_extension_C.abi3.so under torch 2.11.0+cu130)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from conftest import compile_shared

from bwdoctor.checks.linkcauses import classify
from bwdoctor.checks.linking import extensions_load
from bwdoctor.context import Context
from bwdoctor.elf.dynlink import torch_cuda_deps
from bwdoctor.model import Pass, Problem, Skip
from bwdoctor.probes import links

needs_gcc = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("g++")), reason="gcc/g++ not installed")

# torch-2.9.1-cp311-cp311-manylinux_2_28_x86_64.whl (PyPI), `readelf -d`: the RPATH every library of torch carries
TORCH_291_RPATH = ":".join(
    [
        f"$ORIGIN/../../nvidia/{d}/lib"
        for d in (
            "cudnn nvshmem nccl cusparselt cublas cuda_cupti cuda_nvrtc cuda_runtime cufft curand cusolver cusparse"
        ).split()
    ]
    + ["$ORIGIN/../../cusparselt/lib", "$ORIGIN/../../nvidia/nvtx/lib", "$ORIGIN/../../nvidia/cufile/lib", "$ORIGIN"]
)
# and the DT_NEEDED of libtorch_global_deps.so, libtorch_python.so and torch/_C.cpython-311-x86_64-linux-gnu.so
GLOBAL_DEPS_NEEDED = ("libcudart.so.12",)
TORCH_PYTHON_NEEDED = ("libcudart.so.12", "libcudnn.so.9", "libcusparseLt.so.0", "libcufile.so.0")
# torch 2.9.1's METADATA (Requires-Dist, with its environment marker)
CUDNN_PIN = 'nvidia-cudnn-cu12==9.10.2.21; platform_system == "Linux" and platform_machine == "x86_64"'
TORCH_291 = {"version": "2.9.1", "cuda": "12.8", "requires": [CUDNN_PIN]}  # torch/version.py: cuda = '12.8'


def stub(path: Path, soname: str, *flags: str, src: str = "") -> Path:
    return compile_shared(path, src or "int stub(void){return 0;}\n", f"-Wl,-soname,{soname}", *flags)


def needing(path: Path, libs, rpath: str = "", soname: str = "") -> Path:
    """A shared object whose DT_NEEDED are `libs` (made with --no-as-needed from stand-ins named like them)."""
    tmp = path.parent / ".needs"
    flags = ["-Wl,--no-as-needed"] + [str(stub(tmp / n, n)) for n in libs]
    if rpath:
        flags.append(f"-Wl,--disable-new-dtags,-rpath,{rpath}")
    if soname:
        flags.append(f"-Wl,-soname,{soname}")
    out = compile_shared(path, "int lib(void){return 0;}\n", *flags)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def torch_site(site: Path, nvidia=("cuda_runtime", "cusparselt", "cufile"), nvidia_site: Path = None) -> Path:
    """A site-packages laid out as pip installs torch 2.9.1 and its NVIDIA wheels (cuDNN left out by default)."""
    lib = site / "torch/lib"
    needing(lib / "libtorch_global_deps.so", GLOBAL_DEPS_NEEDED, TORCH_291_RPATH, "libtorch_global_deps.so")
    needing(lib / "libtorch_python.so", TORCH_PYTHON_NEEDED, TORCH_291_RPATH, "libtorch_python.so")
    needing(site / "torch/_C.cpython-311-x86_64-linux-gnu.so", ["libtorch_python.so"], TORCH_291_RPATH + ":$ORIGIN/lib")
    files = {
        "cuda_runtime": "libcudart.so.12",
        "cusparselt": "libcusparseLt.so.0",
        "cufile": "libcufile.so.0",
        "cudnn": "libcudnn.so.9",
    }
    for d in nvidia:
        stub((nvidia_site or site) / f"nvidia/{d}/lib/{files[d]}", files[d])
    return site


def probe(site: Path, tb: dict, sys_path=()):
    tb = dict(tb, location=str(site))
    env = {"executable": sys.executable, "sys_path": list(sys_path)}
    return links.extension_links(Context(env={}), env, [], tb), tb


@needs_gcc
def test_import_torch_fails_when_cudnn_is_missing(tmp_path):
    """The most common broken install: nvidia-cudnn-cu12 missing; `import torch` fails on libcudnn.so.9."""
    site = torch_site(tmp_path / "site-packages")
    fact, tb = probe(site, TORCH_291)
    row = fact["extensions"][0]
    assert row["distribution"] == "torch" and row["checked"] == 2
    miss = row["files"][0]["missing_libraries"][0]
    assert miss["name"] == "libcudnn.so.9" and miss["needed_by"].endswith("torch/lib/libtorch_python.so")
    (finding,) = extensions_load(fact, tb)
    assert isinstance(finding, Problem) and finding.evidence["import"] == "torch"
    assert "import torch will fail: libcudnn.so.9 is not found" in finding.message
    assert "CUDA 9" not in finding.message  # cuDNN 9, not CUDA 9
    assert finding.evidence["package"] == "nvidia-cudnn-cu12"
    assert finding.evidence["fix"].startswith("pip install 'nvidia-cudnn-cu12==9.10.2.21'")
    # installing the wheel fixes it
    stub(site / "nvidia/cudnn/lib/libcudnn.so.9", "libcudnn.so.9")
    fact, tb = probe(site, TORCH_291)
    assert fact["extensions"][0]["files"] == []
    assert [type(f) for f in extensions_load(fact, tb)] == [Pass]


@needs_gcc
def test_nvidia_wheels_in_another_sys_path_entry_are_preloaded(tmp_path):
    """torch in one site-packages, the NVIDIA wheels in another (purelib vs platlib, --user): libtorch_global_deps.so
    fails on libcudart.so.12, and torch/__init__.py preloads each CUDA library from sys.path, then retries."""
    other = tmp_path / "user-site"
    all_nvidia = ("cuda_runtime", "cusparselt", "cufile", "cudnn")
    site = torch_site(tmp_path / "site-packages", all_nvidia, nvidia_site=other)
    fact, _ = probe(site, TORCH_291, sys_path=[str(other)])
    f = fact["extensions"][0]["files"][0]  # the fallback needs every one of its list (ValueError otherwise)
    assert f["path"].endswith("libtorch_global_deps.so")
    for folder, pattern in torch_cuda_deps("2.9.1"):  # each wheel of its list, as nvidia/<folder>/lib/<lib>.so.12
        name = pattern.replace(".*[0-9]", ".12")
        if not any((other / f"nvidia/{folder}/lib").glob(pattern)):
            stub(other / f"nvidia/{folder}/lib/{name}", name)
    fact, _ = probe(site, TORCH_291, sys_path=[str(other)])
    assert fact["extensions"][0]["files"] == []
    # without that entry on sys.path, libtorch_global_deps.so does not load, and `import torch` fails on it
    fact, tb = probe(site, TORCH_291)
    f = fact["extensions"][0]["files"][0]
    assert f["path"].endswith("libtorch_global_deps.so") and f["missing_libraries"][0]["name"] == "libcudart.so.12"


@pytest.mark.parametrize(
    "lib, cuda_family",
    [
        ("libcudnn.so.9", False),  # cuDNN 9
        ("libnccl.so.2", False),
        ("libcufft.so.12", False),  # cuFFT of CUDA 13
        ("libcusparseLt.so.0", False),
        ("libcudart.so.12", True),
        ("libcublas.so.12", True),
        ("libcublas.so.13", True),
    ],
)
def test_soname_major_is_a_cuda_version_only_for_the_runtime_family(lib, cuda_family):
    raw = {"missing_libraries": [{"name": lib, "needed_by": "/sp/vllm/_C.abi3.so", "tried": []}]}
    v = classify(raw, {"version": "2.11.0+cu130", "cuda": "13.0"}, "vllm")
    other_major = cuda_family and not lib.endswith(".13")
    assert v is not None and v["cause"] == ("cuda-major-mismatch" if other_major else "missing-library")
    if not cuda_family:
        assert "CUDA" not in v["summary"] and v["package"].endswith("-cu13")
    v = classify(raw, {}, "vllm")  # no CUDA torch: "built for CUDA 9" never comes from libcudnn.so.9
    assert v is not None and ("built for CUDA" in v["summary"]) == cuda_family


# vLLM 0.15.1 (vllm-0.15.1-cp38-abi3-manylinux_2_31_x86_64.whl) vllm/_flashmla_extension_C.abi3.so: no RPATH,
# DT_NEEDED libtorch.so libcudart.so.12 libtorch_cpu.so libtorch_cuda.so libc10_cuda.so libc10.so, and (nm -D -u)
# _ZN3c104cuda29c10_cuda_check_implementationEiPKcS2_ib = c10_cuda_check_implementation(int, char const*, char
# const*, int, bool). torch 2.11.0+cu130's libc10_cuda.so needs libcudart.so.13 and defines it with `unsigned int`.
FLASHMLA_NEEDED_SYMBOL = (
    "namespace c10 { namespace cuda {\n"
    "void c10_cuda_check_implementation(int, const char*, const char*, int, bool); }}\n"
    "void f() { c10::cuda::c10_cuda_check_implementation(0, 0, 0, 0, false); }\n"
)
TORCH_211_DEFINES = (
    "namespace c10 { namespace cuda { void c10_cuda_check_implementation(int, const char*, const char*, "
    "unsigned int, bool) {} }}\n"
)


@needs_gcc
def test_undefined_torch_symbol_wins_over_an_installed_cuda12_runtime(tmp_path):
    site = tmp_path / "site-packages"
    lib = site / "torch/lib"
    cu13 = stub(site / "nvidia/cu13/lib/libcudart.so.13", "libcudart.so.13")
    stub(site / "nvidia/cuda_runtime/lib/libcudart.so.12", "libcudart.so.12")  # the cu12 stack vLLM brought
    compile_shared(
        lib / "libc10_cuda.so",
        TORCH_211_DEFINES,
        "-Wl,-soname,libc10_cuda.so",
        str(cu13),
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../../nvidia/cu13/lib",
        compiler="g++",
    )
    needing(lib / "libtorch_global_deps.so", [], "$ORIGIN/../../nvidia/cu13/lib", "libtorch_global_deps.so")
    compile_shared(
        site / "torch/_C.cpython-311-x86_64-linux-gnu.so",
        "int x(void){return 0;}\n",
        "-Wl,--no-as-needed",
        str(lib / "libc10_cuda.so"),
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib",
    )
    cu12 = stub(tmp_path / "build/libcudart.so.12", "libcudart.so.12")
    compile_shared(
        site / "vllm/_flashmla_extension_C.abi3.so",
        FLASHMLA_NEEDED_SYMBOL,
        "-Wl,--no-as-needed",
        str(cu12),
        str(lib / "libc10_cuda.so"),
        compiler="g++",
    )
    di = site / "vllm-0.15.1.dist-info"
    di.mkdir()
    (di / "RECORD").write_text("vllm/_flashmla_extension_C.abi3.so,,\n")
    dist = {"name": "vllm", "version": "0.15.1", "location": str(site), "requires": ["torch==2.9.1"]}
    tb = {"version": "2.11.0+cu130", "cuda": "13.0", "location": str(site)}
    fact = links.extension_links(Context(env={}), {"executable": sys.executable}, [dict(dist, dist_info=str(di))], tb)
    assert fact["extensions"][0]["files"] == [], fact  # torch 2.11 itself imports
    v = next(e for e in fact["extensions"] if e["distribution"] == "vllm")
    f = v["files"][0]
    assert f["missing_libraries"][0]["name"] == "libcudart.so.12"
    assert f["missing_libraries"][0]["found_elsewhere"][0].endswith("nvidia/cuda_runtime/lib/libcudart.so.12")
    verdict = classify(f, tb, "vllm", v["built_for"])
    assert verdict is not None and verdict["cause"] == "undefined-symbol"
    assert "c10::cuda::c10_cuda_check_implementation" in verdict["summary"]
    assert "libcudart.so.12 is missing" not in verdict["summary"]
    # the same file, the runtime nowhere in the environment: the missing CUDA 12 runtime is named
    shutil.rmtree(site / "nvidia/cuda_runtime")
    fact = links.extension_links(Context(env={}), {"executable": sys.executable}, [dict(dist, dist_info=str(di))], tb)
    f = next(e for e in fact["extensions"] if e["distribution"] == "vllm")["files"][0]
    assert classify(f, tb, "vllm")["cause"] == "cuda-major-mismatch"


def test_a_cudnn_symbol_version_is_not_a_cuda_mismatch():
    raw = {
        "missing_libraries": [],
        "missing_versions": [
            {"version": "libcudnn.so.9", "file": "libcudnn.so.9", "required_by": "/sp/x.so", "provider": "/l/c.so.9"}
        ],
    }
    assert classify(raw, {"version": "2.9.1", "cuda": "12.8"})["cause"] == "missing-library"
    raw["missing_versions"][0].update(version="libcudart.so.12", file="libcudart.so.12")
    assert classify(raw, {"version": "2.9.1", "cuda": "12.8"})["cause"] == "cuda-major-mismatch"


# torch/version.py of torch-2.9.1-cp311-cp311-manylinux_2_28_x86_64.whl from PyPI (its dist-info version is "2.9.1",
# no local tag), byte for byte
TORCH_291_VERSION_PY = """from typing import Optional

__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'xpu']
__version__ = '2.9.1+cu128'
debug = False
cuda: Optional[str] = '12.8'
git_version = '5811a8d7da873dd699ff6687092c225caffcf1bb'
hip: Optional[str] = None
xpu: Optional[str] = None
"""


def bnb_facts(target: str) -> dict:
    """bitsandbytes 0.50.2's libraries (arch lists read from the PyPI wheel) beside a PyPI torch 2.9.1."""
    import json

    doc = json.loads((Path(__file__).parent / "fixtures/cuda/facts/BW306-pass.json").read_text())
    facts = dict(doc["facts"], targets=[target], environment={})
    facts["cuda_binaries"] = dict(facts["cuda_binaries"], torch={"version": "2.9.1", "elf_files": 0, "files": []})
    return facts


def test_bitsandbytes_library_follows_torch_version_py_not_the_version_tag():
    from bwdoctor.checks.gpucode import bitsandbytes_has_native_code as bw306
    from bwdoctor.probes.pystack import parse_torch_version_py
    from bwdoctor.testing import run_check

    info = parse_torch_version_py(TORCH_291_VERSION_PY)
    facts = dict(bnb_facts("sm_70"), torch_build={"version": "2.9.1", "cuda": info["cuda"]})
    (f,) = run_check(bw306, facts)  # libbitsandbytes_cuda128.so lists sm_70; _cuda132.so does not
    assert f.status == "pass" and f.evidence["cuda_flavour"] == "128", f.message
    assert f.evidence["path"].endswith("libbitsandbytes_cuda128.so")


@pytest.mark.parametrize(
    "values, want",
    [
        (["sm_120"], ["sm_120"]),
        (["12.0"], ["sm_120"]),
        (["120"], ["sm_120"]),
        (["sm_120a"], ["sm_120"]),
        (["12.0a"], ["sm_120"]),
        (["compute_120"], ["sm_120"]),
        (["sm_120,sm_100", "sm_120"], ["sm_120", "sm_100"]),  # commas and repeats
        (["8.6, 9.0"], ["sm_86", "sm_90"]),
    ],
)
def test_target_spellings(values, want):
    from bwdoctor.domain.arch import normalize_targets

    assert normalize_targets(values) == want


@pytest.mark.parametrize(
    "value, says",
    [("12", "ambiguous"), ("10", "ambiguous"), ("sm_999", "no GPU has"), ("9.9", "no GPU has"), ("sm_12", "sm_120")],
)
def test_unknown_and_ambiguous_targets_are_refused(value, says, cli):
    from bwdoctor.domain.arch import normalize_target

    with pytest.raises(ValueError, match=says):
        normalize_target(value)
    res = cli("check", "--target", value, "--select", "BW301", "--format", "json")
    assert res.returncode == 2 and says in res.stderr and "Traceback" not in res.stderr
    env = cli("check", "--select", "BW301", "--format", "json", env={"BWDOCTOR_TARGET": f"sm_120,{value}"})
    assert env.returncode == 2 and "BWDOCTOR_TARGET" in env.stderr


def test_target_option_takes_commas_like_the_environment(cli):
    import json

    res = cli("check", "--target", "sm_120,sm_100", "--target", "12.0", "--select", "BW301", "--format", "json")
    env = cli("check", "--select", "BW301", "--format", "json", env={"BWDOCTOR_TARGET": "sm_120,sm_100"})
    assert res.returncode == env.returncode != 2
    assert json.loads(res.stdout)["facts"]["targets"] == json.loads(env.stdout)["facts"]["targets"]


def test_older_nvcc_first_is_right_when_it_is_torchs_cuda(tmp_path):
    """CUDA 12.8 first on PATH, 13.0 installed too, torch for CUDA 12.8, target sm_120: 12.8 is the right nvcc."""
    from test_toolkit import toolkit_env

    from bwdoctor.checks.stack import nvcc_not_shadowed
    from bwdoctor.probes import toolkit
    from bwdoctor.testing import run_check

    old, new = toolkit_env(tmp_path, "12.8.93"), toolkit_env(tmp_path, "13.0.88")
    fact = toolkit.cuda_toolkits(Context(env={"PATH": f"{old}:{new}"}))
    facts = {"cuda_toolkits": fact, "targets": ["sm_120"], "torch_build": {"version": "2.9.1", "cuda": "12.8"}}
    (f,) = run_check(nvcc_not_shadowed, facts)
    assert f.status == "pass" and "torch's CUDA 12.8 major" in f.message
    (f,) = run_check(nvcc_not_shadowed, dict(facts, torch_build={"version": "2.11.0", "cuda": "13.0"}))
    assert f.status == "fail" and str(new / "nvcc") in f.message  # torch for CUDA 13: 13.0 is shadowed
    old = toolkit_env(tmp_path, "12.6.85")  # cannot build sm_120: a 12.8 behind it is the right one
    fact = toolkit.cuda_toolkits(Context(env={"PATH": f"{old}:{toolkit_env(tmp_path, '12.8.93')}"}))
    (f,) = run_check(nvcc_not_shadowed, dict(facts, cuda_toolkits=fact))
    assert f.status == "fail" and "12.8" in f.message


def test_bw507_skips_without_torchvision_or_torchaudio():
    from bwdoctor.checks.stack import torchvision_matches_torch
    from bwdoctor.testing import run_check

    tb = {"version": "2.9.1", "cuda": "12.8"}
    (f,) = run_check(torchvision_matches_torch, {"distributions": [], "torch_build": tb})
    assert f.status == "skip" and "neither torchvision nor torchaudio" in f.message
    tv = {"name": "torchvision", "version": "0.24.1", "requires": ["torch==2.9.1"]}
    (f,) = run_check(torchvision_matches_torch, {"distributions": [tv], "torch_build": tb})
    assert f.status == "pass" and "torchvision 0.24.1" in f.message


# bitsandbytes-0.44.1 (PyPI wheel) bitsandbytes/triton/int8_matmul_mixed_dequantize.py, its first lines
BNB_0441_TRITON_MODULE = """import torch

from bitsandbytes.triton.triton_utils import is_triton_available

if not is_triton_available():

    def int8_matmul_mixed_dequantize(a, b, state_x, state_w, bias):
        return None
else:
    import triton
    import triton.language as tl
    from triton.ops.matmul_perf_model import early_config_prune, estimate_matmul_time
"""


def bnb_over_triton(site: Path, triton_has_ops: bool) -> list:
    """bitsandbytes 0.44.1 (its libraries for CUDA 11.7-12.5 only) and triton 3.2.0 (no triton/ops) or 3.1.0."""
    (site / "bitsandbytes/triton").mkdir(parents=True)
    (site / "bitsandbytes/triton/int8_matmul_mixed_dequantize.py").write_text(BNB_0441_TRITON_MODULE)
    (site / "triton/ops" if triton_has_ops else site / "triton").mkdir(parents=True)
    if triton_has_ops:
        (site / "triton/ops/__init__.py").write_text("")
    dists = []
    for name, version, files in (
        ("bitsandbytes", "0.44.1", ["bitsandbytes/triton/int8_matmul_mixed_dequantize.py"]),
        ("triton", "3.1.0" if triton_has_ops else "3.2.0", []),
    ):
        di = site / f"{name}-{version}.dist-info"
        di.mkdir()
        (di / "RECORD").write_text("".join(f"{f},,\n" for f in files))
        dists.append({"name": name, "version": version, "location": str(site), "dist_info": str(di), "requires": []})
    return dists


def test_bitsandbytes_importing_the_removed_triton_ops(tmp_path):
    site = tmp_path / "site-packages"
    dists = bnb_over_triton(site, triton_has_ops=False)
    fact = links.extension_links(Context(env={}), {"executable": sys.executable}, dists, links.Unavailable("none"))
    (row,) = fact["extensions"]
    assert row["checked"] == 0 and row["missing_modules"][0]["module"] == "triton.ops"
    (f,) = extensions_load(fact, None)
    assert isinstance(f, Problem) and "import bitsandbytes will fail: No module named 'triton.ops'" in f.message
    assert f.evidence["fix"].startswith("pip install 'bitsandbytes>=0.45.1'")


def test_nothing_checked_is_never_a_pass(tmp_path):
    site = tmp_path / "site-packages"
    dists = bnb_over_triton(site, triton_has_ops=True)  # triton 3.1.0 still has triton.ops: the import works
    fact = links.extension_links(Context(env={}), {"executable": sys.executable}, dists, links.Unavailable("none"))
    assert fact["extensions"] == []  # no library of bitsandbytes to check, no gap: nothing to say
    row = {"distribution": "bitsandbytes", "version": "0.44.1", "files": [], "checked": 0, "built_for": None}
    (f,) = extensions_load({"extensions": [row]}, None)
    assert isinstance(f, Skip) and "nothing was checked" in f.reason


def test_nocublaslt_twins_are_not_loaded_with_the_pick():
    # bitsandbytes 0.44.1's RECORD: one library and one _nocublaslt twin per CUDA 11.7 ... 12.5, and the CPU one
    names = ["cpu"] + [f"cuda{v}{t}" for v in (117, 118, 120, 121, 122, 123, 124, 125) for t in ("", "_nocublaslt")]
    paths = [f"/sp/bitsandbytes/libbitsandbytes_{n}.so" for n in names]
    assert links.select_loaded("bitsandbytes", paths, {"cuda": "12.1"}, {}) == [
        "/sp/bitsandbytes/libbitsandbytes_cuda121.so"
    ]
    assert links.select_loaded("bitsandbytes", paths, {"cuda": "12.8"}, {}) == []  # no library for CUDA 12.8


def test_torch_cuda_arch_list_native_is_accepted(cli):
    from bwdoctor.archlist import parse_torch_arch_list
    from bwdoctor.checks.build import arch_list_covers_target
    from bwdoctor.testing import run_check

    assert parse_torch_arch_list("native") is None  # decided at build time, as torch does
    assert [e["arch"] for e in parse_torch_arch_list("8.0 8.6+PTX;Ada")] == ["sm_80", "sm_86", "sm_89"]
    env = {"torch_cuda_arch_list": "native", "cmake_cuda_architectures": None}
    gpu = [{"name": "NVIDIA GeForce RTX 5090", "cc": [12, 0]}]
    (f,) = run_check(arch_list_covers_target, {"targets": ["sm_120"], "build_env": env, "gpus": gpu})
    assert f.status == "pass" and "visible at build time" in f.message
    (f,) = run_check(arch_list_covers_target, {"targets": ["sm_120"], "build_env": env, "gpus": []})
    assert f.status == "fail" and f.evidence["fix"] == 'export TORCH_CUDA_ARCH_LIST="12.0"'
    res = cli(
        "check", "--target", "sm_120", "--select", "BW701", "--format", "json", env={"TORCH_CUDA_ARCH_LIST": "native"}
    )
    assert "is not like 8.6" not in res.stdout


@pytest.mark.parametrize(
    "deps, want",
    [
        ('dependencies = ["torch==2.9.1", "numpy"]', ["torch==2.9.1"]),
        ('dependencies = ["numpy", "torch >=2.8,<2.10"]', ["torch<2.10,>=2.8"]),
        ("dependencies = ['torch[cuda]==2.8.0; sys_platform == \"linux\"']", ["torch==2.8.0"]),
        ('dependencies = ["torchvision==0.24.1", "torch"]', []),  # not torch / no version: no pin
    ],
)
def test_pyproject_torch_pins_on_one_line(tmp_path, deps, want):
    """vLLM's pyproject.toml (tests/fixtures/vllm-src/before) with its build requirements on one line."""
    from bwdoctor.probes.build import source_tree

    src = Path(__file__).parent / "fixtures/vllm-src/before/pyproject.toml"
    text = src.read_text().replace('dynamic = [ "version", "dependencies", "optional-dependencies"]', f"{deps}\n")
    text = text.replace('dynamic = [ "version", "dependencies", "optional-dependencies"]', "")
    text = text.replace("[project]\n", '[project]\ndynamic = ["version"]\n', 1)
    (tmp_path / "pyproject.toml").write_text(text)
    pins = source_tree(Context(options={"src": str(tmp_path)}))["torch_pins"]
    multi = [p for p in pins if p["line"] <= 12]  # build-system.requires, one pin per line, as vLLM writes it
    assert [p["requirement"] for p in multi] == ["torch==2.8.0"]
    one_line = [p for p in pins if p["line"] > 12]
    assert [p["requirement"] for p in one_line] == want
    for p in one_line:
        assert text.splitlines()[p["line"] - 1][p["column"] - 1 :].startswith("torch")


@needs_gcc
def test_cubins_python_relative_path_is_read_from_the_working_directory(tmp_path):
    import json
    import os
    import subprocess

    box = tmp_path / "vb"
    shutil.copytree(Path(__file__).parent / "fixtures/roots/venv-box", box, symlinks=True)
    site = box / "opt/venv/lib/python3.12/site-packages"
    compile_shared(site / "torchvision/_C.so", "int f(void){return 0;}\n")
    with open(site / "torchvision-0.23.0.dist-info/RECORD", "a") as fh:
        fh.write("torchvision/_C.so,,\n")
    env = dict(os.environ, BWDOCTOR_PLUGINS="", NO_COLOR="1")

    def cubins(python: str) -> dict:
        args = ["cubins", "--root", "vb", "--python", python, "torchvision", "--format", "json"]
        res = subprocess.run(
            [sys.executable, "-m", "bwdoctor", *args], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60
        )
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    by_machine_path = cubins("/opt/venv/bin/python")
    assert [f["path"] for f in by_machine_path["files"]] == ["/opt/venv/lib/python3.12/site-packages/torchvision/_C.so"]
    assert cubins("vb/opt/venv/bin/python") == by_machine_path


def test_explain_says_could_not_check_when_every_check_skipped(cli):
    """No GPU and no --target here: every BW3xx check skips, so nothing says 'not present'."""
    import json

    res = cli("explain", "no-kernel-image", "--format", "json", env={"BWDOCTOR_TARGET": ""})
    (m,) = json.loads(res.stdout)["machine"]
    assert m["status"] == "skip" and m["message"].startswith("could not be checked here (")
    assert "no target GPU" in m["message"]
    text = cli("explain", "no-kernel-image", env={"BWDOCTOR_TARGET": ""}).stdout
    assert "not present on this machine now" not in text and "could not be checked here" in text
    # with a target, BW301 looks at torch (absent here: it skips too) - a check that passes makes it 'not present'
    res = cli(
        "explain",
        "torch-cuda-arch-list",
        "--format",
        "json",
        "--target",
        "sm_120",
        env={"TORCH_CUDA_ARCH_LIST": "12.0"},
    )
    (m,) = json.loads(res.stdout)["machine"]
    assert m["status"] == "pass" and m["message"] == "not present on this machine now"


def test_bw506_with_no_package_pinning_torch_is_not_a_pass():
    from bwdoctor.checks.stack import torch_pin_conflict
    from bwdoctor.testing import run_check

    tb = {"version": "2.9.1", "cuda": "12.8"}
    numpy = {"name": "numpy", "version": "2.3.0", "requires": []}
    (f,) = run_check(torch_pin_conflict, {"distributions": [numpy], "torch_build": tb})
    assert f.status == "skip" and "no installed package pins" in f.message
    vllm = {"name": "vllm", "version": "0.12.0", "requires": ["torch==2.9.1"]}
    (f,) = run_check(torch_pin_conflict, {"distributions": [numpy, vllm], "torch_build": tb})
    assert f.status == "pass"


def test_missing_cuda13_runtime_names_the_toolkit_extra_torch_pins():
    from bwdoctor.checks.linking import wheel_fix

    # torch-2.11.0 METADATA (PyPI wheel)
    tb = {
        "cuda": "13.0",
        "requires": [
            "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.2; "
            'platform_system == "Linux"',
            'nvidia-cudnn-cu13==9.19.0.56; platform_system == "Linux"',
        ],
    }
    assert wheel_fix("nvidia-cuda-runtime-cu13", tb).startswith("pip install 'cuda-toolkit[cudart]==13.0.2'")
    assert wheel_fix("nvidia-cudnn-cu13", tb).startswith("pip install 'nvidia-cudnn-cu13==9.19.0.56'")
    assert wheel_fix("nvidia-nccl-cu13", tb) == "pip install nvidia-nccl-cu13"


def test_companion_with_other_torch_symbol_beside_an_installed_runtime():
    raw = {
        "missing_libraries": [
            {"name": "libcudart.so.12", "needed_by": "/sp/torchvision/_C.so", "found_elsewhere": ["/sp/nvidia/x"]}
        ],
        "undefined_beside_missing": ["_ZN3c104cuda29c10_cuda_check_implementationEiPKcS2_ib"],
    }
    tb = {"version": "2.11.0+cu130", "cuda": "13.0"}
    assert classify(raw, tb, "torchvision")["cause"] == "torchvision-mismatch"
    assert classify(raw, tb, "vllm")["cause"] == "undefined-symbol"
