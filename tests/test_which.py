"""build_env looks compilers up as shutil.which does, without importing shutil on every check."""

from __future__ import annotations

import os
import shutil

from bwdoctor.probes.build import _which


def test_which_agrees_with_shutil(tmp_path):
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
        env = {} if path is None else {"PATH": path}
        assert _which(name, env) == shutil.which(name, path=path), (name, path)
