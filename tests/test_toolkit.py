"""CUDA toolkit parsing and probing on real nvcc/ptxas output, and the nvcc/Triton checks."""

import stat
from pathlib import Path

import pytest

from bwdoctor.checks import stack
from bwdoctor.context import Context
from bwdoctor.domain import cuda
from bwdoctor.probes import toolkit
from bwdoctor.testing import run_check, statuses

TK = Path(__file__).parent / "fixtures" / "toolkit"


@pytest.fixture(autouse=True)
def no_system_toolkits(monkeypatch):
    """Only the toolkits a test builds: this machine's own /usr/local/cuda* stay out."""
    monkeypatch.setattr(toolkit, "STANDARD_NVCC", ())


def text(name):
    return (TK / name).read_text()


def test_parse_release_from_real_outputs():
    assert toolkit.parse_release(text("nvcc-12.6.85-version.txt")) == {"version": "12.6", "full": "12.6.85"}
    assert toolkit.parse_release(text("nvcc-13.0.88-version.txt"))["full"] == "13.0.88"
    assert toolkit.parse_release(text("ptxas-12.9.86-version.txt"))["version"] == "12.9"
    assert toolkit.parse_release("garbage") is None


@pytest.mark.parametrize(
    "ver,has,lacks",
    [
        ("12.6.85", ["sm_90a", "sm_89"], ["sm_120", "sm_100"]),
        ("12.8.93", ["sm_120", "sm_120a", "sm_100a"], ["sm_121", "sm_120f", "sm_103"]),
        ("12.9.86", ["sm_121", "sm_120f", "sm_103", "sm_121a"], []),
        ("13.0.88", ["sm_110", "sm_121f", "sm_75"], ["sm_70", "sm_61"]),
    ],
)
def test_ptxas_help_lists_what_each_release_emits(ver, has, lacks):
    archs = toolkit.parse_ptxas_help(text(f"ptxas-{ver}-help.txt"))
    assert set(has) <= set(archs)
    assert not set(lacks) & set(archs)
    # the version table agrees with what the real binary accepts
    for a in has:
        assert cuda.release_supports(ver, a) is True, a
    for a in lacks:
        assert cuda.release_supports(ver, a) is False, a


def test_nvcc_list_gpu_arch_13():
    archs = toolkit.parse_gpu_arch_list(text("nvcc-13.0.88-list-gpu-arch.txt"))
    assert archs[0] == "compute_75" and "compute_121" in archs


def test_min_driver_table():
    assert cuda.min_driver_for("12.8") == ("570.26", "525.60.13")
    assert cuda.min_driver_for("13.0") == ("580.65.06", "580.65.06")
    assert cuda.min_driver_for("12.7") == ("560.28.03", "525.60.13")  # no 12.7 GA: newest known below
    assert cuda.min_driver_for("x") == (None, None)


def fake_tool(bindir: Path, name: str, version_text: str, help_text: str = "", archs_text: str = ""):
    """An executable that prints real captured output of a toolkit binary."""
    bindir.mkdir(parents=True, exist_ok=True)
    for fname, body in (("version", version_text), ("help", help_text), ("archs", archs_text)):
        (bindir / f".{name}.{fname}").write_text(body)
    script = bindir / name
    script.write_text(f"""#!/bin/sh
case "$1" in
  --version) cat "{bindir}/.{name}.version";;
  --help) cat "{bindir}/.{name}.help";;
  --list-gpu-arch|--list-gpu-code) cat "{bindir}/.{name}.archs";;
  *) exit 1;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def toolkit_env(tmp_path, ver):
    """A CUDA tree whose nvcc prints release `ver`'s real --version and whose ptxas prints its real --help."""
    bindir = tmp_path / f"cuda-{ver}" / "bin"
    fake_tool(
        bindir,
        "nvcc",
        text(f"nvcc-{ver}-version.txt")
        if (TK / f"nvcc-{ver}-version.txt").exists()
        else text(f"ptxas-{ver}-version.txt"),
    )
    fake_tool(bindir, "ptxas", text(f"ptxas-{ver}-version.txt"), text(f"ptxas-{ver}-help.txt"))
    return bindir


@pytest.mark.parametrize("ver,status", [("12.6.85", "fail"), ("12.8.93", "pass")])
def test_nvcc_first_on_path_for_sm120(tmp_path, ver, status):
    bindir = toolkit_env(tmp_path, ver)
    ctx = Context(env={"PATH": f"{bindir}:/usr/bin:/bin"}, targets=["sm_120"])
    fact = toolkit.cuda_toolkits(ctx)
    first = fact["toolkits"][0]
    assert first["path"] == str(bindir / "nvcc") and first["version"] == ver[:4]
    assert first["arch_source"] == "ptxas --help"
    f = run_check(stack.nvcc_supports_target, {"targets": ["sm_120"], "cuda_toolkits": fact})
    assert statuses(f) == [status]
    if status == "fail":
        assert "cannot compile for sm_120" in f[0].message and f[0].evidence["nvcc_version"] == "12.6"


def test_sm103_needs_12_9(tmp_path):
    fact = toolkit.cuda_toolkits(Context(env={"PATH": str(toolkit_env(tmp_path, "12.8.93"))}))
    assert statuses(run_check(stack.nvcc_supports_target, {"targets": ["sm_103"], "cuda_toolkits": fact})) == ["fail"]


def test_older_nvcc_shadows_newer(tmp_path):
    old, new = toolkit_env(tmp_path, "12.6.85"), toolkit_env(tmp_path, "12.8.93")
    fact = toolkit.cuda_toolkits(Context(env={"PATH": f"{old}:{new}"}))
    assert fact["path_order"] == [str(old / "nvcc"), str(new / "nvcc")]
    f = run_check(stack.nvcc_not_shadowed, {"cuda_toolkits": fact})
    assert statuses(f) == ["fail"] and str(new / "nvcc") in f[0].message
    f = run_check(stack.nvcc_supports_target, {"targets": ["sm_120"], "cuda_toolkits": fact})
    assert f[0].message.endswith(f"{new / 'nvcc'} (CUDA 12.8) can") and f"PATH={new}:" in f[0].evidence["fix"]
    assert statuses(
        run_check(
            stack.nvcc_not_shadowed, {"cuda_toolkits": toolkit.cuda_toolkits(Context(env={"PATH": f"{new}:{old}"}))}
        )
    ) == ["pass"]


def test_cuda_home_wins_over_path(tmp_path):
    old, new = toolkit_env(tmp_path, "12.6.85"), toolkit_env(tmp_path, "12.8.93")
    fact = toolkit.cuda_toolkits(Context(env={"PATH": str(old), "CUDA_HOME": str(new.parent)}))
    assert fact["used"] == str(new / "nvcc")


def test_hanging_nvcc_times_out(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    nvcc = bindir / "nvcc"
    nvcc.write_text("#!/bin/sh\nsleep 30\n")
    nvcc.chmod(0o755)
    monkeypatch.setattr(toolkit, "TIMEOUT", 0.5)
    fact = toolkit.cuda_toolkits(Context(env={"PATH": str(bindir)}))
    assert "timed out after 0.5 s" in fact["toolkits"][0]["error"]


@pytest.mark.parametrize("ver,status", [("12.6.85", "fail"), ("12.8.93", "pass")])
def test_triton_ptxas_path(tmp_path, ver, status):
    ptxas = toolkit_env(tmp_path, ver) / "ptxas"
    fact = toolkit.triton_ptxas(Context(env={"TRITON_PTXAS_PATH": str(ptxas)}), {})
    assert fact["via"] == "TRITON_PTXAS_PATH" and fact["version"] == ver[:4]
    f = run_check(
        stack.triton_ptxas_supports_target,
        {"targets": ["sm_120"], "triton_ptxas": fact, "cuda_toolkits": {"toolkits": [], "path_order": []}},
    )
    assert statuses(f) == [status]


def test_captured_root_toolkit():
    root = Path(__file__).parent / "fixtures" / "roots" / "h100-box"
    fact = toolkit.cuda_toolkits(Context(root=root, env={}))
    assert fact["toolkits"][0]["version"] == "13.0" and "compute_120" in fact["toolkits"][0]["archs"]
