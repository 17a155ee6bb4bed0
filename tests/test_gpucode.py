"""GPU-code probe on a fake site-packages holding real fixture .so files, and BW3xx checks on JSON facts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bwdoctor.checks import gpucode as checks_mod  # noqa: F401
from bwdoctor.context import Context
from bwdoctor.model import Unavailable
from bwdoctor.testing import run_check

FIX = Path(__file__).parent / "fixtures" / "cuda"
CASES = sorted((FIX / "facts").glob("*.json"))


def _checks():
    from bwdoctor.checks import gpucode

    return {
        spec.id: fn for fn in vars(gpucode).values() if (spec := getattr(fn, "__bwdoctor_check__", None)) is not None
    }


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_fact_case(case):
    doc = json.loads(case.read_text())
    findings = run_check(_checks()[doc["check"]], doc["facts"])
    got = [{"status": f.status, "severity": f.severity if f.status == "fail" else None} for f in findings]
    assert got == doc["expect"], [f.message for f in findings]
    for f in findings:
        assert f.kb == "no-kernel-image"
        if f.status == "fail":
            assert f.evidence.get("distribution") and (f.evidence.get("path") or f.evidence.get("fix"))


def test_every_check_has_a_pass_and_a_fail_case():
    ids = {json.loads(c.read_text())["check"] for c in CASES}
    assert ids == set(_checks())
    for cid in ids:
        stems = [c.stem for c in CASES if c.stem.startswith(cid)]
        assert any("pass" in s for s in stems) and any("fail" in s for s in stems), cid


def test_messages_name_the_archs_and_the_fix():
    doc = json.loads((FIX / "facts" / "BW301-fail-none.json").read_text())
    (f,) = run_check(_checks()["BW301"], doc["facts"])
    assert "sm_120" in f.message and "sm_90" in f.message and "cu128" in f.message
    assert f.evidence["archs"][-1] == "sm_90" and f.evidence["target"] == "sm_120"


def test_no_target_and_not_installed_skip():
    c = _checks()
    assert [f.status for f in run_check(c["BW301"], {"targets": [], "cuda_binaries": {}})] == ["skip"]
    assert [f.status for f in run_check(c["BW303"], {"targets": ["sm_120"], "cuda_binaries": {}})] == ["skip"]
    unavailable = {"targets": ["sm_120"], "cuda_binaries": {"$unavailable": "no python"}}
    assert [f.status for f in run_check(c["BW301"], unavailable)] == ["skip"]


def test_bitsandbytes_follows_bnb_cuda_version():
    doc = json.loads((FIX / "facts" / "BW306-pass.json").read_text())
    facts = dict(doc["facts"], environment={"BNB_CUDA_VERSION": "118"})
    (f,) = run_check(_checks()["BW306"], facts)
    assert f.status == "fail" and f.evidence["cuda_flavour"] == "118"
    assert f.evidence["path"].endswith("libbitsandbytes_cuda118.so")


def test_unreadable_library_is_a_warning():
    facts = {
        "targets": ["sm_120"],
        "cuda_binaries": {
            "xformers": {
                "version": "1",
                "elf_files": 1,
                "files": [
                    {
                        "path": "/x/_C.so",
                        "fatbin": {"elf": [], "ptx": []},
                        "relfatbin": {"elf": [], "ptx": []},
                        "error": "truncated ELF",
                    }
                ],
            }
        },
    }
    (f,) = run_check(_checks()["BW304"], facts)
    assert f.status == "fail" and f.severity == "warning" and "truncated ELF" in f.message


# --- the probe, on a site-packages dir with copies of real nvcc-built fixtures -----------------


def make_dist(site: Path, name: str, version: str, files: dict) -> dict:
    """Install `files` ({relative path: fixture name}) as distribution `name`; return its facts entry."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    rows = []
    for rel, fixture in files.items():
        dest = site / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if fixture is None:
            dest.write_text("print('not ELF')\n")
        else:
            shutil.copy(FIX / fixture, dest)
        rows.append(f"{rel},sha256=x,{dest.stat().st_size}")
    rows.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return {"name": name, "version": version, "location": str(site), "requires": [], "dist_info": str(info)}


def test_probe_reads_real_fixtures_through_record(tmp_path):
    from bwdoctor.probes.gpucode import cuda_binaries

    site = tmp_path / "site-packages"
    dists = [
        make_dist(
            site,
            "torch",
            "2.9.0+cu128",
            {
                "torch/lib/libtorch_cuda.so": "mix.so",
                "torch/lib/libc10.so": "hostile/elf32.so",
                "torch/__init__.py": None,
            },
        ),
        make_dist(site, "vllm", "0.11.0", {"vllm/_C.abi3.so": "mix_af.so", "vllm/_moe_C.abi3.so": "rdc_mix.so"}),
        make_dist(site, "requests", "2.32.0", {"requests/__init__.py": None}),
    ]
    ctx = Context(root=Path("/"), env={"HOME": str(tmp_path / "home")})
    fact = cuda_binaries(ctx, {"executable": "python"}, dists)
    assert set(fact) == {"torch", "vllm"}
    torch = fact["torch"]
    assert torch["version"] == "2.9.0+cu128" and torch["elf_files"] == 2
    by_name = {Path(f["path"]).name: f for f in torch["files"]}
    assert by_name["libtorch_cuda.so"]["fatbin"] == {"elf": ["sm_80", "sm_90", "sm_120"], "ptx": ["compute_120"]}
    assert "32-bit" in by_name["libc10.so"]["error"]
    moe = [f for f in fact["vllm"]["files"] if f["path"].endswith("_moe_C.abi3.so")][0]
    assert moe["relfatbin"]["ptx"] == ["compute_120f"]
    json.dumps(fact)  # JSON-shaped
    # the fact feeds the checks as it is
    findings = run_check(_checks()["BW302"], {"targets": ["sm_120"], "cuda_binaries": fact})
    assert findings[0].status == "fail" and "sm_90a sm_100f sm_121a" in findings[0].message
    findings = run_check(_checks()["BW302"], {"targets": ["sm_121"], "cuda_binaries": fact})
    assert [f.status for f in findings] == ["pass"]


def test_probe_reads_the_flashinfer_cache(tmp_path):
    from bwdoctor.probes.gpucode import cuda_binaries

    cache = tmp_path / "home" / ".cache" / "flashinfer" / "0.2.11" / "120a" / "cached_ops" / "norm"
    cache.mkdir(parents=True)
    shutil.copy(FIX / "sm120a.so", cache / "norm.so")
    (cache / "build.ninja").write_text("rule x\n")
    ctx = Context(root=Path("/"), env={"HOME": str(tmp_path / "home")})
    fact = cuda_binaries(ctx, {}, [])
    assert fact["flashinfer-cache"]["files"][0]["fatbin"]["elf"] == ["sm_120a"]
    findings = run_check(_checks()["BW305"], {"targets": ["sm_121"], "cuda_binaries": fact})
    assert [f.status for f in findings] == ["fail"]


def test_probe_passes_on_missing_distributions():
    from bwdoctor.probes.gpucode import cuda_binaries

    got = cuda_binaries(Context(env={"HOME": "/nonexistent"}), {}, Unavailable("no interpreter"))
    assert isinstance(got, Unavailable) and "no interpreter" in got.reason


def test_probe_reports_a_missing_record(tmp_path):
    from bwdoctor.probes.gpucode import cuda_binaries

    info = tmp_path / "xformers-0.0.1.dist-info"
    info.mkdir()
    dist = {"name": "xformers", "version": "0.0.1", "location": str(tmp_path), "dist_info": str(info)}
    fact = cuda_binaries(Context(env={"HOME": "/nonexistent"}), {}, [dist])
    assert "RECORD" in fact["xformers"]["error"] and fact["xformers"]["files"] == []
