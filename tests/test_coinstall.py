"""Files owned by two distributions (BW515), the libnccl.so version read from the file (BW511), and two CUDA
majors mapped into one process (BW516).

Input: the real METADATA/RECORD of nvidia-nccl-cu12 2.27.5 and nvidia-nccl-cu13 2.32.3 (tests/fixtures/coinstall,
both list nvidia/nccl/lib/libnccl.so.2), and shared objects built here with gcc."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import compile_shared, run_cli

from bwdoctor.checks import coinstall, packages
from bwdoctor.context import Context
from bwdoctor.elf.libversion import nccl_version
from bwdoctor.probes import links, pyenv, pystack
from bwdoctor.testing import run_check

pytestmark = pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")

FIX = Path(__file__).parent / "fixtures" / "coinstall"
CU12, CU13 = "nvidia_nccl_cu12-2.27.5.dist-info", "nvidia_nccl_cu13-2.32.3.dist-info"
LIB, HDR = "nvidia/nccl/lib/libnccl.so.2", "nvidia/nccl/include/nccl.h"


def _digest(path: Path) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


def _libnccl(path: Path, banner: str) -> Path:
    """A shared object whose .rodata holds NCCL's banner, as the real libnccl.so.2 does."""
    src = f'const char nccl_banner[] = "{banner} %s";\nconst char *ncclBanner(void) {{ return nccl_banner; }}\n'
    return compile_shared(path, src, "-Wl,-soname,libnccl.so.2")


def _own(site: Path, dist_info: str, rels, same_size_as: str = "") -> None:
    """Rewrite the RECORD rows of `rels` in one dist-info with the hash and size of the files now on disk (that
    distribution was installed last). same_size_as: give that other dist-info's rows the same size, wrong hash."""
    for di, exact in ((dist_info, True), (same_size_as, False)):
        if not di:
            continue
        record = site / di / "RECORD"
        rows = []
        for line in record.read_text().splitlines():
            name = line.split(",", 1)[0]
            if name in rels:
                f = site / name
                digest = _digest(f) if exact else "sha256=" + "A" * 43
                line = f"{name},{digest},{f.stat().st_size}"
            rows.append(line)
        record.write_text("\n".join(rows) + "\n")


@pytest.fixture
def site(tmp_path) -> Path:
    """cu12 installed, then cu13 over it: the two shared paths hold cu13's bytes."""
    s = tmp_path / "site-packages"
    for di in (CU12, CU13):
        shutil.copytree(FIX / di, s / di)
    _libnccl(s / LIB, "NCCL version 2.32.3+cuda13.4")
    (s / HDR).parent.mkdir(parents=True)
    (s / HDR).write_text("/* nccl.h of the cu13 wheel (stand-in) */\n")
    _own(s, CU13, {LIB, HDR})
    for f in (s / LIB, s / HDR, s / CU12 / "RECORD", s / CU13 / "RECORD"):  # installed an hour ago
        os.utime(f, (time.time() - 3600, time.time() - 3600))
    return s


def _facts(site: Path) -> dict:
    ctx = Context()
    dists = pyenv.distributions(ctx, {"sys_path": [str(site)]})
    return {
        "ctx": ctx,
        "distributions": dists,
        "shared_files": pystack.shared_files(ctx, dists),
        "nccl_libraries": pystack.nccl_libraries(ctx, dists),
    }


def test_fixture_records_share_the_library_path():
    rows = {di: (FIX / di / "RECORD").read_text() for di in (CU12, CU13)}
    assert all(f"{LIB},sha256=" in text for text in rows.values())
    assert "429628328" in rows[CU12] and "343864936" in rows[CU13]


def test_cu13_over_cu12_is_found_with_its_owner(site):
    f = _facts(site)
    assert [d["name"] for d in f["distributions"]] == ["nvidia-nccl-cu12", "nvidia-nccl-cu13"]
    shared = f["shared_files"]
    assert shared["count"] == 2 and shared["distributions_checked"] == 2
    by_path = {Path(x["path"]).name: x for x in shared["files"]}
    assert set(by_path) == {"libnccl.so.2", "nccl.h"}
    lib = by_path["libnccl.so.2"]
    assert (lib["owner"], lib["owner_version"], lib["how"]) == ("nvidia-nccl-cu13", "2.32.3", "size")
    assert {e["distribution"] for e in lib["listed_by"]} == {"nvidia-nccl-cu12", "nvidia-nccl-cu13"}

    (finding,) = run_check(coinstall.files_owned_by_one_distribution, {"shared_files": shared})
    assert finding.status == "fail" and finding.severity == "error"  # a shared library was replaced
    ev = finding.evidence
    assert (ev["owner"], ev["overwritten"], ev["overwritten_version"], ev["count"]) == (
        "nvidia-nccl-cu13",
        "nvidia-nccl-cu12",
        "2.27.5",
        2,
    )
    assert "libnccl.so.2" in finding.message and "nvidia-nccl-cu12 2.27.5" in finding.message
    assert "--force-reinstall" in ev["fix"] and "virtual environment" in ev["fix"]


def test_same_recorded_size_is_told_apart_by_hash(site):
    _own(site, CU13, {LIB}, same_size_as=CU12)
    lib = next(x for x in _facts(site)["shared_files"]["files"] if x["path"].endswith("libnccl.so.2"))
    assert (lib["owner"], lib["how"]) == ("nvidia-nccl-cu13", "hash")


def test_identical_files_and_single_owners_are_no_finding(tmp_path):
    s = tmp_path / "sp"
    shutil.copytree(FIX / CU12, s / CU12)
    f = _facts(s)
    assert f["shared_files"]["count"] == 0
    (finding,) = run_check(coinstall.files_owned_by_one_distribution, {"shared_files": f["shared_files"]})
    assert finding.status == "pass"


def test_file_matching_no_record_is_reported(site):
    _libnccl(site / LIB, "NCCL version 2.21.5+cuda12.4")  # replaced by hand since: neither RECORD matches
    shared = _facts(site)["shared_files"]
    findings = run_check(coinstall.files_owned_by_one_distribution, {"shared_files": shared})
    assert any("match none of their RECORDs" in x.message and x.status == "fail" for x in findings)


def test_nccl_version_is_read_from_the_library_on_disk(site):
    f = _facts(site)
    libs = {e["distribution"]: e for e in f["nccl_libraries"]}
    assert libs["nvidia-nccl-cu12"]["library_version"] == "2.32.3"
    assert libs["nvidia-nccl-cu12"]["library_cuda"] == "13.4"
    facts = {
        "targets": ["sm_120"],
        "distributions": f["distributions"],
        "gpus": [],
        "nccl_libraries": list(libs.values()),
    }
    cu12, cu13 = run_check(packages.nccl_supports_blackwell, facts)
    assert cu12.status == cu13.status == "pass"
    assert cu12.message.startswith("nvidia-nccl-cu12 2.27.5 (its libnccl.so on disk is NCCL 2.32.3 for CUDA 13.4")
    assert cu13.message == "nvidia-nccl-cu13 2.32.3 supports sm_120"  # the same version: nothing to add


def test_old_nccl_on_disk_fails_whatever_the_wheel_says(site):
    _libnccl(site / LIB, "NCCL version 2.21.5+cuda12.4")
    f = _facts(site)
    facts = {
        "targets": ["sm_120"],
        "distributions": f["distributions"],
        "gpus": [],
        "nccl_libraries": f["nccl_libraries"],
    }
    fails = [x for x in run_check(packages.nccl_supports_blackwell, facts) if x.status == "fail"]
    assert {x.evidence["distribution"] for x in fails} == {"nvidia-nccl-cu12", "nvidia-nccl-cu13"}
    assert all(x.evidence["library_version"] == "2.21.5" and "predates 2.26.2" in x.message for x in fails)
    # without the library fact, the wheel's own version is used as before
    facts["nccl_libraries"] = {"$unavailable": "x"}
    assert [x.status for x in run_check(packages.nccl_supports_blackwell, facts)] == ["pass", "pass"]


def test_banner_reader_reads_rodata_only(tmp_path):
    lib = _libnccl(tmp_path / "libnccl.so.2", "NCCL version 2.27.5+cuda12.9")
    assert nccl_version(str(lib)) == {"version": "2.27.5", "cuda": "12.9"}
    assert nccl_version(str(compile_shared(tmp_path / "libother.so", "int f(void){return 1;}\n"))) is None
    with pytest.raises(OSError):
        nccl_version(str(tmp_path))


def test_cli_reports_the_overwrite_in_a_tree(site, tmp_path):
    """End to end: a --root tree whose venv holds both wheels; the finding comes out of `bwdoctor check`."""
    root = tmp_path / "box"
    shutil.copytree(Path(__file__).parent / "fixtures" / "roots" / "venv-box", root, symlinks=True)
    dest = root / "opt/venv/lib/python3.12/site-packages"
    for item in site.iterdir():
        shutil.copytree(item, dest / item.name, dirs_exist_ok=True)
    res = run_cli("check", "--root", str(root), "--select", "files-owned-by-one-distribution", "--format", "json")
    doc = json.loads(res.stdout)
    (f,) = [x for x in doc["findings"] if x["id"] == "BW515"]
    assert f["status"] == "fail" and f["evidence"]["overwritten"] == "nvidia-nccl-cu12", f
    assert res.returncode != 0


# -- two CUDA majors in one process ------------------------------------------------------------------------


def _cuda_site(tmp_path: Path, ext_major: str) -> Path:
    """torch built for CUDA 13 (its global deps load nvidia/cu13/lib/libcudart.so.13) and a vLLM whose _C needs
    libcudart.so.<ext_major> from nvidia/cuda_runtime/lib (cu12) or nvidia/cu13/lib."""
    s = tmp_path / "site"
    compile_shared(
        s / "nvidia/cu13/lib/libcudart.so.13", "int cudaMalloc13(void){return 0;}\n", "-Wl,-soname,libcudart.so.13"
    )
    compile_shared(
        s / "nvidia/cuda_runtime/lib/libcudart.so.12",
        "int cudaMalloc12(void){return 0;}\n",
        "-Wl,-soname,libcudart.so.12",
    )
    compile_shared(
        s / "torch/lib/libtorch_global_deps.so",
        "int cudaMalloc13(void); int gd(void){return cudaMalloc13();}\n",
        "-Wl,-soname,libtorch_global_deps.so",
        str(s / "nvidia/cu13/lib/libcudart.so.13"),
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../../nvidia/cu13/lib",
    )
    compile_shared(
        s / f"torch/_C.cpython-{sys.version_info[0]}{sys.version_info[1]}-x86_64-linux-gnu.so",
        "int c(void){return 0;}\n",
    )
    (s / "torch/version.py").write_text("__version__ = '2.11.0+cu130'\ncuda: Optional[str] = '13.0'\n")
    ext_dir = {"12": "nvidia/cuda_runtime/lib", "13": "nvidia/cu13/lib"}[ext_major]
    compile_shared(
        s / "vllm/_C.abi3.so",
        f"int cudaMalloc{ext_major}(void); int op(void){{return cudaMalloc{ext_major}();}}\n",
        str(s / ext_dir / f"libcudart.so.{ext_major}"),
        f"-Wl,--disable-new-dtags,-rpath,$ORIGIN/../{ext_dir}",
    )
    for name, version, files, requires in (
        ("torch", "2.11.0+cu130", ["torch/lib/libtorch_global_deps.so", "torch/version.py"], []),
        ("vllm", "0.15.1", ["vllm/_C.abi3.so"], ["torch==2.9.1"]),
    ):
        di = s / f"{name}-{version}.dist-info"
        di.mkdir()
        req = "".join(f"Requires-Dist: {r}\n" for r in requires)
        (di / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{req}")
        (di / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    return s


def _links(site: Path) -> dict:
    ctx = Context(env={})
    env = {"executable": sys.executable, "sys_path": [str(site)], "site_packages": [str(site)]}
    dists = pyenv.distributions(ctx, env)
    return links.extension_links(ctx, env, dists, pystack.torch_build(ctx, dists))


def test_two_cuda_runtimes_in_one_process(tmp_path):
    fact = _links(_cuda_site(tmp_path, "12"))
    assert list(fact["torch_cuda_libraries"]) == ["libcudart.so.13"]
    (vllm,) = [e for e in fact["extensions"] if e["distribution"] != "torch"]  # torch's own row aside
    assert set(vllm["cuda_libraries"]) == {"libcudart.so.12", "libcudart.so.13"}
    (f,) = run_check(coinstall.one_cuda_major_per_process, {"extension_links": fact})
    assert f.status == "fail" and f.evidence["distribution"] == "vllm"
    assert set(f.evidence["libraries"]["libcudart"]) == {"12", "13"}
    assert "importing vllm 0.15.1 after torch maps two CUDA major versions" in f.message
    assert "nvidia/cuda_runtime/lib/libcudart.so.12" in f.message and "loaded by torch" in f.message


def test_one_cuda_runtime_passes(tmp_path):
    fact = _links(_cuda_site(tmp_path, "13"))
    assert all(set(e["cuda_libraries"]) == {"libcudart.so.13"} for e in fact["extensions"])
    (f,) = run_check(coinstall.one_cuda_major_per_process, {"extension_links": fact})
    assert f.status == "pass"


def test_no_extension_is_a_skip():
    fact = {"extensions": [], "torch_cuda_libraries": {}, "notes": []}
    (f,) = run_check(coinstall.one_cuda_major_per_process, {"extension_links": fact})
    assert f.status == "skip"
