"""--output files are written whole or not at all, as tempfile.mkstemp + rename did, without importing tempfile (and
shutil, bz2, lzma behind it) on every run that writes a report."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bwdoctor import fileio


def test_new_and_replaced_files_whole_with_their_modes_and_no_leftovers(tmp_path: Path) -> None:
    new = tmp_path / "report.json"
    fileio.write_atomic(str(new), "one")
    umask = os.umask(0)
    os.umask(umask)
    assert new.read_text() == "one" and stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    old = tmp_path / "metrics.prom"
    old.write_text("old")
    old.chmod(0o640)
    fileio.write_atomic(str(old), "new", old.stat())
    assert old.read_text() == "new" and stat.S_IMODE(old.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.prom", "report.json"]


def test_temporary_names_are_fresh_and_private(tmp_path: Path) -> None:
    made = [fileio._temp_beside(str(tmp_path), "r.json") for _ in range(50)]
    names = {t for _, t in made}
    for fd, tmp in made:
        os.close(fd)
        assert Path(tmp).name.startswith(".r.json.") and tmp.endswith(".tmp")
        assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o600
    assert len(names) == 50


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_an_unwritable_directory_fails_and_leaves_nothing(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            fileio.write_atomic(str(ro / "r.json"), "x")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_a_report_written_with_output_imports_no_tempfile(tmp_path: Path) -> None:
    root = Path(__file__).parent / "fixtures" / "roots" / "h100-box"
    code = (
        "import sys, json; from bwdoctor.cli import main; "
        "main(['check', '--root', sys.argv[1], '--format', 'json', '-o', sys.argv[2]]); "
        "print(json.dumps(sorted({'tempfile', 'shutil', 'subprocess', 'traceback', 'hashlib'} & set(sys.modules))))"
    )
    env = {**os.environ, "BWDOCTOR_PLUGINS": "", "BWDOCTOR_CACHE_DIR": str(tmp_path / "c")}
    out = tmp_path / "r.json"
    res = subprocess.run(
        [sys.executable, "-c", code, str(root), str(out)], capture_output=True, text=True, timeout=120, env=env
    )
    assert json.loads(res.stdout.splitlines()[-1]) == [], res.stderr
    assert json.loads(out.read_text())["schema"] == "bwdoctor.report/1"
