"""A cache of pure per-file results (fatbin listings, undefined-symbol lists, RECORD hashes), keyed by the file's
identity, so that a second run reads a few small entries instead of the same large libraries again.

Safety, in order of importance:
- A result is only ever reused for the same file: the key is (kind, st_dev, st_ino, st_size, st_mtime_ns,
  st_ctime_ns: a write followed by `touch -d` to restore the mtime still changes the ctime) plus
  bwdoctor's version and FORMAT; the entry repeats its key and a mismatch (a hash collision, a foreign or
  hand-made file) is ignored. A file changed less than RACY_SECONDS ago is never cached: its mtime may not yet
  tell a second same-size write apart (the "racy git" problem).
- Entries live in the user's cache directory ($BWDOCTOR_CACHE_DIR, else $XDG_CACHE_HOME/bwdoctor, else
  ~/.cache/bwdoctor), never inside the inspected environment or a --root tree (the cache is then off for the run).
- An entry that is truncated, corrupt, not JSON, of another format or version, not a regular file, not owned by
  this user or writable by others is ignored (and a directory writable by others turns the cache off).
- Writes are atomic (a temporary file in the same directory, then rename); the directory is bounded to
  MAX_BYTES, the entries used least recently removed first.
- `--no-cache` or BWDOCTOR_NO_CACHE=1 turns it off; any error reading or writing only means a miss.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import threading
import time
from typing import Any, Callable, Optional

from . import __version__

FORMAT = 1
MAX_BYTES = 64 * 1024 * 1024  # all entries together; a full check of a large environment writes a few MB
MAX_ENTRY = 16 * 1024 * 1024  # one entry (the undefined symbols of the largest library are far smaller)
RACY_SECONDS = 2.0
_SUFFIX = ".json"

_disabled_by_flag = False
_serial = itertools.count()
_stores: dict = {}
_lock = threading.Lock()


def disable() -> None:
    """Turn the cache off for this process (--no-cache)."""
    global _disabled_by_flag
    _disabled_by_flag = True


def enable() -> None:
    """Undo disable() (tests)."""
    global _disabled_by_flag
    _disabled_by_flag = False


_serial = itertools.count()


def directory(environ: Optional[dict] = None) -> str:
    """Where entries live: $BWDOCTOR_CACHE_DIR, else $XDG_CACHE_HOME/bwdoctor, else ~/.cache/bwdoctor."""
    env = os.environ if environ is None else environ
    given = env.get("BWDOCTOR_CACHE_DIR")
    if given:
        return os.path.abspath(given)
    xdg = env.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bwdoctor")


def _inside(path: str, top: str) -> bool:
    top = os.path.realpath(top).rstrip("/") or "/"
    real = os.path.realpath(path)
    return top != "/" and (real == top or real.startswith(top + "/"))


class Store:
    """Entries of one cache directory; every method is safe to call from several probe threads."""

    def __init__(self, path: str):
        self.path = path
        self.written = 0
        self.hits = 0
        self.misses = 0

    def _entry(self, kind: str, key: tuple) -> str:
        import hashlib

        digest = hashlib.sha256(repr((FORMAT, __version__, kind, key)).encode()).hexdigest()[:40]
        return os.path.join(self.path, f"{kind}-{digest}{_SUFFIX}")

    def get(self, kind: str, key: tuple) -> Any:
        """The value stored for (kind, key), or None when absent or not to be trusted."""
        name = self._entry(kind, key)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            self.misses += 1
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
                self.misses += 1
                return None
            if st.st_size > MAX_ENTRY:
                self.misses += 1
                return None
            with os.fdopen(fd, "rb", closefd=False) as fh:
                raw = fh.read(MAX_ENTRY + 1)
        except OSError:
            self.misses += 1
            return None
        finally:
            os.close(fd)
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self.misses += 1
            return None
        if (
            not isinstance(doc, dict)
            or doc.get("format") != FORMAT
            or doc.get("version") != __version__
            or doc.get("kind") != kind
            or doc.get("key") != list(key)
            or "value" not in doc
        ):
            self.misses += 1
            return None
        self.hits += 1
        return doc["value"]

    def put(self, kind: str, key: tuple, value: Any) -> None:
        """Store a JSON-shaped value atomically; errors are ignored (the next run computes it again)."""
        try:
            data = json.dumps(
                {"format": FORMAT, "version": __version__, "kind": kind, "key": list(key), "value": value},
                separators=(",", ":"),
                allow_nan=False,
            ).encode()
        except (TypeError, ValueError):
            return
        if len(data) > MAX_ENTRY:
            return
        tmp = os.path.join(self.path, f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_serial)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self._entry(kind, key))
            with _lock:
                self.written += len(data)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def trim(self, limit: int = MAX_BYTES) -> None:
        """Remove the oldest entries (by modification time) while the directory holds more than `limit` bytes."""
        try:
            items = []
            with os.scandir(self.path) as it:
                for e in it:
                    if e.name.endswith(_SUFFIX) or e.name.startswith(".tmp-"):
                        try:
                            st = e.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        items.append((st.st_mtime_ns, st.st_size, e.path))
        except OSError:
            return
        total = sum(i[1] for i in items)
        for _mtime, size, path in sorted(items):
            if total <= limit:
                break
            try:
                os.unlink(path)
                total -= size
            except OSError:
                pass


def _open_store(path: str) -> Optional[Store]:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        return None  # a directory others can write to (or someone else's) could hold planted entries
    return Store(path)


def store(ctx: Any = None) -> Optional[Store]:
    """The cache for a run reading `ctx`'s machine, or None when the cache is off for it.

    Off with --no-cache / BWDOCTOR_NO_CACHE=1, and when the cache directory lies inside the --root tree or the
    inspected environment (bwdoctor writes nothing there)."""
    if _disabled_by_flag or os.environ.get("BWDOCTOR_NO_CACHE", "") not in ("", "0"):
        return None
    path = directory()
    forbidden = []
    if ctx is not None:
        if getattr(ctx, "in_tree", False):
            forbidden.append(str(ctx.root))
        py = getattr(ctx, "python", None)
        if py and not getattr(ctx, "in_tree", False):
            forbidden.append(os.path.dirname(os.path.dirname(os.path.abspath(py))))
    if any(_inside(path, top) for top in forbidden):
        return None
    with _lock:
        if path not in _stores:
            _stores[path] = _open_store(path)
        return _stores[path]


def file_key(st: os.stat_result) -> Optional[tuple]:
    """The identity of a regular file for a cache key, or None when it must not be cached (not a regular file, or
    changed so recently that a second write of the same size could keep its mtime)."""
    if not stat.S_ISREG(st.st_mode):
        return None
    if time.time() - st.st_mtime < RACY_SECONDS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def lookup(kind: str, path: str, store: Optional[Store]) -> Optional[dict]:
    """The cached result of `cached(kind, path, ...)` for an unchanged file, or None."""
    if store is None:
        return None
    try:
        key = file_key(os.stat(path))
    except OSError:
        return None
    hit = store.get(kind, key) if key is not None else None
    return dict(hit, path=path) if isinstance(hit, dict) else None


def cached(kind: str, path: str, compute: Callable[[str], dict], store: Optional[Store]) -> dict:
    """compute(path) (a JSON-shaped dict naming the file under "path"), from the cache when the file is unchanged.

    The file is stat'ed before and after computing; the result is stored only when both agree (a file rewritten
    meanwhile is computed again next time)."""
    if store is None:
        return compute(path)
    try:
        before = file_key(os.stat(path))
    except OSError:
        before = None
    if before is not None:
        hit = store.get(kind, before)
        if isinstance(hit, dict):
            return dict(hit, path=path)
    value = compute(path)
    if before is not None:
        try:
            after = file_key(os.stat(path))
        except OSError:
            after = None
        if after == before:
            store.put(kind, before, {k: v for k, v in value.items() if k != "path"})
    return value


def finish() -> None:
    """Bound every store written to in this process (called once at the end of a run)."""
    with _lock:
        stores = [s for s in _stores.values() if s is not None and s.written]
    for s in stores:
        s.trim()
