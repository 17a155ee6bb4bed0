"""`bwdoctor kernels`: units and kernel families against real nvcc-built fixtures and a recorded real vLLM scan."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import validate_document

from bwdoctor.domain.arch import parse_cc
from bwdoctor.elf import cubin
from bwdoctor.elf.cubin import CubinError, read_units
from bwdoctor.elf.fatbin import read_fatbins
from bwdoctor.kernels import file_report
from bwdoctor.kernels.families import family_of, leading_names

CUDA = Path(__file__).parent / "fixtures" / "cuda"
KFIX = Path(__file__).parent / "fixtures" / "kernels"
UNITS = CUDA / "units_80_120.so"
SM120 = [("sm_120", parse_cc("sm_120"))]


def run_cli(argv):
    """The CLI in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from bwdoctor.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["--no-plugins", *argv])
    return rc, out.getvalue(), err.getvalue()


def test_one_unit_per_container_and_entries_keep_their_unit():
    scan = read_fatbins(UNITS)
    units = scan.units()
    # nvcc -shared adds its device-link unit (sm_75 by default, no kernels) to the two compiled units
    assert [sorted(e.name for e in u) for u in units] == [["sm_75"], ["sm_80"], ["sm_120"]]
    assert {e.unit for e in scan.entries} == {(".nv_fatbin", 0), (".nv_fatbin", 1), (".nv_fatbin", 2)}


def test_kernel_names_from_the_cubin_symbol_tables():
    got = read_units(str(UNITS), names=True)["units"]
    assert [u["kernels"] for u in got] == [
        {"sm_75": []},
        {"sm_80": ["_ZN6marlin14bw_marlin_fillEPii"]},
        {"sm_120": ["_ZN4vllm25paged_attention_bw_kernelEPii"]},
    ]


@pytest.mark.parametrize("name", ["mix_lz4", "mix_zstd", "mix_plain"])
def test_names_are_the_same_through_every_codec(name):
    units = read_units(str(CUDA / f"{name}.so"), names=True)["units"]
    kernels = {k for u in units for ks in u["kernels"].values() for k in ks}
    assert kernels == {"_Z7bw_fillPii"}
    assert not any(u.get("errors") for u in units)


def test_ptx_entries_are_named_from_their_entry_lines():
    units = read_units(str(CUDA / "ptx120.so"), names=True)["units"]
    assert {k for u in units for k in u["kernels"].get("compute_120", [])} == {"_Z7bw_fillPii"}


def test_the_file_is_native_while_one_unit_and_its_family_are_not():
    rep = file_report(dict(read_units(str(UNITS), names=True), distribution=None), SM120)
    assert rep["units"] == 3
    assert rep["units_without_target"] == {"sm_120": 2}
    assert rep["families"]["marlin"]["targets"] == {"sm_120": "none"}
    assert rep["families"]["marlin"]["kernels_without_target"] == {"sm_120": 1}
    assert rep["families"]["paged-attention"]["targets"] == {"sm_120": "native"}
    # the same file through `cubins`: the union says native
    code, out, _ = run_cli(["cubins", str(UNITS), "--target", "sm_120", "--format", "json"])
    assert code == 0 and json.loads(out)["files"][0]["verdicts"]["sm_120"]["status"] == "native"


def test_kernels_command_json_is_valid_and_exit_codes():
    code, out, _ = run_cli(["kernels", str(UNITS), "--target", "sm_120", "--names", "--format", "json"])
    doc = json.loads(out)
    validate_document(doc)
    assert code == 0 and doc["targets"] == ["sm_120"] and doc["names"] is True
    f = doc["files"][0]
    assert f["units_without_target"] == {"sm_120": 2}
    assert [u["verdicts"]["sm_120"] for u in f["unit_list"]] == ["none", "none", "native"]
    code, out, _ = run_cli(["kernels", str(UNITS), "--target", "sm_80"])
    assert code == 0 and "2 without sm_80" in out
    code, out, _ = run_cli(["kernels", "/nonexistent/lib.so", "--target", "sm_120"])
    assert code == 2 and "no such file" in out


def test_text_names_the_unit_and_family_without_code():
    code, out, _ = run_cli(["kernels", str(UNITS), "--target", "sm_120", "--names"])
    assert code == 0
    assert "unit fatbin#1: sm_80  no code for sm_120  [marlin 1]" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("marlin"))
    assert "none -1" in line


def test_recorded_vllm_0_33_0_scan_has_27_of_118_units_without_sm_120():
    rec = json.loads((KFIX / "vllm-0.33.0-_C_stable_libtorch-units.json").read_text())
    rep = file_report({"path": rec["member"], "units": rec["units"]}, SM120)
    assert rep["units"] == 118
    assert rep["units_without_target"] == {"sm_120": 27}
    # by what they hold: Turing-only units (sm_75), Hopper-only (sm_90a) and sm_100f-only units
    missing = [u for u in rep["unit_list"] if u["verdicts"]["sm_120"] == "none"]
    assert {tuple(u["elf"] + u["ptx"]) for u in missing} == {
        ("sm_75",),
        ("sm_90a",),
        ("sm_100f",),
        ("sm_90a", "sm_100f"),
    }
    # on an H100 the sm_90a units run; the units built only for sm_75, sm_89 + sm_120f, sm_100f or sm_120f do not
    rep90 = file_report({"path": rec["member"], "units": rec["units"]}, [("sm_90", parse_cc("sm_90"))])
    assert rep90["units_without_target"] == {"sm_90": 7 + 5 + 10 + 5 + 4}


def test_families_of_real_vllm_kernel_names():
    names = json.loads((KFIX / "vllm-0.33.0-kernel-names.json").read_text())["names"]
    fam = {k: family_of(v) for k, v in names.items()}
    assert fam["_C_stable_libtorch.abi3.so#65"] == "marlin"
    assert fam["_moe_C_stable_libtorch.abi3.so#8"] == "marlin-moe"
    assert fam["_C_stable_libtorch.abi3.so#47"] == "machete"
    assert fam["_C_stable_libtorch.abi3.so#39"] == "machete"  # a CUTLASS kernel on Machete's mainloop
    assert fam["_C_stable_libtorch.abi3.so#85"] == "scaled-mm"
    assert fam["_C_stable_libtorch.abi3.so#95"] == "scaled-mm"
    assert fam["_C_stable_libtorch.abi3.so#102"] == "fp4"  # SM120 block-scaled (NVFP4) GEMM
    assert fam["_C_stable_libtorch.abi3.so#105"] == "fp4"
    assert fam["_moe_C_stable_libtorch.abi3.so#0"] == "moe"
    # no rule: the kernel's own name, past vllm:: and anonymous namespaces, without _kernel
    assert fam["_C_stable_libtorch.abi3.so#14"] == "fused_add_rms_norm"
    assert fam["_C_stable_libtorch.abi3.so#29"] == "hisparse_invalidate_written_slots"
    assert fam["_C_stable_libtorch.abi3.so#116"] == "fwd_prod_v2"
    assert fam["_moe_C_stable_libtorch.abi3.so#7"] == "EmptyKernel"


def test_leading_names_of_hostile_symbols_end():
    assert leading_names("_ZN999999abc") == []
    assert leading_names("_ZN") == []
    assert leading_names("plain_c_kernel") == ["plain_c_kernel"]
    assert family_of("_ZN") == "other"
    # torch's at::native:: and Thrust's versioned namespace are skipped like vllm:: and CUB's
    assert family_of("_ZN2at6native29vectorized_elementwise_kernelILi4EEEviT0_") == "vectorized_elementwise"
    assert family_of("_ZN6thrust24THRUST_300001_SM_750_8008cuda_cub4core13_kernel_agentEv") == "cuda_cub"
    assert family_of("_ZN" + "9" * 5000 + "x") == "other"


def test_a_corrupt_entry_is_an_error_of_its_unit_not_a_crash(tmp_path):
    bad = tmp_path / "bad.so"
    data = bytearray((CUDA / "mix_zstd.so").read_bytes())
    scan = read_fatbins(CUDA / "mix_zstd.so")
    e = next(e for e in scan.entries if e.codec == "zstd" and e.container == 1)
    start = e.offset + e.header_size
    data[start : start + 16] = b"\xff" * 16  # the zstd frame magic and header
    bad.write_bytes(bytes(data))
    units = read_units(str(bad), names=True)["units"]
    errors = [err for u in units for err in u.get("errors", [])]
    assert errors and "does not decompress" in errors[0]
    code, out, _ = run_cli(["kernels", str(bad), "--target", "sm_120", "--names", "--format", "json"])
    assert code == 1 and json.loads(out)["files"][0]["unit_list"][1]["errors"]


def test_a_missing_codec_module_is_named(monkeypatch):
    monkeypatch.setattr(cubin, "_zstd", lambda: (_ for _ in ()).throw(CubinError("install the `zstandard` module")))
    units = read_units(str(CUDA / "mix_zstd.so"), names=True)["units"]
    assert any("zstandard" in err for u in units for err in u.get("errors", []))


def test_a_cubin_with_lying_sizes_is_refused():
    with pytest.raises(CubinError):
        cubin.kernel_names(b"\x7fELF\x02\x01" + b"\0" * 58, "elf")
    with pytest.raises(CubinError):
        cubin.kernel_names(b"not an elf", "elf")


def test_directory_argument_and_wheel_argument(tmp_path):
    d = tmp_path / "lib"
    d.mkdir()
    shutil.copy(UNITS, d / "libunits.so")
    code, out, _ = run_cli(["kernels", str(d), "--target", "sm_120", "--format", "json"])
    assert code == 0 and json.loads(out)["files"][0]["units_without_target"] == {"sm_120": 2}
