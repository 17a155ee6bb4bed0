"""Causes of link failures on real objects built here with g++/gcc, and the torch an extension was built for."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import compile_shared

from bwdoctor.checks.linkcauses import classify, torch_matches
from bwdoctor.context import Context
from bwdoctor.elf.dynelf import DynElf
from bwdoctor.elf.dynlink import interpreter_loader
from bwdoctor.elf.linkcause import built_for_torch, import_of, swap_string_abi
from bwdoctor.probes import links

needs_gxx = pytest.mark.skipif(not shutil.which("g++"), reason="g++ not installed")

# xformers 0.0.35's xformers/cpp_lib.json, as the PyPI wheel installs it
XFORMERS_CPP_LIB = json.loads(
    '{"version": {"cuda": 1208, "hip": null, "torch": "2.10.0+cu128", "python": "3.10.19"}, '
    '"env": {"TORCH_CUDA_ARCH_LIST": "7.5 8.0+PTX 8.0 9.0a", "XFORMERS_PACKAGE_FROM": "wheel-v0.0.35"}}'
)


def cxx(out: Path, src: str, *flags):
    return compile_shared(out, src, *flags, compiler="g++", timeout=120)


@pytest.fixture
def torch_site(tmp_path):
    """A miniature torch (C++11 ABI, as torch >= 2.7 wheels) whose libc10.so defines c10::warn(std::string)."""
    lib = tmp_path / "torch/lib"
    cxx(
        lib / "libc10.so",
        "#include <string>\nnamespace c10 { int warn(const std::string& s) { return (int)s.size(); } "
        "int added_in_new_torch(int x) { return x; } }\n",
        "-Wl,-soname,libc10.so",
    )
    cxx(
        tmp_path / "torch/_C.cpython-311-x86_64-linux-gnu.so",
        "namespace c10 { int added_in_new_torch(int); }\nint init() { return c10::added_in_new_torch(1); }\n",
        f"-L{lib}",
        "-lc10",
        "-Wl,-rpath,$ORIGIN/lib",
    )
    return tmp_path


def with_cause(raw, torch_build=None, dist=None, built=None):
    """The probe's raw result with the cause and summary the link-cause table gives it."""
    return dict(raw, **(classify(raw, torch_build, dist, built) or {"cause": None, "summary": None}))


def check_ext(site, ext, dist=None, built=None):
    ld, _ = interpreter_loader({"executable": sys.executable}, torch_dir=str(site / "torch"))
    return with_cause(links.link_result(ld, str(ext), str(site)), {"version": "2.9.1", "cuda": "12.8"}, dist, built)


@needs_gxx
def test_pre_cxx11_abi_extension_under_cxx11_torch(torch_site):
    ext = cxx(
        torch_site / "ext/_C.so",
        '#include <string>\nnamespace c10 { int warn(const std::string&); }\nint f() { return c10::warn("x"); }\n',
        "-D_GLIBCXX_USE_CXX11_ABI=0",
        f"-L{torch_site}/torch/lib",
        "-lc10",
    )
    r = check_ext(torch_site, ext)
    assert [u["symbol"] for u in r["undefined"]] == ["_ZN3c104warnERKSs"]
    assert r["cause"] == "cxx11-abi-mismatch" and "pre-C++11" in r["summary"]
    assert r["undefined"][0]["demangled"] in (None, "c10::warn(std::string const&)")


@needs_gxx
def test_symbol_of_another_torch(torch_site):
    ext = cxx(
        torch_site / "ext/_C.so",
        "namespace c10 { int removed_in_new_torch(int); }\nint f() { return c10::removed_in_new_torch(2); }\n",
        f"-L{torch_site}/torch/lib",
        "-lc10",
    )
    built = built_for_torch("0.23.0", None, None, "torch (==2.8.0)")
    r = check_ext(torch_site, ext, "torchvision", built)
    assert r["cause"] == "torchvision-mismatch" and "torch 2.8.0" in r["summary"]
    assert check_ext(torch_site, ext, "vllm", built)["cause"] == "undefined-symbol"
    assert r["import"] == "ext" and r["soft"] is None  # a plain library: the package that loads it


def test_swap_string_abi_round_trip():
    new = "_ZN3c104warnERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
    assert swap_string_abi(new) == "_ZN3c104warnERKSs" and swap_string_abi("_ZN3c104warnERKSs") == new
    assert swap_string_abi("_ZN3c104cuda9SetDeviceEi") is None


@pytest.mark.parametrize(
    "version,url,cpp_lib,req,torch,source",
    [
        ("0.0.35", None, XFORMERS_CPP_LIB, "torch>=2.10", "2.10.0", "cpp_lib.json"),
        (
            "2.8.3",
            "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/"
            "flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE-cp312-cp312-linux_x86_64.whl",
            None,
            "torch",
            "2.8",
            "wheel name",
        ),
        ("0.3.1+pt28cu128", None, None, None, "2.8", "version tag"),
        ("0.23.0", None, None, "torch (==2.8.0)", "2.8.0", "Requires-Dist"),
        ("0.11.0", None, None, "torch==2.8.0", "2.8.0", "Requires-Dist"),
    ],
)
def test_built_for(version, url, cpp_lib, req, torch, source):
    b = built_for_torch(version, url, cpp_lib, req)
    assert b["torch"] == torch and b["source"].startswith(source)


def test_built_for_range_and_match():
    b = built_for_torch("0.0.35", None, None, "torch>=2.10")
    assert b["torch"] is None and torch_matches(b, "2.9.1") is False and torch_matches(b, "2.10.0+cu128") is True
    assert torch_matches(built_for_torch("x", None, XFORMERS_CPP_LIB, None), "2.10.0+cu128") is True
    assert torch_matches(built_for_torch("0.23.0", None, None, "torch==2.8.0"), "2.9.1") is False
    assert built_for_torch("1.0", None, None, None) is None and torch_matches(None, "2.9.1") is None
    flash = built_for_torch(
        "2.8.3", "file:///w/flash_attn-2.8.3+cu12torch2.8cxx11abiFALSE-cp312-cp312-linux_x86_64.whl", None, None
    )
    assert flash["cxx11abi"] is False and torch_matches(flash, "2.8.0") is True


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")
def test_import_of_python_extension_module_and_soft_loads(tmp_path):
    inc = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(inc, "Python.h")):
        pytest.skip("no Python headers")
    (tmp_path / "pkg/sub").mkdir(parents=True)
    src = tmp_path / "m.c"
    src.write_text(
        '#include <Python.h>\nstatic struct PyModuleDef d = {PyModuleDef_HEAD_INIT, "_ops"};\n'
        "PyMODINIT_FUNC PyInit__ops(void) { return PyModule_Create(&d); }\n"
    )
    so = tmp_path / "pkg/sub/_ops.cpython-311-x86_64-linux-gnu.so"
    subprocess.run(["gcc", "-shared", "-fPIC", f"-I{inc}", "-o", str(so), str(src)], check=True, timeout=60)
    obj = DynElf(str(so))
    assert import_of(str(so), str(tmp_path), obj.defines) == {"import": "pkg.sub._ops", "soft": None}
    assert (
        import_of(str(tmp_path / "torchaudio/lib/libtorchaudio.so"), str(tmp_path), lambda n: False)["import"]
        == "torchaudio"
    )
    assert import_of(str(tmp_path / "torchvision/_C.so"), str(tmp_path), lambda n: False)["import"] == "torchvision"
    soft = import_of(str(tmp_path / "xformers/_C.so"), str(tmp_path), lambda n: False)
    assert soft["import"] is None and "xFormers" in soft["soft"]


def test_bitsandbytes_checks_the_library_it_loads():
    # the variants bitsandbytes 0.50.2 ships
    paths = [
        f"/sp/bitsandbytes/libbitsandbytes_{v}.so"
        for v in ("cpu", "cuda118", "cuda126", "cuda128", "rocm64", "rocm72", "xpu2025")
    ]
    assert links.select_loaded("bitsandbytes", paths, {"cuda": "12.8"}, {}) == [
        "/sp/bitsandbytes/libbitsandbytes_cuda128.so"
    ]
    assert links.select_loaded("bitsandbytes", paths, {"cuda": "12.8"}, {"BNB_CUDA_VERSION": "126"})[0].endswith(
        "cuda126.so"
    )
    assert links.select_loaded("bitsandbytes", paths, {"cuda": None}, {})[0].endswith("cpu.so")
    assert links.select_loaded("xformers", paths, None, {}) == paths


@needs_gxx
def test_probe_over_an_installed_distribution(torch_site):
    """extension_links reads RECORD, Requires-Dist and cpp_lib.json of a site-packages laid out as pip does."""
    site = torch_site
    cxx(
        site / "xformers/_C.so",
        "namespace c10 { int removed_in_new_torch(int); }\nint f() { return c10::removed_in_new_torch(2); }\n",
        f"-L{site}/torch/lib",
        "-lc10",
    )
    cxx(
        site / "plainext/_native.so",
        "namespace c10 { int added_in_new_torch(int); }\nint f() { return c10::added_in_new_torch(2); }\n",
        f"-L{site}/torch/lib",
        "-lc10",
    )
    (site / "xformers/cpp_lib.json").write_text(json.dumps(XFORMERS_CPP_LIB))
    dists = []
    for name, files, req in (
        ("xformers", ["xformers/_C.so", "xformers/cpp_lib.json"], ["torch>=2.10"]),
        ("plainext", ["plainext/_native.so"], []),
    ):  # no pin: found by its DT_NEEDED libc10.so
        di = site / f"{name}-1.0.dist-info"
        di.mkdir()
        (di / "RECORD").write_text("".join(f"{f},,\n" for f in files))
        dists.append({"name": name, "version": "1.0", "location": str(site), "requires": req, "dist_info": str(di)})
    tb = {"version": "2.9.1", "cuda": "12.8", "location": str(site)}
    fact = links.extension_links(Context(), {"executable": sys.executable}, dists, tb)
    by = {e["distribution"]: e for e in fact["extensions"]}
    assert set(by) == {"torch", "xformers", "plainext"} and by["plainext"]["files"] == []
    assert by["torch"]["files"] == []  # `import torch` itself is modelled too, and this miniature torch loads
    x = by["xformers"]
    assert x["built_for"]["torch"] == "2.10.0" and torch_matches(x["built_for"], tb["version"]) is False
    assert with_cause(x["files"][0], tb, "xformers", x["built_for"])["cause"] == "undefined-symbol"
    assert x["files"][0]["soft"]
    verdicts = {"cause", "summary", "fix", "kb", "torch_matches"}  # the fact holds observations, checks judge
    assert not verdicts & set(x) and not verdicts & set(x["files"][0])
    assert x["files"][0]["undefined_names"] == ["_ZN3c1020removed_in_new_torchEi"]


def test_bitsandbytes_rocm_pick():
    paths = [f"/sp/bitsandbytes/libbitsandbytes_{v}.so" for v in ("cpu", "cuda128", "rocm64", "rocm72", "xpu2025")]
    assert links.select_loaded("bitsandbytes", paths, {"cuda": None, "hip": "6.4.43484"}, {}) == [
        "/sp/bitsandbytes/libbitsandbytes_rocm64.so"
    ]


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")
def test_probe_under_root_reads_the_trees_libraries(tmp_path):
    """--root: the interpreter, its extensions and the libraries they need all come from the tree."""
    root = tmp_path / "rootfs"
    libdir = root / "usr/lib/x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    compile_shared(libdir / "libdep.so.1", "int dep(void){return 1;}\n", "-Wl,-soname,libdep.so.1")
    site = root / "venv/site"
    (site / "vllm").mkdir(parents=True)
    compile_shared(site / "vllm/_C.abi3.so", "int dep(void); int f(void){return dep();}\n", str(libdir / "libdep.so.1"))
    di = site / "vllm-0.11.0.dist-info"
    di.mkdir()
    (di / "RECORD").write_text("vllm/_C.abi3.so,,\n")
    (root / "venv/bin").mkdir(parents=True)
    shutil.copy(sys.executable, root / "venv/bin/python")
    dists = [{"name": "vllm", "version": "0.11.0", "location": str(site), "requires": [], "dist_info": str(di)}]
    ctx = Context(root=str(root))
    fact = links.extension_links(
        ctx, {"executable": str(root / "venv/bin/python")}, dists, links.Unavailable("no torch")
    )
    assert fact["extensions"][0]["files"] == [] and fact["extensions"][0]["checked"] == 1
    os.remove(libdir / "libdep.so.1")
    fact = links.extension_links(
        ctx, {"executable": str(root / "venv/bin/python")}, dists, links.Unavailable("no torch")
    )
    miss = fact["extensions"][0]["files"][0]["missing_libraries"][0]
    assert miss["name"] == "libdep.so.1" and "/usr/lib/x86_64-linux-gnu/libdep.so.1 (does not exist)" in miss["tried"]
    outside = links.extension_links(ctx, {"executable": sys.executable}, dists, links.Unavailable("no torch"))
    assert isinstance(outside, links.Unavailable) and "not inside --root" in outside.reason


@needs_gxx
def test_older_libstdcxx_first_on_the_path(tmp_path):
    """An extension built here needs GLIBCXX_3.4.21+ (C++11 strings); an older libstdc++.so.6 found first
    through LD_LIBRARY_PATH (as a conda env's lib/ often is) defines only GLIBCXX_3.4."""
    ext = cxx(
        tmp_path / "ext.so",
        "#include <string>\n#include <sstream>\n"
        "int f(int x) { std::ostringstream s; s << x; return (int)s.str().size(); }\n",
    )
    needs = DynElf(str(ext)).verneeds.get("libstdc++.so.6", {})
    if "GLIBCXX_3.4.21" not in needs:
        pytest.skip(f"this g++ emits {sorted(needs)}")
    old = tmp_path / "oldenv/lib"
    old.mkdir(parents=True)
    (tmp_path / "old.map").write_text("GLIBCXX_3.4 { global: *; };\n")
    compile_shared(
        old / "libstdc++.so.6",
        "int placeholder(void){return 0;}\n",
        "-Wl,-soname,libstdc++.so.6",
        f"-Wl,--version-script={tmp_path}/old.map",
    )
    from bwdoctor.elf.dynlink import Loader

    r = with_cause(links.link_result(Loader("/", {"LD_LIBRARY_PATH": str(old)}), str(ext), str(tmp_path)))
    assert r["cause"] == "libstdcxx-too-old" and "GLIBCXX_3.4.2" in r["summary"] and str(old) in r["summary"]
    assert with_cause(links.link_result(Loader("/"), str(ext), str(tmp_path)))["loads"] is True


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")
def test_driver_api_missing_from_an_older_libcuda(tmp_path):
    """cuTensorMapEncodeTiled (CUDA 12.0 driver API, used by Hopper/Blackwell TMA kernels) is absent from the
    libcuda.so.1 of an older driver; a libcuda.so.1 that is not there at all is a container without the driver."""
    drv = tmp_path / "driver"
    drv.mkdir()
    compile_shared(
        drv / "libcuda.so.1",
        "int cuInit(unsigned f){return 0;} int cuDriverGetVersion(int *v){*v=11080;return 0;}\n",
        "-Wl,-soname,libcuda.so.1",
    )
    (tmp_path / "k.c").write_text(
        "int cuInit(unsigned); int cuTensorMapEncodeTiled(void*);\n"
        "int f(void){ return cuInit(0) + cuTensorMapEncodeTiled(0); }\n"
    )
    ext = tmp_path / "_C.abi3.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(ext), str(tmp_path / "k.c"), str(drv / "libcuda.so.1")],
        check=True,
        timeout=60,
    )
    from bwdoctor.elf.dynlink import Loader

    r = with_cause(links.link_result(Loader("/", {"LD_LIBRARY_PATH": str(drv)}), str(ext), str(tmp_path)))
    assert r["cause"] == "driver-too-old" and [u["symbol"] for u in r["undefined"]] == ["cuTensorMapEncodeTiled"]
    bare = Loader("/")
    if bare.search("libcuda.so.1", DynElf(str(ext)), [])[0] is None:  # a machine without the NVIDIA driver
        assert with_cause(links.link_result(bare, str(ext), str(tmp_path)))["cause"] == "no-driver-in-container"
