"""Compilers are looked up, free disk read and the terminal width taken as shutil does, without importing shutil
on every check."""

from __future__ import annotations

import os
import shutil

from bwdoctor import fileio


def test_which_and_disk_free_agree_with_shutil(tmp_path):
    # read a moment apart on a live file system: equal but for what was written in between
    assert abs(fileio.disk_free(str(tmp_path)) - shutil.disk_usage(tmp_path).free) < 1 << 24
    (tmp_path / "sub").mkdir()
    (tmp_path / "dir.exe").mkdir()
    (tmp_path / "noexec").write_text("")
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    d = str(tmp_path)
    cases = [
        ("sh", None),
        ("sh", "/usr/bin:/bin"),
        ("tool", d),
        ("tool", f"/nonexistent:{d}:{d}"),
        ("noexec", d),
        ("sub", d),
        ("dir.exe", d),
        (str(tool), ""),
        (str(tool), None),
        ("tool", ""),
        ("tool", f"{d}/"),
        ("./tool", d),
        ("ls", "::/bin"),
        ("no-such-tool-here", os.environ.get("PATH", "")),
    ]
    for name, path in cases:
        assert fileio.which(name, path) == shutil.which(name, path=path), (name, path)


def test_terminal_columns_agree_with_shutil(monkeypatch):
    from bwdoctor.cli import terminal_columns

    for cols in ("132", "0", "-3", "abc", ""):
        monkeypatch.setenv("COLUMNS", cols)
        assert terminal_columns(100) == shutil.get_terminal_size((100, 24)).columns, cols
    monkeypatch.delenv("COLUMNS")
    assert terminal_columns(80) == shutil.get_terminal_size((80, 24)).columns
