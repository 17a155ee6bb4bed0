"""The GPU launcher script: every fixture exports launch(), and dry runs predict per GPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "cuda"


def _launcher():
    spec = importlib.util.spec_from_file_location("launch_fixtures", ROOT / "tools" / "launch_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("so", sorted(FIX.glob("*.so")), ids=lambda p: p.stem)
def test_fixture_exports_launch_and_needs_shared_cudart(so):
    with open(so, "rb") as fh:
        elf = ELFFile(fh)
        names = {s.name for s in elf.get_section_by_name(".dynsym").iter_symbols() if s["st_shndx"] != "SHN_UNDEF"}
        needed = [t.needed for t in elf.get_section_by_name(".dynamic").iter_tags() if t.entry.d_tag == "DT_NEEDED"]
    if so.name.startswith("units_"):  # one launch function per compiled unit
        assert {"launch_marlin", "launch_attention"} <= names
    else:
        assert "launch" in names
    assert any(n.startswith("libcudart.so.") for n in needed)


def test_dry_run_predicts_h100_like_measured(tmp_path, capsys):
    out = tmp_path / "pred.json"
    assert _launcher().main(["--dry-run", "--cc", "9.0", "--json", str(out)]) == 0
    rows = {r["fixture"]: r for r in json.loads(out.read_text())["results"]}
    assert rows["sm80.so"]["expected"] == 209 and rows["sm90a.so"]["expected"] == 0
    assert rows["rdc80.so"]["verdict"] == "ptx-jit" and rows["rdc80.so"]["section"] == "relfatbin"
    assert "compute capability 9.0 (dry run)" in capsys.readouterr().out
    # per unit: the sm_80-only unit (marlin) has no code for 9.0, the sm_120-only unit neither
    assert rows["units_80_120.so:launch_marlin"]["verdict"] == "none"
    assert rows["units_80_120.so:launch_attention"]["verdict"] == "none"


def test_dry_run_per_unit_for_rtx_5090(tmp_path):
    out = tmp_path / "pred.json"
    _launcher().main(["--dry-run", "--cc", "12.0", "--json", str(out), str(FIX / "units_80_120.so")])
    rows = {r["fixture"]: r for r in json.loads(out.read_text())["results"]}
    assert rows["units_80_120.so:launch_marlin"]["expected"] == 209
    assert rows["units_80_120.so:launch_attention"]["expected"] == 0


def test_dry_run_for_gb10_rejects_sm120a(tmp_path):
    out = tmp_path / "pred.json"
    _launcher().main(["--dry-run", "--cc", "12.1", "--json", str(out)])
    rows = {r["fixture"]: r for r in json.loads(out.read_text())["results"]}
    assert rows["sm120a.so"]["verdict"] == "none"
    assert rows["sm120f.so"]["verdict"] == "native"
    assert rows["sm121.so"]["verdict"] == "native"
    assert rows["ptx120.so"]["verdict"] == "ptx-jit"
