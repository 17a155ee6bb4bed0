"""`bwdoctor symbols` on real objects: this interpreter's modules, a --root tree, JSON and text output."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import run_cli

needs_gcc = pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")


def test_this_interpreters_modules_all_load():
    import _ssl  # noqa: F401  (a compiled module of the standard library: its directory is lib-dynload)

    dynload = os.path.dirname(_ssl.__file__)
    res = run_cli("symbols", dynload, "--python", sys.executable, "--format", "json", timeout=120)
    doc = json.loads(res.stdout)
    assert res.returncode == 0, [f for f in doc["files"] if not f["loads"]]
    assert doc["schema"] == "bwdoctor.symbols/1" and len(doc["files"]) > 5
    assert all(f["loads"] and f["undefined"] == [] for f in doc["files"])


@needs_gcc
def test_root_tree_names_machine_paths(tmp_path):
    root = tmp_path / "root"
    (root / "opt/app").mkdir(parents=True)
    (root / "etc").mkdir()
    lib = tmp_path / "build"
    lib.mkdir()
    (lib / "dep.c").write_text("int dep(void){return 1;}\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(lib / "libdep.so.3"), str(lib / "dep.c"), "-Wl,-soname,libdep.so.3"],
        check=True,
        timeout=60,
    )
    (lib / "ext.c").write_text("int dep(void); int f(void){return dep();}\n")
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-o",
            str(root / "opt/app/ext.so"),
            str(lib / "ext.c"),
            str(lib / "libdep.so.3"),
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
        ],
        check=True,
        timeout=60,
    )
    res = run_cli("symbols", "/opt/app/ext.so", "--root", str(root), timeout=120)  # a tree without Python
    assert res.returncode == 1
    assert (
        "missing libdep.so.3" in res.stdout and "/opt/app/../lib/libdep.so.3 (does not exist)" in res.stdout
    )  # as LD_DEBUG=libs writes it
    assert str(tmp_path) not in res.stdout.split("tried:")[1]  # paths as the inspected machine sees them
    (root / "opt/lib").mkdir()
    shutil.copy(lib / "libdep.so.3", root / "opt/lib/libdep.so.3")
    res = run_cli("symbols", "/opt/app/ext.so", "--root", str(root), "--format", "json", timeout=120)
    assert res.returncode == 0 and json.loads(res.stdout)["files"][0]["loads"] is True


@needs_gcc
def test_text_output_shows_demangled_undefined_symbols(tmp_path):
    if not shutil.which("g++"):
        pytest.skip("g++ not installed")
    (tmp_path / "x.cpp").write_text("namespace c10 { int gone(int); }\nint f() { return c10::gone(1); }\n")
    subprocess.run(
        ["g++", "-shared", "-fPIC", "-o", str(tmp_path / "x.so"), str(tmp_path / "x.cpp")], check=True, timeout=60
    )
    res = run_cli("symbols", str(tmp_path / "x.so"), "--python", sys.executable, timeout=120)
    assert res.returncode == 1 and "undefined _ZN3c104goneEi" in res.stdout
    assert "= c10::gone(int)" in res.stdout or "c10::gone" not in res.stdout


def test_not_elf_and_unknown_argument(tmp_path):
    (tmp_path / "notes.so").write_text("not a library")
    res = run_cli("symbols", str(tmp_path / "notes.so"), "--python", sys.executable, "--format", "json", timeout=120)
    assert res.returncode == 1 and json.loads(res.stdout)["files"][0]["error"] == "not an ELF file"
    res = run_cli("symbols", "no-such-distribution-xyz", "--python", sys.executable, timeout=120)
    assert res.returncode == 2 and "not a file" in res.stderr and "Traceback" not in res.stderr
