"""The one door to files bwdoctor did not write: only a regular file is opened, and every read is bounded.

A path given on the command line or found on the inspected machine may name a FIFO (an open would block until
a writer comes), a device (/dev/zero never ends; opening some devices has effects), a socket, a directory, a
symlink loop, or a file of many GiB. `open_regular` stats the path first (so a device is never opened), opens
it with O_NONBLOCK (so a FIFO swapped in after the stat cannot block the open), then checks the open file again
with fstat. Anything but a regular file raises `NotRegularFile`; a file over a bound raises `TooLarge`. Both are
OSError, so callers that already turn OSError into a message or an Unavailable keep working; `describe` gives
the one-line reason for people.
"""

from __future__ import annotations

import errno
import os
import select
import stat
from collections import deque
from typing import BinaryIO, Optional, Tuple

from .records import dataclass

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


class NotRegularFile(OSError):
    """The path names a FIFO, a device, a socket or a directory, not a regular file."""


class TooLarge(OSError):
    """The file is larger than the bound for what it should hold."""


def kind_of(mode: int) -> str:
    """What a file mode names, in words ("a FIFO (named pipe)", "a directory", ...)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def _not_regular(path: str, mode: int) -> NotRegularFile:
    err = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
    return NotRegularFile(err, f"is {kind_of(mode)}, not a regular file", str(path))


def mib(n: float) -> str:
    """A byte count for messages ("64 MiB", "1.5 MiB", "300 KiB")."""
    if n < 1 << 20:
        return f"{n / 1024:.0f} KiB"
    v = n / (1 << 20)
    return f"{v:.0f} MiB" if v >= 10 or v == int(v) else f"{v:.1f} MiB"


def open_regular(path: "str | os.PathLike[str]", max_size: Optional[int] = None) -> int:
    """A read-only descriptor of a regular file (the caller closes it).

    Raises NotRegularFile for anything else, TooLarge when max_size is given and the file is larger, and the
    usual OSError (FileNotFoundError, PermissionError, ELOOP for a symlink loop) when it cannot be opened."""
    return _open_regular(path, max_size)[0]


def _open_regular(path: "str | os.PathLike[str]", max_size: Optional[int]) -> "tuple[int, os.stat_result]":
    path = os.fspath(path)
    st = os.stat(path)  # a device is never opened: opening some (tapes, watchdogs) has effects
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    fd = os.open(path, OPEN_FLAGS)
    try:
        st = os.fstat(fd)  # what was opened, not what was stat'ed: the path may have changed in between
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        if max_size is not None and st.st_size > max_size:
            raise TooLarge(errno.EFBIG, f"is {mib(st.st_size)}; the limit is {mib(max_size)}", path)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_file(path: "str | os.PathLike[str]", max_size: Optional[int] = None) -> BinaryIO:
    """A binary file object of a regular file (see open_regular), for readers that seek or mmap."""
    return os.fdopen(open_regular(path, max_size), "rb")


def read_bytes(path: "str | os.PathLike[str]", limit: int, *, strict: bool = False) -> bytes:
    """At most `limit` bytes of a regular file; with strict=True a larger file raises TooLarge instead.

    Read straight from the descriptor, sized by the file: a buffered read of `limit` bytes allocates all of them
    first, which for the hundreds of small /proc and /sys files a run reads cost more than the reading."""
    fd, st = _open_regular(path, limit if strict else None)
    try:
        # a /proc or /sys file says size 0 (or 4096) whatever it holds: read it in pieces until it ends
        data = _read_upto(fd, limit + 1 if strict else limit, 65536 if st.st_size in (0, 4096) else st.st_size + 1)
    finally:
        os.close(fd)
    if strict and len(data) > limit:  # grew since the fstat
        raise TooLarge(errno.EFBIG, f"is larger than {mib(limit)}", os.fspath(path))
    return data


def is_dir_error(exc: BaseException) -> bool:
    """True when an OSError says the path is a directory."""
    return isinstance(exc, OSError) and exc.errno == errno.EISDIR


def describe(exc: BaseException) -> str:
    """The reason an OSError gives, in words for one line ("is a FIFO (named pipe), not a regular file")."""
    if isinstance(exc, (NotRegularFile, TooLarge)):
        return str(exc.strerror)
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symlink loop)"
    if isinstance(exc, OSError) and exc.errno == errno.ENXIO:
        return "no such device or address (a socket or a device without a driver)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc)


# -- text given to read once: a log file, a pipe, a terminal (`explain --log FILE`, `explain -`) --------------

DRAIN_LIMIT = 1 << 30  # a pipe that never ends (`yes | ...`) is read this far, then left


@dataclass
class Input:
    """Bytes read once from a named input, and a note when they are not all of it."""

    data: bytes
    note: Optional[str] = None


class _Keep:
    """The first and the last `limit // 2` bytes of a stream, in bounded memory."""

    def __init__(self, limit: int) -> None:
        self.half = max(1, limit // 2)
        self.head = bytearray()
        self.tail: "deque[bytes]" = deque()
        self.tail_len = 0
        self.total = 0

    def add(self, block: bytes) -> None:
        self.total += len(block)
        room = self.half - len(self.head)
        if room > 0:
            self.head += block[:room]
            block = block[room:]
        if block:
            self.tail.append(block)
            self.tail_len += len(block)
            while self.tail and self.tail_len - len(self.tail[0]) >= self.half:
                self.tail_len -= len(self.tail.popleft())

    def result(self, what: str, stopped: Optional[str] = None) -> Input:
        tail = b"".join(self.tail)
        cut = len(tail) > self.half
        tail = tail[-self.half :]
        data = bytes(self.head) + (b"\n" if cut else b"") + tail
        notes = []
        if cut:
            notes.append(
                f"{what} was {mib(self.total)}; only its first and last {mib(self.half)} were read "
                f"(the middle {mib(self.total - len(self.head) - len(tail))} was skipped)"
            )
        if stopped:
            notes.append(stopped)
        return Input(data, "; ".join(notes) or None)


def _read_regular(fd: int, limit: int, what: str) -> Input:
    size = os.fstat(fd).st_size
    if size <= limit:
        keep = _Keep(limit)
        keep.add(_read_upto(fd, limit))
        return keep.result(what)
    half = max(1, limit // 2)
    head = os.pread(fd, half, 0)
    tail = os.pread(fd, half, max(half, size - half))
    skipped = size - len(head) - len(tail)
    return Input(
        head + b"\n" + tail,
        f"{what} is {mib(size)}; only its first and last {mib(half)} were read (the middle {mib(skipped)} was skipped)",
    )


def _read_upto(fd: int, limit: int, first: int = 1 << 20) -> bytes:
    """At most `limit` bytes from fd: a first read of `first` bytes, then 1 MiB at a time until it ends."""
    chunks, got, size = [], 0, first
    while got < limit:
        block = os.read(fd, min(size, limit - got))
        if not block:
            break
        chunks.append(block)
        got += len(block)
        size = 1 << 20
    return b"".join(chunks)


def _drain(fd: int, limit: int, what: str, wait: Optional[float], named_fifo: bool) -> Input:
    """Read a pipe, FIFO or socket until its writer closes it, keeping its head and tail.

    wait: seconds without data after which reading stops (None: until the writer closes it). When nothing came
    at all, that is an error: a FIFO nobody writes to."""
    keep = _Keep(limit)
    while True:
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            if keep.total == 0:
                who = "no program wrote to it" if named_fifo else "its writer sent nothing"
                raise NoData(errno.ETIMEDOUT, f"is {'a FIFO' if named_fifo else 'a pipe'}; {who} within {wait:g} s")
            return keep.result(what, f"{what} sent nothing for {wait:g} s; read what had arrived ({mib(keep.total)})")
        try:
            block = os.read(fd, 1 << 20)
        except BlockingIOError:
            continue
        if not block:  # the writer closed it (a FIFO no writer opened is never ready: select waits)
            return keep.result(what)
        keep.add(block)
        if keep.total >= DRAIN_LIMIT:
            return keep.result(what, f"stopped reading {what} after {mib(DRAIN_LIMIT)}")


class NoData(OSError):
    """A pipe or FIFO that sent nothing within the wait."""


def read_input(
    path: Optional[str], limit: int, *, what: str = "the input", wait: Optional[float] = None, fifo_wait: float = 5.0
) -> Input:
    """Read a log or pasted text ONCE (a pipe, /dev/stdin or a FIFO cannot be read twice), bounded.

    path None or "-": standard input. A regular file larger than `limit` keeps its first and last `limit // 2`
    bytes. A pipe or socket is read until its writer closes it (or `wait` seconds pass without data); a named
    FIFO is opened without blocking and given `fifo_wait` seconds (or `wait`) for each piece of data, so a FIFO
    nobody writes to fails fast (NoData) instead of blocking. A terminal is read until end of input (Ctrl-D).
    Devices, directories and sockets named by path raise NotRegularFile."""
    if path in (None, "-"):
        return _read_fd(0, limit, what, wait, fifo_wait, "standard input")
    assert path is not None
    st = os.stat(path)
    try:
        own = os.fstat(0)
    except OSError:
        own = None
    if own is not None and (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):  # /dev/stdin, /proc/self/fd/0
        return _read_fd(0, limit, what, wait, fifo_wait, path)
    if stat.S_ISREG(st.st_mode):
        fd = open_regular(path)
    elif stat.S_ISFIFO(st.st_mode):
        fd = os.open(path, OPEN_FLAGS)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            raise _not_regular(path, os.fstat(fd).st_mode)
    else:
        raise NotRegularFile(errno.EINVAL, f"is {kind_of(st.st_mode)}, not a file or a pipe", path)
    try:
        return _read_fd(fd, limit, what, wait, fifo_wait, path)
    finally:
        os.close(fd)


def _read_fd(fd: int, limit: int, what: str, wait: Optional[float], fifo_wait: float, name: str) -> Input:
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return _read_regular(fd, limit, what)
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        named = stat.S_ISFIFO(mode) and not _anonymous_pipe(fd)
        return _drain(fd, limit, what, wait if wait is not None else (fifo_wait if named else None), named)
    if os.isatty(fd):
        return _drain(fd, limit, what, wait, named_fifo=False)
    raise NotRegularFile(errno.EINVAL, f"is {kind_of(mode)}, not a file or a pipe", name)


def _anonymous_pipe(fd: int) -> bool:
    """True for a pipe made by a shell (`cmd | bwdoctor`), whose writer exists; False for a FIFO on disk."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
    except OSError:
        return False


def which(name: str, path: Optional[str] = None) -> Optional[str]:
    """shutil.which(name, path=path) as it does it on POSIX, without importing shutil (with bz2 and lzma) on every
    check: a name with a slash is taken as it is; otherwise the first executable file of that name in the PATH's
    directories, each directory tried once; path None: this process's PATH, else the system's default."""

    def runnable(fn: str) -> bool:
        return os.path.exists(fn) and os.access(fn, os.F_OK | os.X_OK) and not os.path.isdir(fn)

    if os.path.dirname(name):
        return name if runnable(name) else None
    if path is None:
        path = os.environ.get("PATH")
    if path is None:
        path = os.confstr("CS_PATH") if hasattr(os, "confstr") else os.defpath
    if not path:
        return None
    seen = set()
    for d in path.split(os.pathsep):
        if d not in seen:
            seen.add(d)
            fn = os.path.join(d, name)
            if runnable(fn):
                return fn
    return None


def disk_free(path: str) -> int:
    """Bytes an unprivileged user may still write on the file system of path (shutil.disk_usage(path).free)."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _temp_beside(directory: str, name: str) -> Tuple[int, str]:
    """A new file `.NAME.<random>.tmp` in the directory, created exclusively with mode 0600 (what
    tempfile.mkstemp does, without importing tempfile with shutil, bz2, lzma and random for one file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", directory)


def write_atomic(path: str, text: str, st: Optional[os.stat_result] = None) -> None:
    """Write a regular file whole or not at all: a temporary file in the same directory, renamed over the path
    (readers such as node_exporter's textfile collector never see half a file). The mode of the file it
    replaces is kept; a new file gets 0666 less the umask."""
    directory, name = os.path.split(path)
    fd, tmp = _temp_beside(directory or ".", name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        if st is not None:
            mode = stat.S_IMODE(st.st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_output(path: str, text: str) -> None:
    """Write the rendered document to a path named by --output, never blocking on it: a regular file (or a new
    one) is replaced atomically (write_atomic); a FIFO without a reader fails at once (ENXIO) instead of waiting
    for one; a directory or a symlink loop fails with its reason."""
    try:
        st: Optional[os.stat_result] = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    if st is None or stat.S_ISREG(st.st_mode):
        try:
            write_atomic(os.path.realpath(path), text, st)
            return
        except PermissionError:
            if st is None:  # a directory that cannot be written: nothing else would work either
                raise
            # a file that may be written in a directory that may not: written in place below
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    if st is not None and stat.S_ISREG(st.st_mode):
        flags |= os.O_TRUNC
    try:
        fd = os.open(path, flags | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO and st is not None and stat.S_ISFIFO(st.st_mode):
            raise NotRegularFile(errno.ENXIO, "is a FIFO (named pipe) that no program is reading", path) from None
        raise
    with os.fdopen(fd, "wb") as fh:
        os.set_blocking(fd, True)  # a reader is there (or it is a file or a device): write it all
        fh.write(text.encode("utf-8"))
