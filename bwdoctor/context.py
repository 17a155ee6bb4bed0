"""What probes may touch: files under the root, the environment, subprocesses with a timeout."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .elf.rootpath import resolve_under
from .model import Unavailable

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
        self.root = Path(os.path.abspath(self.root))  # absolute: a path under it is recognised as the tree's
        # "" for the live machine (also a link to "/"): paths are then used as they are
        self._tree = "" if self.live_machine else str(self.root).rstrip("/")

    @property
    def live_machine(self) -> bool:
        """True when reading the real machine (root is /), so NVML and uname may be used."""
        return self.root.resolve() == Path("/")

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
        """At most `limit` bytes of a machine file; only a regular file is read (a FIFO or device never is)."""
        host = self.resolve(path)
        fd = os.open(host, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(path))
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read(limit)
        finally:
            os.close(fd)

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
            return Unavailable(f"{path} could not be read: {exc.strerror or exc}")

    def run(self, argv: Sequence[str], timeout: float = 5.0, env: Optional[Mapping[str, str]] = None):
        """Run a command (never through a shell) and return CompletedProcess, or Unavailable."""
        try:
            return subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                errors="replace",
            )
        except subprocess.TimeoutExpired:
            return Unavailable(f"{argv[0]} timed out after {timeout:g} s", failed=True)  # not "absent here"
        except FileNotFoundError:
            return Unavailable(f"{argv[0]} not found")
        except PermissionError:
            return Unavailable(f"{argv[0]} is not executable (permission denied)")
        except OSError as exc:
            return Unavailable(f"{argv[0]} could not run: {exc}")
