"""`bwdoctor cubins` reads wheels member by member, and without --target gives verdicts for the GPUs present."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from conftest import run_cli
from hosttrees import blackwell_healthy

FIX = Path(__file__).parent / "fixtures" / "cuda"


def _wheel(tmp_path: Path) -> Path:
    whl = tmp_path / "fakecuda-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(FIX / "sm120.so", "fakecuda/_C.so")
        z.write(FIX / "rdc80.so", "fakecuda/lib/rdc.so")
        z.writestr("fakecuda-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakecuda\nVersion: 1.0\n")
        z.writestr("fakecuda-1.0.dist-info/RECORD", "")
    return whl


def test_cubins_reads_a_wheel(tmp_path):
    whl = _wheel(tmp_path)
    res = run_cli("cubins", str(whl), "--format", "json", "--target", "sm_120")
    assert res.returncode == 0, res.stderr
    files = {Path(f["path"]).name: f for f in json.loads(res.stdout)["files"]}
    assert files["_C.so"]["fatbin"]["elf"] == ["sm_120"]
    assert [v["status"] for v in files["_C.so"]["verdicts"].values()] == ["native"]
    # verify-build takes the same wheel
    assert run_cli("verify-build", str(whl), "--target", "sm_120").returncode in (0, 1)


def test_cubins_verdicts_for_the_gpus_present(tmp_path):
    root = blackwell_healthy(tmp_path / "root")
    lib = root / "opt" / "lib"
    lib.mkdir(parents=True)
    shutil.copy(FIX / "sm120.so", lib / "k.so")
    res = run_cli("cubins", "/opt/lib/k.so", "--root", str(root), "--format", "json", env={"BWDOCTOR_TARGET": ""})
    assert res.returncode == 0, res.stderr
    (f,) = json.loads(res.stdout)["files"]
    assert list(f["verdicts"]) and all(v["status"] == "native" for v in f["verdicts"].values())
    text = run_cli("cubins", "/opt/lib/k.so", "--root", str(root), env={"BWDOCTOR_TARGET": ""}).stdout
    assert ": native" in text
