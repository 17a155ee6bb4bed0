"""Stand-alone .cubin files are GPU code: their ELF headers name the SM (flashinfer-cubin ships thousands)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bwdoctor.context import Context
from bwdoctor.elf.fatbin import cubin_target, scan_file
from bwdoctor.probes.gpucode import cuda_binaries
from bwdoctor.testing import run_check

# The 64-byte ELF headers of three members of flashinfer_cubin-0.6.9-py3-none-any.whl (PyPI), read by streaming the
# wheel; the sha256 is of the whole member. The wheel holds 10,560 .cubin files: 8,871 sm_100f, 1,130 Sm103a and 242
# Sm100a by name (GEMM, batched GEMM and fmha kernels of TRT-LLM-gen), none for sm_120.
PREFIX = "flashinfer_cubin/cubins/"
REAL_CUBINS = {
    "sm_100f": (
        "31e75d429ff3f710de1251afdd148185f53da44d/gemm-4daf11e-1fddea2/Gemm_Bfloat16_E4m3E4m3_Fp32_t128x8x256_s4_"
        "et128x8_m128x8x32_c1x1x1_16dp256b_rM_BN_transOut_schedS_sm100f.cubin",
        "0e2df11b06b2dd695b15d55d7e775a2e196f756ba640688a7d64482433f3479b",
        "7f454c460201014108000000000000000200be000100000000000000000000002080000000000000207600000000000002640006400038"
        "000600400028000100",
    ),
    "sm_103a": (
        "55bba55929d4093682e32d817bd11ffb0441c749/fmha/trtllm-gen/fmhaSm103aKernel_QE4m3KvE2m1OE4m3H64PagedKvDenseP64"
        "VarSeqQ8Kv128StaticSwapsAbForGen.cubin",
        "10f1a97b8d54e3768b66ac9405f90f6c1b7e4f5b64c62d18ad8a9ff7af70919c",
        "7f454c460201014108000000000000000200be00010000000000000000000000000000000000000040000000000000000c67000f400038"
        "000000400017000200",
    ),
    "sm_100a": (
        "55bba55929d4093682e32d817bd11ffb0441c749/fmha/trtllm-gen/fmhaSm100aKernel_QE4m3KvE2m1OE4m3H64PagedKvDenseP64"
        "VarSeqQ8Kv128StaticSwapsAbForGen.cubin",
        "54961ebf7f8d1fee4c6642947410bb6f9406a10a658c4f230c9b5adca99fc0ae",
        "7f454c460201014108000000000000000200be00010000000000000000000000000000000000000040000000000000000c64000f400038"
        "000000400017000200",
    ),
}


@pytest.mark.parametrize("name", sorted(REAL_CUBINS))
def test_cubin_header_names_its_sm(name, tmp_path):
    rel, _sha, head = REAL_CUBINS[name]
    header = bytes.fromhex(head)
    sm, variant = cubin_target(header)
    assert f"sm_{sm}{variant}" == name
    path = tmp_path / "k.cubin"
    path.write_bytes(header + bytes(256))
    item = scan_file(path)
    assert item["fatbin"]["elf"] == [name] and item["error"] is None


def test_host_elf_and_garbage_are_not_cubins():
    import sys

    assert cubin_target(Path(sys.executable).read_bytes()[:64]) is None
    assert cubin_target(b"\x7fELF" + bytes(60)) is None and cubin_target(b"") is None


def flashinfer_site(tmp_path: Path) -> Path:
    """A site-packages with flashinfer-python and flashinfer-cubin 0.6.9 as pip lays them out (each .cubin is its
    real 64-byte header, then zeros)."""
    site = tmp_path / "site-packages"
    record = []
    for rel, _sha, head in REAL_CUBINS.values():
        p = site / PREFIX / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bytes.fromhex(head) + bytes(1024))
        record.append(f"{PREFIX}{rel},sha256=x,1088")
    (site / "flashinfer_cubin").mkdir(exist_ok=True)
    (site / "flashinfer_cubin/__init__.py").write_text("")
    record.append("flashinfer_cubin/__init__.py,,")
    for name, lines in (("flashinfer_cubin-0.6.9", record), ("flashinfer_python-0.6.9", [])):
        di = site / f"{name}.dist-info"
        di.mkdir()
        (di / "RECORD").write_text("\n".join(lines) + "\n")
    return site


def test_probe_and_bw305_read_standalone_cubins(tmp_path):
    site = flashinfer_site(tmp_path)
    dists = [
        {"name": n, "version": "0.6.9", "location": str(site), "dist_info": str(site / f"{d}-0.6.9.dist-info")}
        for n, d in (("flashinfer-cubin", "flashinfer_cubin"), ("flashinfer-python", "flashinfer_python"))
    ]
    fact = cuda_binaries(Context(env={"HOME": str(tmp_path)}), {}, dists)
    (item,) = fact["flashinfer-cubin"]["files"]
    assert item["fatbin"]["elf"] == ["sm_100a", "sm_100f", "sm_103a"] and item["cubin_files"] == 3
    from bwdoctor.checks.gpucode import flashinfer_has_native_code as bw305

    (f,) = run_check(bw305, {"targets": ["sm_120"], "cuda_binaries": fact})
    assert f.status == "fail" and f.severity == "warning"
    assert "no prebuilt kernels for sm_120" in f.message and "sm_100f" in f.message
    assert "no prebuilt kernels are installed" not in f.message
    for target in ("sm_100", "sm_103"):
        (f,) = run_check(bw305, {"targets": [target], "cuda_binaries": fact})
        assert f.status == "pass", f.message


def test_recorded_hashes_are_sha256_hex():
    for rel, sha, head in REAL_CUBINS.values():
        assert len(bytes.fromhex(sha)) == 32 and len(bytes.fromhex(head)) == 64 and rel.endswith(".cubin")
        assert hashlib.sha256(b"").hexdigest() != sha
