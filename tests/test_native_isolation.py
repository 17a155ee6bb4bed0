"""NVML runs in a child process: a libnvidia-ml.so.1 that crashes, exits, hangs, fails or prints garbage becomes an
Unavailable `nvml` fact with the reason, and bwdoctor still writes a valid report with its normal exit code.

The fakes are real shared objects built with gcc (tests/nativefaults.py) put first on LD_LIBRARY_PATH of the real
CLI, where pynvml's dlopen("libnvidia-ml.so.1") finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nativefaults
import pytest
from conftest import validate_document

COMMANDS = {"check": ["check", "--format", "json"], "facts": ["facts"]}
REASONS = {
    "segfault": "libnvidia-ml.so.1 crashed (SIGSEGV) in nvmlInit",
    "exit": "ended with exit code 0 in nvmlInit without a result",
    "hang": "libnvidia-ml.so.1 hung in nvmlInit",
    "error": "NVIDIA kernel driver not loaded",
}


def _run(argv, lib_dir):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(NO_COLOR="1", BWDOCTOR_PLUGINS="")
    if lib_dir is not None:
        env["LD_LIBRARY_PATH"] = str(lib_dir)
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "bwdoctor", *argv], capture_output=True, text=True, env=env, timeout=60, cwd="/"
    )
    return res, time.monotonic() - t0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every (mode, command) run side by side, plus the same commands with no NVML library at all."""
    work = tmp_path_factory.mktemp("nvml")
    libs = {m: nativefaults.build(work, m) for m in nativefaults.MODES}
    if any(d is None for d in libs.values()):
        pytest.skip("gcc is needed to build the fake libnvidia-ml.so.1")
    out = {}
    # the hung ones wait out the query's timeout side by side while the quick ones run one after another
    # (not all at once: a dozen CLIs started together on a small machine would time the machine, not bwdoctor)
    with ThreadPoolExecutor(max_workers=len(COMMANDS)) as pool:
        hung = {("hang", c): pool.submit(_run, COMMANDS[c], libs["hang"]) for c in COMMANDS}
        for m in (*nativefaults.MODES, None):
            for c in COMMANDS:
                if m != "hang":
                    out[(m, c)] = _run(COMMANDS[c], libs[m] if m else None)
        out.update({k: f.result() for k, f in hung.items()})
    return out


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("mode", nativefaults.MODES)
def test_broken_nvml_gives_a_valid_report(runs, mode, command):
    res, seconds = runs[(mode, command)]
    assert "Traceback" not in res.stderr
    doc = json.loads(res.stdout)  # rc 139 or an empty stdout (exit(0) in nvmlInit) fail here
    validate_document(doc)
    assert seconds < 10, seconds
    nvml = doc["facts"]["nvml"]
    if mode in REASONS:
        assert REASONS[mode] in nvml["$unavailable"]
    else:  # garbage on the library's stdout never becomes the result
        assert nvml.get("driver") != nativefaults.FORGED_DRIVER and nvml["gpus"] == []
    baseline, _ = runs[(None, command)]
    if mode not in ("segfault", "exit", "hang"):  # NVML answered (an error code, or garbage the answer ignores):
        assert res.returncode == baseline.returncode  # a fact of the machine, the exit code of a run without NVML
        assert not nvml.get("$failed")
    else:  # crashed, exited, hung, garbage: the checks that need NVML could not run, which never exits 0
        assert nvml.get("$failed") is True
        if command == "check":
            assert doc["summary"]["probe_failed"] >= 1
            assert res.returncode in (1, 3)
    if command == "check":
        assert doc["findings"], "checks were evaluated"
        assert any(f["status"] != "skip" for f in doc["findings"])


def test_nvml_child_leaves_nothing_running(tmp_path):
    """The hung query is killed with its process group: no child of it is left."""
    from bwdoctor.probes import nvml_query

    lib = nativefaults.build(tmp_path, "hang")
    if lib is None:
        pytest.skip("gcc needed")
    old = os.environ.get("LD_LIBRARY_PATH")
    os.environ["LD_LIBRARY_PATH"] = str(lib)
    try:
        got = nvml_query.isolated(timeout=1.0)
    finally:
        if old is None:
            del os.environ["LD_LIBRARY_PATH"]
        else:
            os.environ["LD_LIBRARY_PATH"] = old
    assert "hung in nvmlInit" in got.reason and "1 s" in got.reason
    assert not [p for p in _my_children() if "nvml_query" in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _my_children():
    me = os.getpid()
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                out.append(int(d.name))
    return out


@pytest.mark.parametrize(
    "stdout, rc, sig, reason",
    [
        ('{"stage": "start"}\n{"stage": "load"}\n', -11, "SIGSEGV", "crashed (SIGSEGV) in loading libnvidia-ml.so.1"),
        ('{"stage": "start"}\n{"stage": "query"}\n', 0, None, "exit code 0 in the per-GPU queries"),
        ("", 1, None, "exit code 1 in start"),
        ('{"stage": "start"}\nxx\n', 0, None, "not its JSON result"),
        ('{"stage": "query"}\n{"result": {"gpus": 3}}\n{"stage": "done"}\n', 0, None, "unexpected shape"),
    ],
)
def test_interpret_names_the_stage(stdout, rc, sig, reason):
    from bwdoctor.context import RunResult
    from bwdoctor.probes.nvml_query import interpret

    res = RunResult(["python"], returncode=rc, stdout=stdout)
    if sig:
        assert res.signal == sig
    assert reason in interpret(res).reason


def test_result_shape_survives_the_child():
    """A whole answer is returned as it was produced: the facts the checks read keep their shape."""
    from bwdoctor.context import RunResult
    from bwdoctor.probes.nvml_query import interpret

    h100 = json.loads((Path(__file__).parent / "fixtures/roots/h100-box/cmd/nvml.json").read_text())
    lines = [{"stage": "start"}, {"stage": "query"}, {"result": h100}, {"stage": "done"}]
    res = RunResult(["python"], returncode=-11, stdout="".join(json.dumps(x) + "\n" for x in lines))
    assert interpret(res) == h100  # a crash at exit, after the answer was whole, loses nothing
