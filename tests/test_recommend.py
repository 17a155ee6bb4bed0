"""`bwdoctor recommend` on the shipped release table (wheels scanned from PyPI by tools/refresh_releases.py, each
row with its wheel's sha256): the acceptance scenarios of issue 15, the JSON contract, the machine mode under
--root, and the rules the plans rest on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bwdoctor.cli import main
from bwdoctor.commands import COMMANDS
from bwdoctor.recommend import Inputs, load_table, plan
from bwdoctor.recommend.planner import arch_list_for, cpu_level, driver_ceiling

ROOTS = Path(__file__).parent / "fixtures" / "roots"
DATA = Path(__file__).resolve().parents[1] / "bwdoctor" / "data"


def recommend(capsys, *argv: str) -> tuple:
    """(exit code, JSON document, text) of one scenario, through the CLI's parse → view → render."""
    base = ["recommend", "--python-version", "3.12", "--ram-gib", "64", *argv]
    rc = main([*base, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert main(base) == rc
    return rc, doc, capsys.readouterr().out


def validate(doc: dict) -> None:
    import jsonschema

    from bwdoctor.schemas import load

    jsonschema.validate(doc, load("recommend"))


def pkg(p: dict, name: str) -> dict:
    return next(x for x in p["packages"] if x["name"] == name)


def torch_cuda_evidence(p: dict, target: str) -> dict:
    return next(e for e in pkg(p, "torch")["evidence"] if e["target"] == target)


def test_registered():
    assert "bwdoctor.commands.recommend" in COMMANDS


# ------------------------------------------------------------------------------------------ acceptance


def test_rtx5090_driver_570_avx2(capsys):
    """RTX 5090 + R570 (CUDA <= 12.8): the newest vLLM's torch is a CUDA 13 build, so plan 1 is the newest vLLM whose
    pinned torch is a CUDA 12.8 wheel, plan 2 builds the newest vLLM against a CUDA 12.8 torch (seed 003)."""
    rc, doc, text = recommend(
        capsys, "--target", "sm_120", "--driver", "570.153.02", "--cpu-flags", "avx2", "--platform", "linux_x86_64"
    )
    validate(doc)
    assert rc == 0
    assert doc["inputs"]["driver_cuda_ceiling"] == "12.8" and doc["inputs"]["cpu_isa"] == "x86-64-v3"
    first, last = doc["plans"][0], doc["plans"][-1]
    assert first["kind"] == "wheels" and first["cuda"] == "12.8"
    assert pkg(first, "torch")["code_for_target"] == {"sm_120": "native"}
    ev = torch_cuda_evidence(first, "sm_120")
    assert ev["file"] == "torch/lib/libtorch_cuda.so" and "sm_120" in ev["cubins"]
    assert pkg(first, "vllm")["code_for_target"] == {"sm_120": "native"}
    latest = load_table().vllm_versions()[0]
    assert any(b["what"] == "driver-cuda" and "580.65.06" in b["fix"] and latest in b["reason"] for b in doc["blocked"])
    assert last["kind"] == "source-build" and latest in last["title"]
    assert last["env"] == {
        "TORCH_CUDA_ARCH_LIST": "12.0",
        "VLLM_FLASH_ATTN_VERSION": "2",
        "MAX_JOBS": "16",
        "NVCC_THREADS": "1",
    }
    assert "python use_existing_torch.py" in last["commands"]
    assert pkg(last, "torch")["cuda"] == "12.8"
    assert '"12.0a"' in " ".join(last["notes"])  # the suffixed list for other extensions
    assert "PLAN 1 (wheels)" in text and "PLAN 2 (source-build)" in text and "BLOCKED" in text


def test_rtx_pro_6000_driver_575(capsys):
    rc, doc, _ = recommend(capsys, "--target", "sm_120", "--driver", "575.57.08", "--platform", "linux_x86_64")
    validate(doc)
    assert rc == 0 and doc["inputs"]["driver_cuda_ceiling"] == "12.9"
    first = doc["plans"][0]
    assert first["kind"] == "wheels" and first["cuda"] in ("12.8", "12.9")
    assert all(p["code_for_target"]["sm_120"] == "native" for p in first["packages"])


def test_gb10_aarch64_driver_580(capsys):
    """GB10 (sm_121, Grace): the newest wheels run, torch through its sm_121a cubins, vLLM through sm_120f."""
    rc, doc, text = recommend(capsys, "--target", "sm_121", "--driver", "580.95.05", "--platform", "linux_aarch64")
    validate(doc)
    assert rc == 0
    first = doc["plans"][0]
    latest = load_table().vllm_versions()[0]
    assert first["kind"] == "wheels" and first["cuda"].startswith("13.") and latest in first["title"]
    assert torch_cuda_evidence(first, "sm_121")["entry"] == "sm_121a"
    vllm_core = next(e for e in pkg(first, "vllm")["evidence"] if e.get("role") == "core")
    assert vllm_core["entry"] == "sm_120f" and vllm_core["status"] == "native"
    assert not doc["blocked"]
    assert "linux_aarch64" in text


def test_b300_driver_575(capsys):
    """B300 (sm_103) + R575: CUDA 13 wheels need R580; a CUDA 12.x set runs through sm_100 cubins, and the plan
    says that its CUDA predates sm_103; the source build uses nvcc >= 12.9, the first that knows sm_103."""
    rc, doc, _ = recommend(capsys, "--target", "sm_103", "--driver", "575.57.08", "--platform", "linux_x86_64")
    validate(doc)
    assert rc == 0
    first = doc["plans"][0]
    assert first["kind"] == "wheels" and first["cuda"].startswith("12.")
    assert torch_cuda_evidence(first, "sm_103")["entry"] in ("sm_100", "sm_100a", "sm_100f")
    assert pkg(first, "torch")["code_for_target"] == {"sm_103": "native"}
    assert any("predates sm_103" in n for n in first["notes"])
    build = doc["plans"][-1]
    assert build["kind"] == "source-build" and build["nvcc"] == "12.9"
    assert any(b["what"] == "driver-cuda" for b in doc["blocked"])


def test_h100_driver_580_cuda13(capsys):
    rc, doc, _ = recommend(capsys, "--target", "sm_90", "--driver", "580.159.04", "--platform", "linux_x86_64")
    validate(doc)
    first = doc["plans"][0]
    assert rc == 0 and first["kind"] == "wheels" and first["cuda"] == "13.0"
    assert first["packages"][0]["code_for_target"] == {"sm_90": "native"}
    assert len(doc["plans"]) == 1 and not doc["blocked"]
    fa2 = next(e for e in pkg(first, "vllm")["evidence"] if e.get("role") == "fa2")
    assert fa2["status"] == "ptx-jit" and fa2["cubins"] == ["sm_80"]  # published FA2: sm_80 + PTX
    assert any("FlashAttention 2 holds PTX only" in n for n in first["notes"])


def test_sm120_driver_550_is_blocked(capsys):
    rc, doc, text = recommend(capsys, "--target", "sm_120", "--driver", "550.54.15")
    validate(doc)
    assert rc == 1 and doc["plans"] == []
    (b,) = doc["blocked"]
    assert b["what"] == "driver-target" and "570.26" in b["fix"] and "open" in b["fix"]
    assert "CUDA <= 12.4" in b["reason"]
    assert "no plan" in text


def test_vllm_0110_keeps_its_torch_280(capsys):
    rc, doc, _ = recommend(capsys, "--target", "sm_120", "--driver", "570.153.02", "--vllm", "0.11.0")
    validate(doc)
    assert rc == 0 and len(doc["plans"]) == 1
    p = doc["plans"][0]
    assert p["kind"] == "wheels"
    assert pkg(p, "vllm")["version"] == "0.11.0" and pkg(p, "torch")["version"] == "2.8.0"
    assert pkg(p, "torch")["code_for_target"] == {"sm_120": "native"} and pkg(p, "torch")["cuda"] == "12.8"
    assert p["commands"][0] == 'uv pip install "vllm==0.11.0" "torch==2.8.0"'


# ----------------------------------------------------------------------------------------- machine mode


def test_reads_the_machine_under_root(capsys):
    """The captured H100 box (driver 580.159.04, open module): targets, driver, module and CPU come from the tree."""
    rc = main(["recommend", "--root", str(ROOTS / "h100-box"), "--ram-gib", "64", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    validate(doc)
    i = doc["inputs"]
    assert rc == 0 and i["targets"] == ["sm_90"] and i["driver"] == "580.159.04" and i["kernel_module"] == "open"
    assert i["origin"]["targets"] == "machine" and i["gpus"] == ["NVIDIA H100 80GB HBM3"]
    assert i["cpu_isa"] in ("x86-64-v3", "x86-64-v4")
    assert doc["plans"][0]["cuda"] == "13.0"


def test_proprietary_module_blocks_blackwell(tmp_path, capsys):
    from hosttrees import blackwell_broken

    root = blackwell_broken(tmp_path / "root")
    rc = main(["recommend", "--root", str(root), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    validate(doc)
    assert rc == 1 and doc["inputs"]["targets"] == ["sm_120"] and doc["inputs"]["kernel_module"] == "proprietary"
    assert any("open kernel module" in b["reason"] for b in doc["blocked"])


# ------------------------------------------------------------------------------------------------ input


@pytest.mark.parametrize(
    "argv",
    [
        ["--driver", "five-seventy"],
        ["--driver", "9" * 40],
        ["--python-version", "3.x"],
        ["--vllm", "0.11; rm -rf /"],
        ["--with", "tensorrt"],
        ["--ram-gib", "nan"],
        ["--target", "sm_999x"],
    ],
)
def test_bad_input_is_a_usage_error(argv, capsys):
    assert main(["recommend", "--target", "sm_120", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bwdoctor") and "Traceback" not in err


def test_unknown_vllm_release_is_blocked_with_the_known_ones(capsys):
    rc, doc, _ = recommend(capsys, "--target", "sm_120", "--driver", "580.95.05", "--vllm", "0.0.1")
    assert rc == 1 and "0.0.1 is not in the release table" in doc["blocked"][0]["reason"]


def test_with_extras(capsys):
    rc, doc, text = recommend(
        capsys,
        "--target",
        "sm_120",
        "--driver",
        "580.95.05",
        "--platform",
        "linux_x86_64",
        "--with",
        "bitsandbytes,flash-attn,xformers",
    )
    validate(doc)
    p = doc["plans"][0]
    bnb = pkg(p, "bitsandbytes")
    # bitsandbytes loads the library of torch's CUDA (13.0): that file decides
    assert bnb["evidence"][0]["file"] == "bitsandbytes/libbitsandbytes_cuda130.so"
    assert bnb["code_for_target"] == {"sm_120": "native"}
    assert any(n.startswith("flash-attn:") for n in p["notes"])
    assert any(n.startswith("xformers") for n in p["notes"]) or any(x["name"] == "xformers" for x in p["packages"])
    assert "bitsandbytes==" in p["commands"][0]


# ------------------------------------------------------------------------------------------------ rules


def test_driver_ceiling_follows_nvidias_table():
    assert driver_ceiling("550.54.15") == (12, 4)
    assert driver_ceiling("570.26") == (12, 8)
    assert driver_ceiling("575.51.03") == (12, 9)
    assert driver_ceiling("575.51.02") == (12, 8)
    assert driver_ceiling("580.65.06") == (13, 0)
    assert driver_ceiling(None) is None


def test_cpu_level_from_flags():
    full = Inputs(targets=("sm_120",), cpu_flags=frozenset({"avx2"}), cpu_flags_complete=True)
    assert cpu_level(full) == "x86-64"  # a full /proc/cpuinfo list is read strictly
    short = Inputs(targets=("sm_120",), cpu_flags=frozenset({"avx2"}))
    assert cpu_level(short) == "x86-64-v3"
    assert cpu_level(Inputs(targets=("sm_120",), cpu_flags=frozenset({"x86-64-v4"}))) == "x86-64-v4"
    assert cpu_level(Inputs(targets=("sm_121",), platform="linux_aarch64", cpu_flags=frozenset({"sve2"}))) is None


def test_arch_lists_and_suffixes():
    from bwdoctor.archlist import covers, parse_torch_arch_list

    assert arch_list_for(("sm_120",), (12, 8)) == "12.0"
    assert arch_list_for(("sm_120",), (12, 8), suffixed=True) == "12.0a"
    assert arch_list_for(("sm_100", "sm_103"), (12, 9), suffixed=True) == "10.0f"
    assert arch_list_for(("sm_100", "sm_103"), (12, 8), suffixed=True) == "10.0a;10.3a"
    assert arch_list_for(("sm_90",), (12, 8), suffixed=True) == "9.0a"
    assert arch_list_for(("sm_86",), (12, 8), suffixed=True) == "8.6"
    for targets in (("sm_100", "sm_103"), ("sm_120", "sm_121")):
        entries = parse_torch_arch_list(arch_list_for(targets, (12, 9), suffixed=True))
        assert all(covers(entries, t)["via"] == "native" for t in targets)


def test_isa_level_above_the_cpu_excludes_a_wheel():
    """A row as the tool writes it when a library's GNU property note declares x86-64-v4."""
    table = load_table()
    rows = []
    for r in table.rows:
        if r["package"] in ("torch", "vllm") and r.get("platform") == "linux_x86_64" and r.get("kind") == "scanned":
            lib = r["files"][0]["path"] if r["files"] else None
            r = dict(r, isa={"level": "x86-64-v4", "file": lib})
        rows.append(r)
    table.rows = rows
    doc = plan(
        Inputs(targets=("sm_90",), driver="580.159.04", cpu_flags=frozenset({"avx2"}), ram_gib=64.0),
        table,
    )
    assert not any(p["kind"] == "wheels" for p in doc["plans"])
    assert any(b.get("what") == "isa" and "x86-64-v4" in b["reason"] for b in doc["blocked"])


# ---------------------------------------------------------------------------------------------- the table


def test_table_rows_are_sorted_cited_and_recorded():
    lines = (DATA / "releases.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) >= 20
    for r in rows:
        assert r["kind"] == "scanned" and r["source"].startswith("https://pypi.org/project/")
        assert re.fullmatch(r"[0-9a-f]{64}", r["wheel"]["sha256"]) and r["wheel"]["filename"].endswith(".whl")
        for f in r["files"]:
            assert set(f) == {"path", "fatbin", "relfatbin", "error"}
    assert lines == sorted(lines, key=lambda line: _key(json.loads(line)))
    for line in (DATA / "releases_declared.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert r["kind"] == "declared" and r["source"] and r["arch_list"] and r["index_url"]


def _key(r):
    from packaging.version import Version

    return (r["package"], Version(r["version"]), r["platform"], r.get("cuda") or "")


def test_scanned_truth_beats_declared_lists():
    """The issue's point: declared arch lists are wrong in both directions; the scanned wheels show it."""
    table = load_table()
    scanned = table.find("torch", "2.13.0", "linux_x86_64")[0]
    cubins = {a for f in scanned["files"] for a in f["fatbin"]["elf"]}
    assert {"sm_103f", "sm_121a"} <= cubins  # not in build_cuda.sh's 13.0 list (…;10.0;12.0+PTX)
    aarch = table.find("torch", "2.9.1", "linux_aarch64")
    assert [r for r in aarch if r["kind"] == "scanned"][0]["files"] == []  # PyPI's aarch64 torch 2.9.1 is CPU-only


def test_check_names_recommend_when_gpu_code_fails():
    """A gpu-code failure in `check`'s text report names the command that prints a plan."""
    from bwdoctor import engine
    from bwdoctor.render.text import render_text

    row = load_table().find("torch", "2.8.0", "linux_x86_64")[0]
    facts = {
        "targets": ["sm_110"],  # Thor: torch 2.8.0 from PyPI has no sm_110 code
        "cuda_binaries": {"torch": {"version": "2.8.0", "elf_files": row["elf_files"], "files": row["files"]}},
    }
    report = engine.run(engine.Selection(select=["BW301"]), engine.Source.facts(facts))
    assert any(f.status == "fail" for f in report.findings)
    assert "bwdoctor recommend" in render_text(report, color=False)


def test_hostile_facts_give_unknowns_not_crashes(tmp_path, capsys):
    """A facts file whose driver is not a version, whose RAM is absurd and whose CPU flags are not a list (an
    infinite number is refused by the facts loader itself: exit 2)."""
    facts = tmp_path / "facts.json"
    facts.write_text(
        '{"schema": "bwdoctor.facts/1", "facts": {"nvidia_driver": {"version": "NaN", "flavour": "closed\\u0007"},'
        ' "host": {"cpu": {"flags": "avx2", "logical_cpus": -3}, "memory": {"total": 1e300}},'
        ' "python_env": {"version": null, "platform": 12}}}'
    )
    rc = main(["recommend", "--facts", str(facts), "--target", "sm_120", "--format", "json"])
    doc = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)  # strict JSON: no Infinity / NaN
    validate(doc)
    i = doc["inputs"]
    assert rc == 0 and i["driver"] is None and i["kernel_module"] is None and i["ram_gib"] is None
    assert i["origin"]["driver"] == "unknown" and i["cpu_isa"] is None and i["cores"] is None
    assert any("driver unknown" in n for n in doc["notes"])
    facts.write_text(facts.read_text().replace("1e300", "1e400"))
    assert main(["recommend", "--facts", str(facts), "--target", "sm_120", "--format", "json"]) == 2


def test_gb10_driver_575_takes_torch_from_the_pytorch_index(capsys):
    """PyPI's aarch64 torch up to 2.10 is CPU-only (scanned: no fatbin in any library), so on a CUDA 12.9 driver
    the wheels plan takes the pinned torch from the PyTorch index (a declared row) and says why."""
    rc, doc, text = recommend(capsys, "--target", "sm_121", "--driver", "575.57.08", "--platform", "linux_aarch64")
    validate(doc)
    first = doc["plans"][0]
    t = pkg(first, "torch")
    assert rc == 0 and first["kind"] == "wheels"
    assert t["truth"] == "declared" and t["index_url"].startswith("https://download.pytorch.org/whl/cu12")
    assert t["code_for_target"] == {"sm_121": "native"}
    assert "--extra-index-url https://download.pytorch.org/whl/cu12" in first["commands"][1]
    assert any("has no GPU code" in n for n in first["notes"])
    assert "[declared]" in text


def test_gpu_older_than_vllm_supports_is_blocked(capsys):
    rc, doc, _ = recommend(capsys, "--target", "sm_61", "--driver", "580.95.05")
    assert rc == 1 and doc["plans"] == []
    assert doc["blocked"][0]["what"] == "gpu-too-old" and "7.0" in doc["blocked"][0]["reason"]


def test_volta_is_not_held_back_by_flash_attention_2(capsys):
    """FlashAttention 2 (sm_80 + PTX) cannot run on sm_70, and vLLM does not use it there (BW302's rule)."""
    rc, doc, _ = recommend(capsys, "--target", "sm_70", "--driver", "580.95.05", "--platform", "linux_x86_64")
    first = doc["plans"][0]
    assert rc == 0 and first["kind"] == "wheels"
    assert pkg(first, "vllm")["code_for_target"] == {"sm_70": "native"}
    assert not any(e.get("role") == "fa2" for e in pkg(first, "vllm")["evidence"])


def test_python_below_the_newest_requires_python(capsys):
    """vLLM's Requires-Python (recorded from METADATA): on Python 3.9 only vLLM 0.11.0 is left, and it says why."""
    rc, doc, _ = recommend(capsys, "--target", "sm_120", "--driver", "580.95.05", "--python-version", "3.9")
    validate(doc)
    assert rc == 0 and [p["kind"] for p in doc["plans"]] == ["wheels"]
    assert pkg(doc["plans"][0], "vllm")["version"] == "0.11.0"
    assert any(b["what"] == "python" and "requires Python" in b["reason"] for b in doc["blocked"])
