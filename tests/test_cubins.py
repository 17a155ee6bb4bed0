"""`bwdoctor cubins` on real fixtures: files, directories, installed distributions, JSON contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bwdoctor.commands import cubins

FIX = Path(__file__).parent / "fixtures" / "cuda"


def run_cmd(argv, capsys):
    rc = cubins.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def make_site(tmp_path, name="fakecuda", version="1.2.3", files=("sm120.so", "rdc80.so")):
    """A site-packages dir holding real fixture .so files owned by one distribution."""
    site = tmp_path / "site"
    pkg = site / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    record = [f"{name}/__init__.py,,"]
    for f in files:
        shutil.copy(FIX / f, pkg / f)
        record.append(f"{name}/{f},sha256=x,1")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    record += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    return site


def test_json_contract_for_one_file(capsys):
    rc, out, _ = run_cmd([str(FIX / "rdc_mix.so"), "--format", "json"], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["schema"] == "bwdoctor.cubins/1"
    (item,) = doc["files"]
    assert item == {
        "path": str(FIX / "rdc_mix.so"),
        "distribution": None,
        "fatbin": {"elf": ["sm_90", "sm_120f"], "ptx": []},
        "relfatbin": {"elf": ["sm_90", "sm_120f"], "ptx": ["compute_120f"]},
        "entries": 8,
        "compressed": {"zstd": 6, "lz4": 0},
        "error": None,
    }


def test_directory_is_searched_for_elf_files_only(capsys, tmp_path):
    rc, out, _ = run_cmd([str(FIX), "--format", "json", "--output", str(tmp_path / "o.json")], capsys)
    doc = json.loads((tmp_path / "o.json").read_text())
    paths = {Path(f["path"]).name for f in doc["files"]}
    assert {p.name for p in FIX.glob("*.so")} <= paths
    # not ELF, empty, or shorter than an ELF header: skipped in directory mode
    assert not paths & {"not_elf.so", "zero_length.so", "truncated_header.so", "README.txt"}
    assert "elf32.so" in paths and rc == 1  # hostile ELF files are reported, so the exit is 1
    assert out == ""


def test_text_output_keeps_f_and_shows_both_sections(capsys):
    rc, out, _ = run_cmd([str(FIX / "rdc_mix.so"), str(FIX / "sm120f.so"), "--target", "sm_121"], capsys)
    assert rc == 0
    assert "__nv_relfatbin  elf: sm_90 sm_120f" in out and "ptx: compute_120f" in out
    assert "sm_121: native (sm_120f)" in out
    assert "2 ELF file(s), 2 with GPU code, 0 unreadable" in out


def test_non_elf_argument_is_an_error_line(capsys):
    rc, out, _ = run_cmd([str(FIX / "hostile" / "not_elf.so")], capsys)
    assert rc == 1 and "error: not an ELF file" in out


def test_unknown_name_exits_2(capsys):
    rc, out, _ = run_cmd(["no-such-distribution-xyz"], capsys)
    assert rc == 2 and "no such file, directory or installed distribution" in out


def test_distribution_of_this_interpreter(capsys, tmp_path, monkeypatch):
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):  # else the default is that environment's python
        monkeypatch.delenv(var, raising=False)
    site = make_site(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    rc, out, _ = run_cmd(["fakecuda", "--format", "json"], capsys)
    files = json.loads(out)["files"]
    assert rc == 0 and [(Path(f["path"]).name, f["distribution"]) for f in files] == [
        ("rdc80.so", "fakecuda"),
        ("sm120.so", "fakecuda"),
    ]


def test_distribution_of_another_interpreter(capsys, tmp_path, monkeypatch):
    site = make_site(tmp_path, name="othercuda")
    venv = tmp_path / "venv"  # another environment: its distributions come from its own sys.path
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (next((venv / "lib").glob("python3*")) / "site-packages" / "other.pth").write_text(str(site) + "\n")
    rc, out, _ = run_cmd(["othercuda", "--python", str(venv / "bin" / "python"), "--format", "json"], capsys)
    files = json.loads(out)["files"]
    assert rc == 0 and {Path(f["path"]).name for f in files} == {"rdc80.so", "sm120.so"}
    assert files[0]["relfatbin"]["ptx"] == ["compute_80"]


def test_bad_python_is_reported(capsys, tmp_path):
    rc, _, err = run_cmd(["fakecuda", "--python", str(tmp_path / "nopython")], capsys)
    assert rc == 2 and "nopython" in err and "no such file" in err


def test_bad_target_is_a_usage_error(capsys):
    rc, _, err = run_cmd([str(FIX / "sm120.so"), "--target", "hopper"], capsys)
    assert rc == 2 and "hopper" in err and "not a GPU architecture" in err


def test_registered_in_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "bwdoctor", "cubins", str(FIX / "sm90a.so"), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"][0]["fatbin"]["elf"] == ["sm_90a"]


def test_root_tree_paths_are_the_machines(tmp_path, capsys):
    """Under --root an absolute path names a file of the tree, reported as the machine names it."""
    lib = tmp_path / "opt" / "lib"
    lib.mkdir(parents=True)
    shutil.copy(FIX / "sm120.so", lib / "k.so")
    rc, out, _ = run_cmd(["/opt/lib/k.so", "--root", str(tmp_path), "--format", "json"], capsys)
    files = json.loads(out)["files"]
    assert rc == 0 and [f["path"] for f in files] == ["/opt/lib/k.so"]
    assert files[0]["fatbin"]["elf"] == ["sm_120"]
    rc, out, _ = run_cmd(["/opt/lib", "--root", str(tmp_path), "--format", "json"], capsys)
    assert rc == 0 and [f["path"] for f in json.loads(out)["files"]] == ["/opt/lib/k.so"]
