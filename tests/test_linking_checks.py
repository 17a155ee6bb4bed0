"""BW401 fact cases, and `bwdoctor symbols` on a real library built here."""
import json
import shutil
import subprocess

import pytest

from bwdoctor.checks import linking
from bwdoctor.testing import run_check, statuses

from conftest import run_cli

FAIL = {"extensions": [{"distribution": "xformers", "version": "0.0.35", "requires_torch": True, "checked": 1,
                        "files": [{"path": "/sp/xformers/_C.so", "import": "xformers._C", "loads": False,
                                   "cause": "undefined-symbol",
                                   "summary": "undefined symbol torch_c10_cuda_free_error_msg",
                                   "missing_libraries": [], "missing_versions": [],
                                   "undefined": [{"symbol": "torch_c10_cuda_free_error_msg", "demangled": None,
                                                  "version": None, "required_by": "/sp/xformers/_C.so"}],
                                   "undefined_count": 11, "error": None}]},
                       {"distribution": "torchvision", "version": "0.24.1", "requires_torch": True, "checked": 2,
                        "files": []}], "notes": []}


def test_failing_extension_names_the_import_and_cause():
    f = run_check(linking.extensions_load, {"extension_links": FAIL, "torch_build": {"version": "2.9.1", "cuda": "12.8"}})
    assert statuses(f) == ["fail", "pass"]
    assert f[0].evidence["import"] == "xformers._C" and f[0].evidence["distribution"] == "xformers"
    assert f[0].kb == "undefined-symbol" and "2.9.1" in f[0].evidence["fix"]


def test_cause_sets_the_article():
    fact = json.loads(json.dumps(FAIL))
    fact["extensions"][0]["files"][0]["cause"] = "no-driver-in-container"
    f = run_check(linking.extensions_load, {"extension_links": fact, "torch_build": {"$unavailable": "x"}})
    assert f[0].kb == "no-driver-in-container"


def test_nothing_installed():
    f = run_check(linking.extensions_load, {"extension_links": {"extensions": [], "notes": []},
                                            "torch_build": {"$unavailable": "x"}})
    assert statuses(f) == ["skip"]


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")
def test_symbols_command(tmp_path):
    src = tmp_path / "x.c"
    src.write_text("int gone(void); int f(void){return gone();}\n")
    lib = tmp_path / "libx.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, timeout=60)
    res = run_cli("symbols", str(lib), "--format", "json")
    doc = json.loads(res.stdout)
    assert res.returncode == 1 and doc["schema"] == "bwdoctor.symbols/1"
    assert doc["files"][0]["undefined"][0]["symbol"] == "gone" and doc["files"][0]["cause"] == "undefined-symbol"
    res = run_cli("symbols", str(tmp_path / "nope.so"))
    assert res.returncode == 2 and "not a file" in res.stderr
