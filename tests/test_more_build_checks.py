"""Build checks that no other test names (BW706 cuda-home-matches-nvcc, BW709 ccache-available).

The build_env fact comes from the real probe on this machine, with PATH and CUDA_HOME pointing at toolkit
trees whose nvcc prints a real release's --version output (tests/fixtures/toolkit).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from test_toolkit import toolkit_env

from bwdoctor import registry
from bwdoctor.context import Context
from bwdoctor.model import Finding, Unavailable
from bwdoctor.probes.build import build_env
from bwdoctor.testing import run_check

CHECKS = registry.load(no_plugins=True).checks
NOT_PROBED = Unavailable("not needed here")


def probe(env: dict[str, str]) -> dict:
    return build_env(Context(env=env), NOT_PROBED, NOT_PROBED)


def run(cid: str, fact: dict) -> Finding:
    found: list[Finding] = run_check(CHECKS[cid].func, {"build_env": fact})
    assert len(found) == 1 and found[0].id == cid, found
    return found[0]


def test_bw706_cuda_home_and_path_name_different_toolkits(tmp_path: Path) -> None:
    old, new = toolkit_env(tmp_path, "12.6.85"), toolkit_env(tmp_path, "12.8.93")
    fact = probe({"PATH": f"{old}:/usr/bin:/bin", "CUDA_HOME": str(new.parent)})
    assert fact["nvcc_on_path"] == str(old / "nvcc") and fact["cuda_home"] == str(new.parent)
    f = run("BW706", fact)
    assert (f.status, f.severity, f.kb) == ("fail", "warning", "nvcc-too-old")
    assert f.message.startswith("different nvcc for different build steps")
    assert f.evidence["nvcc"] == {"CUDA_HOME": str(new / "nvcc"), "PATH": str(old / "nvcc")}
    assert "one toolkit" in f.evidence["fix"]


def test_bw706_one_toolkit_also_through_a_symlink(tmp_path: Path) -> None:
    real = toolkit_env(tmp_path, "12.8.93")
    f = run("BW706", probe({"PATH": f"{real}:/usr/bin:/bin", "CUDA_HOME": str(real.parent)}))
    assert f.status == "pass" and f.message == f"one toolkit: {real / 'nvcc'}"
    link = tmp_path / "cuda"  # /usr/local/cuda -> cuda-12.8, as the toolkit installer lays it out
    link.symlink_to(real.parent)
    f = run(
        "BW706",
        probe(
            {"PATH": f"{real}:/usr/bin:/bin", "CUDA_HOME": str(link), "CMAKE_CUDA_COMPILER": str(link / "bin" / "nvcc")}
        ),
    )
    assert f.status == "pass"


def test_bw709_ccache_missing_then_installed(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    fact = probe({"PATH": str(empty)})
    assert fact["ccache"] is None
    f = run("BW709", fact)
    assert (f.status, f.severity, f.kb) == ("fail", "info", "ccache-missing")
    assert "ccache is not installed" in f.message and "apt install ccache" in f.evidence["fix"]

    bindir = tmp_path / "bin"
    bindir.mkdir()
    ccache = bindir / "ccache"
    ccache.write_text("#!/bin/sh\nexit 0\n")
    ccache.chmod(ccache.stat().st_mode | stat.S_IEXEC)
    fact = probe({"PATH": f"{bindir}{os.pathsep}{empty}"})
    assert fact["ccache"] == str(ccache)
    f = run("BW709", fact)
    assert f.status == "pass" and f.message == f"ccache at {ccache}"
