"""The wheel holds only bwdoctor/ at top level, with checks, KB articles and schemas inside it."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_layout(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("bwdoctor-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"bwdoctor"}
    sources = {f"bwdoctor/{p.relative_to(ROOT / 'bwdoctor').as_posix()}" for p in (ROOT / "bwdoctor").rglob("*.py")}
    sources |= {f"bwdoctor/checks/{p.name}" for p in (ROOT / "checks").glob("*.py")}
    assert sources - set(names) == set(), "source modules missing from the wheel"
    assert "bwdoctor/checks/driver.py" in names
    assert "bwdoctor/kb/peermem-nccl-hang.md" in names
    assert "bwdoctor/schemas/report.schema.json" in names
    assert "bwdoctor/data/registry_index.json" in names  # without it every run imports every check module
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [l for l in meta.splitlines() if l.startswith("Requires-Dist:") and "extra ==" not in l]
    assert not any("torch" in r or "vllm" in r for r in requires)
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "bwdoctor = bwdoctor.cli:console" in entry


def test_torch_is_never_imported():
    code = (
        "import sys, bwdoctor.cli as c; rc = c.main(['check', '--format', 'json', '-o', '/dev/null']); "
        "print('torch' in sys.modules, 'vllm' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip().splitlines()[-1] == "False False", res.stderr
