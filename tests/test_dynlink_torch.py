"""The loader model's view of `import torch` and of RPATH/RUNPATH chains, on ELF objects gcc builds here."""

import os
import shutil
import sys

import pytest
from conftest import compile_shared as cc

from bwdoctor.elf.dynelf import DynElf
from bwdoctor.elf.dynlink import Loader, interpreter_loader

pytestmark = pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")


@pytest.fixture
def site(tmp_path):
    """A site-packages with a miniature torch laid out as the wheel is: torch/lib/libc10.so, libtorch.so,
    libtorch_global_deps.so, and torch/_C.*.so linking them through RPATH $ORIGIN/lib."""
    lib = tmp_path / "torch/lib"
    cc(lib / "libc10.so", "int c10_error(void){return 1;}\n", "-Wl,-soname,libc10.so")
    cc(
        lib / "libtorch.so",
        "int c10_error(void); int torch_op(void){return c10_error();}\n",
        "-Wl,-soname,libtorch.so",
        f"-L{lib}",
        "-lc10",
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN",
    )
    cc(lib / "libtorch_global_deps.so", "int global_dep(void){return 0;}\n", "-Wl,-soname,libtorch_global_deps.so")
    cc(
        tmp_path / "torch/_C.cpython-311-x86_64-linux-gnu.so",
        "int torch_op(void); int init(void){return torch_op();}\n",
        f"-L{lib}",
        "-ltorch",
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib",
    )
    return tmp_path


def test_extension_finds_torch_libraries_by_soname_without_rpath(site):
    # built like torch.utils.cpp_extension does: DT_NEEDED libc10.so / libtorch.so, no RPATH to torch/lib
    ext = cc(
        site / "ext/_C.so",
        "int torch_op(void); int c10_error(void); int f(void){return torch_op()+c10_error();}\n",
        f"-L{site}/torch/lib",
        "-ltorch",
        "-lc10",
    )
    alone = Loader("/").check(str(ext))
    assert [m["name"] for m in alone["missing_libraries"]] == ["libtorch.so", "libc10.so"]
    ld, notes = interpreter_loader({"executable": sys.executable}, torch_dir=str(site / "torch"))
    assert notes == []
    r = ld.check(str(ext))
    assert r["missing_libraries"] == [] and r["undefined"] == []


def test_symbols_of_rtld_local_torch_need_a_dt_needed(site):
    # no DT_NEEDED on libc10.so: torch._C is loaded RTLD_LOCAL, so its symbols are not global...
    ext = cc(site / "ext/_D.so", "int c10_error(void); int f(void){return c10_error();}\n")
    ld, _ = interpreter_loader({"executable": sys.executable}, torch_dir=str(site / "torch"))
    assert [u["symbol"] for u in ld.check(str(ext))["undefined"]] == ["c10_error"]
    # ...unless TORCH_USE_RTLD_GLOBAL makes torch/__init__.py load it RTLD_GLOBAL
    ld, _ = interpreter_loader(
        {"executable": sys.executable}, env={"TORCH_USE_RTLD_GLOBAL": "1"}, torch_dir=str(site / "torch")
    )
    assert ld.check(str(ext))["undefined"] == []
    assert "libtorch_global_deps.so" in ld.loaded and ld.loaded["libtorch_global_deps.so"] in ld.global_scope


def test_rpath_chain_skips_objects_with_runpath(tmp_path):
    """DT_RPATH of the loaders applies to a dependency without DT_RUNPATH; an object with DT_RUNPATH
    in the chain contributes nothing, and the chain goes on past it."""
    cc(tmp_path / "deep/libleaf.so", "int leaf(void){return 3;}\n", "-Wl,-soname,libleaf.so")
    cc(
        tmp_path / "mid/libmid.so",
        "int leaf(void); int mid(void){return leaf();}\n",
        "-Wl,-soname,libmid.so",
        f"-L{tmp_path}/deep",
        "-lleaf",
    )  # no RPATH/RUNPATH of its own
    top = cc(
        tmp_path / "top.so",
        "int mid(void); int f(void){return mid();}\n",
        f"-L{tmp_path}/mid",
        "-lmid",
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/mid:$ORIGIN/deep",
    )
    assert DynElf(str(top)).rpath and not DynElf(str(top)).runpath
    assert Loader("/").check(str(top))["missing_libraries"] == []  # leaf found through top's RPATH
    top2 = cc(
        tmp_path / "top2.so",
        "int mid(void); int f(void){return mid();}\n",
        f"-L{tmp_path}/mid",
        "-lmid",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/mid:$ORIGIN/deep",
    )
    r = Loader("/").check(str(top2))  # RUNPATH applies to top2's own DT_NEEDED only
    assert [(m["name"], os.path.basename(m["needed_by"])) for m in r["missing_libraries"]] == [
        ("libleaf.so", "libmid.so")
    ]


def test_dollar_lib_and_platform(tmp_path):
    ld = Loader("/")
    lib = "lib/x86_64-linux-gnu" if os.path.isdir("/lib/x86_64-linux-gnu") else "lib64"
    assert ld._expand("$ORIGIN/../${LIB}/$PLATFORM", "/opt/x") == f"/opt/x/../{lib}/x86_64"
    cc(tmp_path / lib / "libp.so", "int p(void){return 0;}\n", "-Wl,-soname,libp.so")
    ext = cc(
        tmp_path / "e.so",
        "int p(void); int f(void){return p();}\n",
        f"-L{tmp_path}/{lib}",
        "-lp",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/$LIB",
    )
    assert ld.check(str(ext))["missing_libraries"] == []


def test_parsed_objects_are_shared_between_loaders():
    first, _ = interpreter_loader({"executable": sys.executable})
    second, _ = interpreter_loader({"executable": sys.executable}, objects=first.objects)
    exe = os.path.realpath(sys.executable)
    assert second.objects is first.objects and isinstance(first.objects[exe], DynElf)


def test_rpath_of_a_grandparent_reaches_past_a_runpath_object(tmp_path):
    cc(tmp_path / "deep/libleaf.so", "int leaf(void){return 3;}\n", "-Wl,-soname,libleaf.so")
    cc(
        tmp_path / "low/liblow.so",
        "int leaf(void); int low(void){return leaf();}\n",
        "-Wl,-soname,liblow.so",
        f"-L{tmp_path}/deep",
        "-lleaf",
    )
    cc(
        tmp_path / "mid/libmid.so",
        "int low(void); int mid(void){return low();}\n",
        "-Wl,-soname,libmid.so",
        f"-L{tmp_path}/low",
        "-llow",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../low",
    )
    top = cc(
        tmp_path / "top.so",
        "int mid(void); int f(void){return mid();}\n",
        f"-L{tmp_path}/mid",
        "-lmid",
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/mid:$ORIGIN/deep",
    )
    # liblow has no search path: top's DT_RPATH applies (libmid's DT_RUNPATH in between does not stop it)
    assert Loader("/").check(str(top))["missing_libraries"] == []


def test_root_without_ld_so_cache_says_so(tmp_path):
    (tmp_path / "etc").mkdir()
    _ld, notes = interpreter_loader({}, root=str(tmp_path))
    assert len(notes) == 1 and "ld.so.cache not used" in notes[0] and "does not exist" in notes[0]
    (tmp_path / "etc/ld.so.cache").write_bytes(b"\x00garbage")
    _ld, notes = interpreter_loader({}, root=str(tmp_path))
    assert "unknown magic" in notes[0]
