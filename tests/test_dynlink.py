"""The loader model on real ELF objects built with gcc at test time (and on this interpreter's own modules)."""

import glob
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import compile_shared as cc

from bwdoctor.checks.linkcauses import classify
from bwdoctor.elf.dynelf import DynElf
from bwdoctor.elf.dynlink import Loader, interpreter_loader
from bwdoctor.elf.linkcause import module_of

pytestmark = pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")


def test_runpath_origin_rpath_and_missing(tmp_path):
    (tmp_path / "deps").mkdir()
    cc(tmp_path / "deps/libdep.so", "int dep(void){return 1;}\n", "-Wl,-soname,libdep.so")
    ext = cc(
        tmp_path / "ext.so",
        "int dep(void); int f(void){return dep();}\n",
        f"-L{tmp_path}/deps",
        "-ldep",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/deps",
    )
    r = Loader("/").check(str(ext))
    assert r["missing_libraries"] == [] and r["undefined"] == []
    bad = cc(tmp_path / "bad.so", "int dep(void); int f(void){return dep();}\n", f"-L{tmp_path}/deps", "-ldep")
    r = Loader("/").check(str(bad))
    assert r["missing_libraries"][0]["name"] == "libdep.so"
    assert any(t.startswith("/usr/lib") for t in r["missing_libraries"][0]["tried"])
    r = Loader("/", {"LD_LIBRARY_PATH": str(tmp_path / "deps")}).check(str(bad))
    assert r["missing_libraries"] == []


def test_needed_loop_and_broken_symlink(tmp_path):
    rp = "-Wl,-rpath,$ORIGIN"
    cc(tmp_path / "libb.so", "int b(void){return 2;}\n", "-Wl,-soname,libb.so")
    cc(
        tmp_path / "liba.so",
        "int b(void); int a(void){return b();}\n",
        "-Wl,-soname,liba.so",
        f"-L{tmp_path}",
        "-lb",
        rp,
    )
    cc(
        tmp_path / "libb.so",
        "int a(void); int b(void){return a();}\n",
        "-Wl,-soname,libb.so",
        f"-L{tmp_path}",
        "-la",
        rp,
    )
    ext = cc(tmp_path / "loop.so", "int a(void); int f(void){return a();}\n", f"-L{tmp_path}", "-la", rp)
    assert DynElf(str(tmp_path / "libb.so")).needed == ["liba.so"] and DynElf(str(tmp_path / "liba.so")).needed == [
        "libb.so"
    ]
    r = Loader("/").check(str(ext))  # liba -> libb -> liba: a DT_NEEDED cycle ends, as in ld.so
    assert r["missing_libraries"] == [] and r["undefined"] == []
    os.remove(tmp_path / "libb.so")
    os.symlink(tmp_path / "nowhere.so", tmp_path / "libb.so")  # broken
    r = Loader("/").check(str(ext))
    assert r["missing_libraries"][0]["name"] == "libb.so"
    assert "broken symbolic link" in " ".join(r["missing_libraries"][0]["tried"])


def test_symbol_versions_and_weak_and_undefined(tmp_path):
    (tmp_path / "v1.map").write_text("VERS_1.0 { global: vfun; local: *; };\n")
    (tmp_path / "v2.map").write_text("VERS_1.0 { global: vfun; local: *; };\nVERS_2.0 { global: vnew; } VERS_1.0;\n")
    (
        cc(
            tmp_path / "new/libv.so",
            "int vfun(void){return 1;} int vnew(void){return 2;}\n",
            "-Wl,-soname,libv.so",
            f"-Wl,--version-script={tmp_path}/v2.map",
        )
        if (tmp_path / "new").mkdir() is None
        else None
    )
    (tmp_path / "old").mkdir()
    cc(
        tmp_path / "old/libv.so",
        "int vfun(void){return 1;}\n",
        "-Wl,-soname,libv.so",
        f"-Wl,--version-script={tmp_path}/v1.map",
    )
    ext = cc(
        tmp_path / "user.so",
        "int vnew(void); __attribute__((weak)) int maybe(void);\n"
        "int gone(void); int f(void){return vnew() + (maybe ? maybe() : 0) + gone();}\n",
        f"-L{tmp_path}/new",
        "-lv",
        "-Wl,-rpath,$ORIGIN/old",
    )
    r = Loader("/").check(str(ext))
    assert r["missing_versions"] == [
        {"version": "VERS_2.0", "file": "libv.so", "required_by": str(ext), "provider": str(tmp_path / "old/libv.so")}
    ]
    assert [u["symbol"] for u in r["undefined"]] == ["gone", "vnew"] or sorted(u["symbol"] for u in r["undefined"]) == [
        "gone",
        "vnew",
    ]  # weak `maybe` is not reported
    assert classify(r, None)["cause"] == "missing-library"


def test_this_interpreters_extensions_all_link():
    """Zero false positives: every extension module of this Python (stdlib and site-packages) links."""
    ld, notes = interpreter_loader({"executable": sys.executable})
    assert notes == []
    import importlib.util

    mods = glob.glob(os.path.join(os.path.dirname(importlib.util.find_spec("_ssl").origin), "*.so"))
    assert mods
    bad = {m: ld.check(m) for m in mods}
    bad = {m: r for m, r in bad.items() if r["missing_libraries"] or r["undefined"] or r["missing_versions"]}
    assert bad == {}


def test_python_extension_built_here_needs_the_interpreter(tmp_path):
    inc = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(inc, "Python.h")):
        pytest.skip("no Python headers")
    ext = cc(tmp_path / "demo.so", "#include <Python.h>\nPyObject* f(void){return PyLong_FromLong(3);}\n", f"-I{inc}")
    assert any(u[0] == "PyLong_FromLong" for u in DynElf(str(ext)).undefined())
    ld, _ = interpreter_loader({"executable": sys.executable})
    assert ld.check(str(ext))["undefined"] == []  # provided by the interpreter
    assert Loader("/").check(str(ext))["undefined"][0]["symbol"] == "PyLong_FromLong"  # without it: missing


def test_bad_files(tmp_path):
    (tmp_path / "empty.so").write_bytes(b"")
    (tmp_path / "text.so").write_text("hello")
    (tmp_path / "trunc.so").write_bytes(Path(sys.executable).resolve().read_bytes()[:100])
    for name, needle in (("empty.so", "empty"), ("text.so", "not an ELF"), ("trunc.so", "program header")):
        r = Loader("/").check(str(tmp_path / name))
        assert needle in r["error"], r
    unreadable = tmp_path / "secret.so"
    unreadable.write_bytes(b"\x7fELF")
    unreadable.chmod(0)
    if os.geteuid() != 0:
        assert "ermission" in Loader("/").check(str(unreadable))["error"]


def test_root_tree_without_ld_so_cache(tmp_path):
    lib = tmp_path / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    cc(lib / "libz9.so", "int z(void){return 0;}\n", "-Wl,-soname,libz9.so")
    cc(
        tmp_path / "opt/ext.so" if (tmp_path / "opt").mkdir() is None else None,
        "int z(void); int f(void){return z();}\n",
        f"-L{lib}",
        "-lz9",
    )
    ld = Loader(str(tmp_path))
    assert "does not exist" in ld.ldcache_error
    r = ld.check("/opt/ext.so")
    assert r["missing_libraries"] == []  # found in a default directory under the root


@pytest.mark.parametrize(
    "result,cause",
    [
        ({"missing_libraries": [{"name": "libcuda.so.1", "needed_by": "x", "tried": []}]}, "no-driver-in-container"),
        ({"missing_libraries": [{"name": "libcudart.so.11.0", "needed_by": "x", "tried": []}]}, "cuda-major-mismatch"),
        (
            {"missing_libraries": [{"name": "libtorch_cuda.so", "needed_by": "x", "tried": []}]},
            "cpu-torch-cuda-extension",
        ),
        (
            {
                "missing_versions": [
                    {
                        "version": "GLIBCXX_3.4.32",
                        "file": "libstdc++.so.6",
                        "required_by": "x",
                        "provider": "/usr/lib/libstdc++.so.6",
                    }
                ]
            },
            "libstdcxx-too-old",
        ),
        ({"undefined": [{"symbol": "cuTensorMapEncodeTiled"}]}, "driver-too-old"),
        (
            {"undefined": [{"symbol": "_Z20cutlass_moe_mm_sm100RN2at6TensorERKS0_S3_S3_S3_S3_S3_S3_S3_S3_bb"}]},
            "sm12x-missing-kernel-symbol",
        ),
        ({"undefined": [{"symbol": "_ZN3c105ErrorC2ENS_14SourceLocationESs"}]}, "cxx11-abi-mismatch"),
        ({"undefined": [{"symbol": "_ZN3c104cuda9SetDeviceEi"}]}, "undefined-symbol"),
    ],
)
def test_causes(result, cause):
    assert classify(result, {"version": "2.9.1", "cuda": "12.8"})["cause"] == cause


def test_module_names():
    loc = "/sp"
    assert module_of("/sp/vllm/_C.abi3.so", loc) == "vllm._C"
    assert module_of("/sp/flash_attn_2_cuda.cpython-312-x86_64-linux-gnu.so", loc) == "flash_attn_2_cuda"
    assert module_of("/sp/torchaudio/lib/libtorchaudio.so", loc) == "torchaudio"
    assert module_of("/sp/xformers/_C.so", loc) == "xformers._C"
