"""The inspected interpreter and its distributions, read without importing anything from them."""

import sys
from importlib import metadata

from bwdoctor.context import Context
from bwdoctor.probes import pyenv


def test_self_interpreter_matches_importlib_metadata():
    env = pyenv.python_env(Context(python=sys.executable))
    dists = {d["name"]: d for d in pyenv.distributions(Context(), env)}
    for d in metadata.distributions():
        name = pyenv.canonical(d.metadata["Name"])
        assert name in dists, name
    pe = dists["pyelftools"]
    assert pe["version"] == metadata.version("pyelftools")
    assert dists["rich"]["requires"] == list(metadata.requires("rich") or [])


def test_other_interpreter_runs_in_a_subprocess(tmp_path):
    import venv

    venv.create(tmp_path / "v", with_pip=False)
    py = str(tmp_path / "v" / "bin" / "python")
    env = pyenv.python_env(Context(python=py, env={"PATH": "/usr/bin:/bin"}))
    assert env["source"] == "subprocess" and env["prefix"] == str(tmp_path / "v")
    site = next(p for p in env["sys_path"] if p.endswith("site-packages"))
    di = tmp_path / "v" / site.split(str(tmp_path / "v") + "/", 1)[1] / "demo_pkg-1.2.dist-info"
    di.mkdir(parents=True)
    (di / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 1.2\n"
        "Requires-Dist: torch==2.8.0\nRequires-Dist: numpy; extra == 'x'\n\n"
        "Requires-Dist: not-a-header\n"
    )
    dists = pyenv.distributions(Context(), env)
    assert dists == [
        {
            "name": "demo-pkg",
            "version": "1.2",
            "location": site,
            "requires": ["torch==2.8.0", "numpy; extra == 'x'"],
            "dist_info": str(di),
        }
    ]


def test_shadowed_copies(tmp_path):
    for loc, ver in (("a", "2.9.1"), ("b", "2.8.0")):
        di = tmp_path / loc / f"torch-{ver}.dist-info"
        di.mkdir(parents=True)
        (di / "METADATA").write_text(f"Name: torch\nVersion: {ver}\n")
    dists = pyenv.distributions(Context(), {"sys_path": [str(tmp_path / "a"), str(tmp_path / "b"), "/nonexistent"]})
    assert dists[0]["version"] == "2.9.1" and dists[0]["shadowed"][0]["version"] == "2.8.0"


def test_missing_interpreter():
    r = pyenv.python_env(Context(python="/nonexistent/python"))
    assert "does not exist" in r.reason


def test_interpreter_that_fails(tmp_path):
    bad = tmp_path / "python"
    bad.write_text("#!/bin/sh\necho 'Fatal Python error: init_fs_encoding' >&2\nexit 1\n")
    bad.chmod(0o755)
    r = pyenv.python_env(Context(python=str(bad), env={}))
    assert "exited with 1" in r.reason and "init_fs_encoding" in r.reason
