"""The shipped pre-commit hook, run by pre-commit itself in a throwaway repository, blocks a bad build."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_toolkit import toolkit_env

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not shutil.which("git"), reason="git not installed")


def precommit(tmp_path, **env):
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "setup.py").write_text("# a CUDA extension project\n")
    run = lambda *a: subprocess.run(a, cwd=repo, capture_output=True, text=True, timeout=120)
    run("git", "init", "-q")
    run("git", "add", "setup.py")
    bindir = os.path.dirname(sys.executable)
    e = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pc-home"),
        "BWDOCTOR_NVCC_SEARCH": "path",
        "PATH": f"{toolkit_env(tmp_path, '12.8.93')}:{bindir}:/usr/bin:/bin",
        "BWDOCTOR_TARGET": "sm_120",
        "NO_COLOR": "1",
        **env,
    }
    for var in ("CUDA_HOME", "CUDA_PATH", "VIRTUAL_ENV", "CONDA_PREFIX"):
        e.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "bwdoctor-prebuild", "--all-files", "--verbose"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=e,
    )


def test_hook_blocks_an_arch_list_without_the_target(tmp_path):
    res = precommit(tmp_path, TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0", MAX_JOBS="1")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "BW701" in res.stdout and "Failed" in res.stdout


def test_hook_passes_a_good_setup(tmp_path):
    res = precommit(tmp_path, TORCH_CUDA_ARCH_LIST="12.0", MAX_JOBS="1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Passed" in res.stdout
