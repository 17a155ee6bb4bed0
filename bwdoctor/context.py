"""What probes may touch: files under the root, the environment, subprocesses with a timeout."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from .model import Unavailable

DEFAULT_READ_LIMIT = 4 * 1024 * 1024  # /proc and /sys files are small; never read more than this


@dataclass
class Context:
    """Options of one run, handed to every probe.

    root: every file of the machine is read under it ("/" = the live machine).
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

    @property
    def live_machine(self) -> bool:
        """True when reading the real machine (root is /), so NVML and uname may be used."""
        return self.root.resolve() == Path("/")

    def host_path(self, path: str) -> Path:
        """The path of a machine file under the root ("/proc/modules" → ROOT/proc/modules)."""
        rel = path.lstrip("/")
        return self.root / rel if rel else self.root

    def read_text(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> str:
        """Read a machine file under the root as text (bounded; undecodable bytes replaced)."""
        with open(self.host_path(path), "rb") as fh:
            data = fh.read(limit)
        return data.decode("utf-8", errors="replace")

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
            return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                                  env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL,
                                  errors="replace")
        except subprocess.TimeoutExpired:
            return Unavailable(f"{argv[0]} timed out after {timeout:g} s")
        except FileNotFoundError:
            return Unavailable(f"{argv[0]} not found")
        except PermissionError:
            return Unavailable(f"{argv[0]} is not executable (permission denied)")
        except OSError as exc:
            return Unavailable(f"{argv[0]} could not run: {exc}")
