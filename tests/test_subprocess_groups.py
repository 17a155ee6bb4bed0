"""Every command bwdoctor runs (Context.run, run_bounded) is in its own session: at a timeout the whole process
group is killed and reaped, nothing it started outlives the call, and what it prints is capped."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from bwdoctor.context import Context, run_bounded
from bwdoctor.model import Unavailable


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is dead: it was killed)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_dead(pid: int, seconds: float = 2.0) -> bool:
    end = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.02)
    return not _alive(pid)


CHILD_WITH_GRANDCHILD = (
    "import os, subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(os.getpid(), g.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def test_timeout_kills_child_and_grandchild():
    res = run_bounded([sys.executable, "-c", CHILD_WITH_GRANDCHILD], timeout=2.0)
    assert res.timed_out and res.error == f"{sys.executable} timed out after 2 s"
    child, grandchild = (int(x) for x in res.stdout.split())
    assert grandchild != child
    assert _wait_dead(child) and _wait_dead(grandchild), "a process of the timed-out group is still running"


def test_context_run_timeout_is_unavailable_and_leaves_no_orphan():
    script = "import subprocess, sys, time\nsubprocess.Popen(['sleep', '600'])\ntime.sleep(600)\n"
    before = set(_sleepers())
    got = Context().run([sys.executable, "-c", script], timeout=1.0)
    assert isinstance(got, Unavailable) and "timed out after 1 s" in got.reason
    assert not [p for p in set(_sleepers()) - before if _wait_dead(p) is False]


def test_children_left_behind_by_a_finished_command_are_killed():
    """A command that exits at once but leaves a background child: the child does not survive the call."""
    res = run_bounded(["sh", "-c", "sleep 600 & echo $!"], timeout=10.0)
    assert res.error is None and res.returncode == 0
    assert _wait_dead(int(res.stdout.strip()))


def test_own_session():
    res = run_bounded([sys.executable, "-c", "import os; print(os.getsid(0), os.getpgid(0), os.getpid())"])
    sid, pgid, pid = (int(x) for x in res.stdout.split())
    assert sid == pgid == pid != os.getsid(0)


def test_endless_output_is_capped():
    """A child printing forever (a --python that loops on print) is stopped at the cap; what is kept is bounded."""
    limit = 1 << 20
    res = run_bounded([sys.executable, "-c", "import sys\nwhile True: sys.stdout.write('x' * 65536)"], limit=limit)
    assert res.overflow and not res.timed_out
    assert len(res.stdout) == limit and len(res.stderr) == 0
    assert "printed more than 1 MiB" in (res.error or "")
    got = Context().run(["yes"], limit=limit)
    assert isinstance(got, Unavailable) and "printed more than 1 MiB and was stopped" in got.reason


def test_endless_stderr_is_capped_too():
    res = run_bounded(["sh", "-c", "yes >&2"], limit=1 << 16)
    assert res.overflow and len(res.stderr) == 1 << 16


def test_exit_status_signal_and_input():
    res = run_bounded(["sh", "-c", "kill -SEGV $$"])
    assert res.returncode == -11 and res.signal == "SIGSEGV" and res.error is None
    big = "".join(f"line {i}\n" for i in range(200_000))  # more than a pipe buffer: fed while output is read
    got = Context().run(["cat"], input=big)
    assert got.returncode == 0 and got.stdout == big
    assert isinstance(Context().run(["/nonexistent/tool"]), Unavailable)


def _sleepers():
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes() == b"sleep\x00600\x00":
                    out.append(int(d.name))
            except OSError:
                pass
    return out


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_python_probe_with_runaway_output_keeps_memory_bounded(tmp_path):
    """A --python whose startup prints forever: python_env is Unavailable and bwdoctor's memory stays bounded."""
    exe = tmp_path / "python3"
    exe.write_text("#!/bin/sh\nexec yes\n")
    exe.chmod(0o755)
    from bwdoctor.probes.pyenv import python_env

    before = _rss()
    got = python_env(Context(python=str(exe)))
    assert isinstance(got, Unavailable) and "printed more than" in got.reason
    assert _rss() - before < 200 * 1024 * 1024


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_a_command_still_running_when_bwdoctor_exits_is_killed(tmp_path):
    """A probe abandoned at its budget leaves its command running in a daemon thread: bwdoctor's exit ends it."""
    marker = tmp_path / "pid"
    script = (
        "import threading, time, sys\n"
        "from bwdoctor.context import run_bounded\n"
        f"argv = ['sh', '-c', 'echo $$ > {marker}; exec sleep 600']\n"
        "threading.Thread(target=run_bounded, args=(argv,), kwargs={'timeout': 300}, daemon=True).start()\n"
        f"while not __import__('os').path.exists('{marker}'): time.sleep(0.01)\n"
        "time.sleep(0.2)\n"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", script], timeout=60, check=True)
    pid = int(marker.read_text().split()[0])
    assert _wait_dead(pid), "the command outlived the bwdoctor process that started it"


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_command_still_running_when_bwdoctor_is_terminated_is_killed(tmp_path, sig):
    """A service manager stops bwdoctor with SIGTERM (or the terminal hangs up): the commands it started in their
    own sessions do not get that signal, so bwdoctor must end them before it dies, and it still dies of it."""
    import signal as _signal
    import subprocess

    marker = tmp_path / "pid"
    script = (
        "import time\n"
        "from bwdoctor.context import run_bounded\n"
        f"run_bounded(['sh', '-c', 'echo $$ > {marker}; exec sleep 600'], timeout=300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text().strip():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.02)
        pid = int(marker.read_text().split()[0])
        proc.send_signal(getattr(_signal, sig))
        assert proc.wait(timeout=30) == -getattr(_signal, sig)
    finally:
        proc.kill()
    assert _wait_dead(pid), f"the command outlived the bwdoctor process ended by {sig}"


def test_a_command_not_yet_registered_is_killed_with_bwdoctor_too(tmp_path):
    """A signal that comes while a command's Popen has not returned (its group not yet recorded) still ends it:
    every child of bwdoctor that leads its own group is killed on the way out."""
    import signal as _signal
    import subprocess

    marker = tmp_path / "pid"
    script = (
        "import subprocess, time\n"
        "from bwdoctor.context import watch_termination\n"
        "watch_termination()\n"
        f"subprocess.Popen(['sh', '-c', 'echo $$ > {marker}; exec sleep 600'], start_new_session=True)\n"
        "time.sleep(300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text().strip():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.02)
        pid = int(marker.read_text().split()[0])
        proc.send_signal(_signal.SIGTERM)
        assert proc.wait(timeout=30) == -_signal.SIGTERM
    finally:
        proc.kill()
    assert _wait_dead(pid), "the command outlived the bwdoctor process ended by SIGTERM"
