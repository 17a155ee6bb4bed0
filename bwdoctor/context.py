"""What probes may touch: files under the root, the environment, subprocesses with a timeout."""

from __future__ import annotations

import atexit
import fnmatch
import os
import signal
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import fileio
from .elf.rootpath import resolve_under
from .model import Unavailable
from .records import dataclass, field

if TYPE_CHECKING:
    import subprocess

ENVIRON_LIMIT = 1 << 20  # /proc/PID/environ of a real process is far smaller
DEFAULT_READ_LIMIT = 4 * 1024 * 1024  # /proc and /sys files are small; never read more than this


@dataclass
class Context:
    """Options of one run, handed to every probe.

    root: every file of the machine is read under it ("/" = the live machine); fixed once constructed.
    python: the interpreter whose environment is inspected (None = pick the default).
    env: the environment variables of the inspected process (normally os.environ).
    targets: --target values (e.g. ["sm_120"]); empty = what the GPUs say.
    """

    root: Path = Path("/")
    python: Optional[str] = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    targets: Sequence[str] = ()
    configs: Sequence[str] = ()
    live: bool = False
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._shared: dict = {}  # once-per-run readings several probes use (see shared())
        self._shared_lock = threading.Lock()
        self.root = Path(os.path.abspath(self.root))  # absolute: a path under it is recognised as the tree's
        # "" for the live machine (also a link to "/"): paths are then used as they are
        self._tree = "" if self.live_machine else str(self.root).rstrip("/")

    @property
    def live_machine(self) -> bool:
        """True when reading the real machine (root is /), so NVML and uname may be used."""
        return self.root.resolve() == Path("/")

    def shared(self, name: str, read: Any) -> Any:
        """read(self), done once per run for every probe that asks under the same name (the others wait for it):
        one walk of /proc for every reader of running servers."""
        with self._shared_lock:
            box = self._shared.get(name)
            if box is None:
                box = self._shared[name] = [threading.Lock(), None, False]
        with box[0]:
            if not box[2]:
                box[1], box[2] = read(self), True
        return box[1]

    def host_path(self, path: str) -> Path:
        """The path of a machine file under the root ("/proc/modules" → ROOT/proc/modules)."""
        rel = path.lstrip("/")
        return self.root / rel if rel else self.root

    # The door: every helper below takes a MACHINE path ("/usr/lib/python3.12") and reads the file that path
    # names on the inspected machine. Under --root a symlink in any component is followed inside the tree
    # (an absolute target restarts at the tree's root), so a container image never reaches the host's files.

    @property
    def in_tree(self) -> bool:
        """True when the machine is a --root tree (not the live machine "/")."""
        return bool(self._tree)

    def resolve(self, path: str) -> Path:
        """The host path of the file a machine path names (symlinks resolved inside the tree; OSError on a loop)."""
        if not self._tree:
            return Path(path)
        return Path(self._tree + resolve_under(self._tree, path))

    def realpath(self, path: str) -> str:
        """The machine path a machine path ends at once every symlink is followed (inside the tree)."""
        if not self._tree:
            return os.path.realpath(path)
        return resolve_under(self._tree, path)

    def machine_path(self, host: str) -> str:
        """The machine path of a host path under the root (a path outside the tree is returned as it is)."""
        host = str(host)
        if self._tree and (host == self._tree or host.startswith(self._tree + "/")):
            return host[len(self._tree) :] or "/"
        return host

    def stat(self, path: str) -> os.stat_result:
        """os.stat of a machine file (raises OSError)."""
        return os.stat(self.resolve(path))

    def lstat(self, path: str) -> os.stat_result:
        """os.lstat of a machine path: a final symlink is not followed (raises OSError)."""
        if not self._tree:
            return os.lstat(path)
        parent, name = os.path.split(os.path.normpath("/" + path.lstrip("/")))
        return os.lstat(os.path.join(self.resolve(parent), name) if name else self._tree)

    def has_path(self, path: str) -> bool:
        """Whether a path given by the user names something on the machine. A host path under the root counts as
        its machine path; in a tree a symlink counts even when it points outside the tree (it is read, never run)."""
        if not self._tree:
            return os.path.exists(path)
        try:
            self.lstat(self.machine_path(path))
        except (OSError, ValueError):
            return False
        return True

    def exists(self, path: str) -> bool:
        """True when the machine path names something (a dangling symlink does not)."""
        try:
            self.stat(path)
        except (OSError, ValueError):
            return False
        return True

    def is_dir(self, path: str) -> bool:
        """True when the machine path names a directory (after symlinks)."""
        try:
            return stat.S_ISDIR(self.stat(path).st_mode)
        except (OSError, ValueError):
            return False

    def is_file(self, path: str) -> bool:
        """True when the machine path names a regular file (after symlinks)."""
        try:
            return stat.S_ISREG(self.stat(path).st_mode)
        except (OSError, ValueError):
            return False

    def listdir(self, path: str) -> List[str]:
        """Names in a machine directory, sorted (raises OSError like os.listdir)."""
        return sorted(os.listdir(self.resolve(path)))

    def glob(self, pattern: str) -> List[str]:
        """Machine paths matching a pattern whose wildcards are in the last component only, sorted."""
        parent, name = os.path.split(pattern)
        try:
            names = self.listdir(parent or "/")
        except OSError:
            return []
        return [os.path.join(parent, n) for n in fnmatch.filter(names, name) if not n.startswith(".")]

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        """At most `limit` bytes of a machine file; only a regular file is read (a FIFO, device, socket or
        directory raises fileio.NotRegularFile, an OSError, without blocking)."""
        return fileio.read_bytes(self.resolve(path) if self._tree else path, limit)  # no Path for the live machine

    def read_text(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> str:
        """Read a machine file under the root as text (bounded; undecodable bytes replaced)."""
        return self.read_bytes(path, limit).decode("utf-8", errors="replace")

    def walk(self, top: str, max_depth: int = 8) -> Iterator[Tuple[str, List[str], List[str]]]:
        """os.walk of a machine directory, yielding machine paths, never following a symlinked directory and
        never deeper than `max_depth` levels below `top`. Prune by editing the yielded dirnames in place."""
        try:
            base = str(self.resolve(top)).rstrip("/") or "/"
        except OSError:
            return
        mtop = "/" + top.strip("/") if top.strip("/") else "/"
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            rel = os.path.relpath(dirpath, base)
            depth = 0 if rel == "." else rel.count("/") + 1
            dirnames.sort()
            names = dirnames
            if depth >= max_depth:  # the caller still sees the names; nothing below them is walked
                names = list(dirnames)
                del dirnames[:]
            yield (mtop if rel == "." else os.path.join(mtop, rel)), names, sorted(filenames)

    def recorded_environment(self) -> Dict[str, str]:
        """The environment variables the machine itself records (options['tree_env'], else /proc/1/environ of a
        captured machine or unpacked image); never the environment bwdoctor runs in."""
        given = self.options.get("tree_env")
        if isinstance(given, dict):
            return {str(k): str(v) for k, v in given.items()}
        try:
            raw = self.read_bytes("/proc/1/environ", limit=ENVIRON_LIMIT)
        except (OSError, ValueError):
            return {}
        out: Dict[str, str] = {}
        for item in raw.decode("utf-8", "replace").split("\0"):
            key, sep, val = item.partition("=")
            if sep and key:
                out[key] = val
        return out

    def read_or_unavailable(self, path: str, limit: int = DEFAULT_READ_LIMIT):
        """Text of a machine file, or Unavailable naming the file and the reason."""
        try:
            return self.read_text(path, limit)
        except FileNotFoundError:
            return Unavailable(f"{path} does not exist")
        except PermissionError:
            return Unavailable(f"{path} is not readable (permission denied)")
        except OSError as exc:
            return Unavailable(f"{path} could not be read: {fileio.describe(exc)}")

    def run(
        self,
        argv: Sequence[str],
        timeout: float = 5.0,
        env: Optional[Mapping[str, str]] = None,
        input: Optional[str] = None,
        limit: Optional[int] = None,
    ):
        """Run a command (never through a shell) and return CompletedProcess, or Unavailable.

        The command runs in its own session; on a timeout, on output past `limit` bytes (per stream) and when it
        ends, whatever is left of its process group is killed, so no child of it outlives the call."""
        res = run_bounded(argv, timeout=timeout, env=env, input=input, limit=limit or OUTPUT_LIMIT)
        if res.error is not None:  # a timeout or a runaway is a failure, not "absent here"
            return Unavailable(res.error, failed=res.timed_out or res.overflow)
        import subprocess  # imported by the runs that start a command (a warm check starts none)

        return subprocess.CompletedProcess(
            list(argv), res.returncode if res.returncode is not None else -1, res.stdout, res.stderr
        )


OUTPUT_LIMIT = 16 * 1024 * 1024  # per stream: the tools bwdoctor runs print kilobytes; more is a runaway
_LIVE_GROUPS: set = set()  # process groups started and not yet ended (killed at exit: no orphans)
_LIVE_LOCK = threading.Lock()


@dataclass
class RunResult:
    """What a bounded run ended with. error is None when the command ran to its end (any exit status);
    else it is the sentence to report (not found, timed out, printed too much...)."""

    argv: List[str]
    returncode: Optional[int] = None
    stdout: str = ""
    stderr: str = ""
    error: Optional[str] = None
    timed_out: bool = False
    overflow: bool = False

    @property
    def signal(self) -> Optional[str]:
        """The name of the signal that ended the command (SIGSEGV...), when one did."""
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _kill_live_groups() -> None:
    """A probe abandoned at its budget may still wait on a child: end its group with bwdoctor."""
    with _LIVE_LOCK:
        groups = list(_LIVE_GROUPS)
    for pgid in groups:
        _kill_group(pgid)


def _kill_session_children() -> None:
    """Kill the group of each child of this process that leads its own group: a command whose Popen had not yet
    returned (so not yet in _LIVE_GROUPS) when the signal came."""
    me = os.getpid()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read(4096).rsplit(b")", 1)[1].split()
            if int(fields[1]) == me and int(fields[2]) == pid:  # ppid, pgrp
                _kill_group(pid)
        except (OSError, IndexError, ValueError):
            continue


def _end_with_groups(signum: int, frame: object) -> None:
    """SIGTERM / SIGHUP: end the commands' groups (their own sessions do not get the signal), then die of it."""
    _kill_live_groups()
    _kill_session_children()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_HANDLERS_SET = False


def watch_termination() -> None:
    """Once, from the main thread, where nobody else handles them: SIGTERM and SIGHUP kill the live groups too
    (atexit does not run when a signal ends the process). The engine calls it before probes start commands from
    their threads, where it cannot be set."""
    global _HANDLERS_SET
    if _HANDLERS_SET or threading.current_thread() is not threading.main_thread():
        return
    _HANDLERS_SET = True
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _end_with_groups)
        except (ValueError, OSError):  # not settable here
            pass


def _exited(proc: subprocess.Popen) -> bool:
    """Whether the child ended, without reaping it (its pid, hence its process group id, stays reserved).
    Where os.waitid is missing (macOS before Python 3.13) the child is polled, which reaps it."""
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None and info.si_pid == proc.pid


def run_bounded(
    argv: Sequence[str],
    timeout: float = 5.0,
    env: Optional[Mapping[str, str]] = None,
    input: Optional[str] = None,
    limit: int = OUTPUT_LIMIT,
    cwd: Optional[str] = None,
) -> RunResult:
    """Run a command without a shell, in its own session, reading stdout/stderr as they come.

    At most `limit` bytes of each stream are kept: past that the command is killed (overflow). At `timeout`
    seconds it is killed (timed_out). When the command ends, or is killed, every process left in its process
    group (children it started) gets SIGKILL before the call returns, and the command is reaped."""
    argv = list(argv)
    name = argv[0] if argv else "?"
    out = RunResult(argv)
    watch_termination()
    import subprocess  # imported by the runs that start a command (a warm check starts none)

    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError:
        out.error = f"{name} not found"
        return out
    except PermissionError:
        out.error = f"{name} is not executable (permission denied)"
        return out
    except (OSError, ValueError) as exc:
        out.error = f"{name} could not run: {exc}"
        return out
    pgid = proc.pid  # start_new_session: the child leads a new session and process group
    with _LIVE_LOCK:
        _LIVE_GROUPS.add(pgid)
    bufs: Dict[int, bytearray] = {}
    deadline = time.monotonic() + timeout
    try:
        _pump(proc, input, limit, deadline, bufs, out)
        while not (out.timed_out or out.overflow) and not _exited(proc):  # pipes closed; the exit follows
            if time.monotonic() >= deadline:
                out.timed_out = True
                break
            time.sleep(0.005)
    finally:
        _kill_group(pgid)  # what the command left running (or all of it, on a timeout or overflow)
        for fh in (proc.stdin, proc.stdout, proc.stderr):
            if fh is not None:
                try:
                    fh.close()
                except OSError:
                    pass
        try:
            proc.wait(timeout=5.0)  # SIGKILL cannot be refused; only a process we may not signal outlives this
        except subprocess.TimeoutExpired:
            out.timed_out = True
        with _LIVE_LOCK:
            _LIVE_GROUPS.discard(pgid)
    out.returncode = proc.returncode
    out.stdout = bytes(bufs.get(1, b"")).decode("utf-8", "replace")
    out.stderr = bytes(bufs.get(2, b"")).decode("utf-8", "replace")
    if out.timed_out:
        out.error = f"{name} timed out after {timeout:g} s"
    elif out.overflow:
        out.error = f"{name} printed more than {limit // (1024 * 1024) or 1} MiB and was stopped"
    return out


def _pump(proc: subprocess.Popen, input: Optional[str], limit: int, deadline: float, bufs: dict, out: RunResult):
    """Feed stdin and collect stdout (key 1) and stderr (key 2) until both close, the deadline or an overflow."""
    assert proc.stdout is not None and proc.stderr is not None
    import selectors

    sel = selectors.DefaultSelector()
    keys = {proc.stdout.fileno(): 1, proc.stderr.fileno(): 2}
    for fd, key in keys.items():
        os.set_blocking(fd, False)
        bufs[key] = bytearray()
        sel.register(fd, selectors.EVENT_READ)
    pending = memoryview(input.encode("utf-8", "replace")) if input is not None else None
    stdin_fd = proc.stdin.fileno() if proc.stdin is not None else -1
    if proc.stdin is not None:
        os.set_blocking(stdin_fd, False)
        if pending is not None and len(pending):
            sel.register(stdin_fd, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
    exited_at: Optional[float] = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                out.timed_out = True
                return
            if exited_at is None and _exited(proc):
                exited_at = now
                _kill_group(proc.pid)  # children still holding the pipes would keep them open past the end
            for k, _ in sel.select(timeout=min(0.05, deadline - now)):
                fd = k.fd
                if fd == stdin_fd and proc.stdin is not None:
                    try:
                        assert pending is not None
                        n = os.write(fd, pending[:65536])
                        pending = pending[n:]
                    except BlockingIOError:
                        continue
                    except OSError:  # the command closed its stdin (EPIPE): it wants no more
                        pending = pending[:0] if pending is not None else None
                    if not pending:
                        sel.unregister(fd)
                        proc.stdin.close()
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(fd)
                    continue
                buf = bufs[keys[fd]]
                room = limit - len(buf)
                buf += chunk[: max(0, room)]
                if len(chunk) > room:
                    out.overflow = True
                    return
    finally:
        sel.close()
