"""A cache of pure per-file results (fatbin listings, undefined-symbol lists, RECORD hashes), keyed by the file's
identity, so that a second run reads a few small entries instead of the same large libraries again.

Safety, in order of importance:
- A result is only ever reused for the same file: the key is (kind, st_dev, st_ino, st_size, st_mtime_ns,
  st_ctime_ns: a write followed by `touch -d` to restore the mtime still changes the ctime) plus
  bwdoctor's version, the identity of the modules that compute the values (code_version) and FORMAT; the entry
  repeats its key and a mismatch (a hash collision, a foreign or hand-made file) is ignored. A file changed less
  than RACY_SECONDS ago is never cached: its mtime may not yet tell a second same-size write apart ("racy git").
- Entries live in the user's cache directory ($BWDOCTOR_CACHE_DIR, else $XDG_CACHE_HOME/bwdoctor, else
  ~/.cache/bwdoctor), never inside the inspected environment or a --root tree (the cache is then off for the run).
- Entries of one kind share a pack file (`<kind>.json`), read once per run and rewritten once at its end: a
  pack that is truncated, corrupt, not JSON, of another format or version, not a regular file, not owned by
  this user or writable by others is ignored whole (and a directory writable by others turns the cache off).
- Writes are atomic (a temporary file in the same directory, then rename; a run that wrote meanwhile is merged);
  the directory is bounded to MAX_BYTES, the entries written longest ago removed first.
- `--no-cache` or BWDOCTOR_NO_CACHE=1 turns it off; any error reading or writing only means a miss.

Whole results (memo): a probe whose work is pure in the files and directories it looks at (the loader model of
extension_links, the interpreter's sys.path) keeps its result with a Witness: the state (lstat identity, and its
target's for a symlink: type, device, inode, size, mtime and ctime in ns) of every path it read, listed or
looked for. The next run takes the result only when every one of those paths is in the same state again: a
file rewritten, a name created, removed or renamed in a listed directory (that changes the directory's mtime and
ctime), a symlink retargeted, a missing path that now exists - each is a miss and the work is done again. A path
changed less than RACY_SECONDS before the work began is never part of a kept result.
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


# The modules whose code computes the cached values: a change to any of them (a development checkout, a patched
# install) makes every entry stale, even when __version__ stays the same.
PRODUCERS = (
    "cache.py", "context.py", "elf/dynelf.py", "elf/dynlink.py", "elf/fatbin.py", "elf/distfiles.py",
    "elf/linkcause.py", "elf/demangle.py", "elf/ldcache.py", "elf/rootpath.py", "elf/cubin.py", "probes/pystack.py",
    "probes/pyenv.py", "probes/gpucode.py", "probes/toolkit.py", "probes/links.py", "probes/build.py",
    "probes/servehost.py", "domain/allocconf.py", "elf/libversion.py", "fileio.py",
)  # fmt: skip
_code_version: Optional[str] = None


def code_version() -> str:
    """bwdoctor's version plus the size and mtime of each module that produces cached values."""
    global _code_version
    if _code_version is None:
        here = os.path.dirname(os.path.abspath(__file__))
        parts = [__version__]
        for rel in PRODUCERS:
            try:
                st = os.stat(os.path.join(here, rel))
                parts.append(f"{st.st_size}.{st.st_mtime_ns}")
            except OSError:
                parts.append("-")
        _code_version = "+".join(parts)
    return _code_version


def _plain(key: tuple) -> list:
    """A key as it reads back from JSON (tuples inside it become lists)."""
    return [list(k) if isinstance(k, tuple) else k for k in key]


class Store:
    """Entries of one cache directory, one pack file per kind of result (`<kind>.pack.json`: read once per run,
    rewritten once at the end when something was added). Safe to call from several probe threads."""

    def __init__(self, path: str):
        self.path = path
        self.written = 0
        self.hits = 0
        self.misses = 0
        self._packs: dict = {}  # kind -> {digest: [key, value, time written]}
        self._dirty: set = set()
        self._lock = threading.Lock()

    def pack_path(self, kind: str) -> str:
        return os.path.join(self.path, f"{kind}{_SUFFIX}")

    def _read_pack(self, kind: str) -> dict:
        """The entries of one pack file; {} when it is absent or not to be trusted."""
        try:
            fd = os.open(
                self.pack_path(kind), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
            )
        except OSError:
            return {}
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
                return {}  # someone else's, or writable by others: it could hold planted entries
            if st.st_size > MAX_BYTES:
                return {}
            with os.fdopen(fd, "rb", closefd=False) as fh:
                raw = fh.read(MAX_BYTES + 1)
        except OSError:
            return {}
        finally:
            os.close(fd)
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return {}
        if (
            not isinstance(doc, dict)
            or doc.get("format") != FORMAT
            or doc.get("version") != code_version()
            or doc.get("kind") != kind
            or not isinstance(doc.get("entries"), dict)
        ):
            return {}
        return {
            d: e for d, e in doc["entries"].items() if isinstance(e, list) and len(e) == 3 and isinstance(e[0], list)
        }

    def _pack(self, kind: str) -> dict:
        with self._lock:
            pack = self._packs.get(kind)
            if pack is None:
                pack = self._packs[kind] = self._read_pack(kind)
            return pack

    @staticmethod
    def _digest(key: tuple) -> str:
        return _sha256(repr(key).encode()).hexdigest()[:32]

    def get(self, kind: str, key: tuple) -> Any:
        """The value stored for (kind, key), or None when absent or not to be trusted."""
        entry = self._pack(kind).get(self._digest(key))
        # the entry repeats its whole key: a digest collision or a hand-made entry is a miss, never a wrong answer
        if entry is None or entry[0] != _plain(key):
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put(self, kind: str, key: tuple, value: Any) -> None:
        """Keep a JSON-shaped value; written with the others of its kind by flush()."""
        entry = [_plain(key), value, time.time()]  # checked to be JSON when the pack is written
        pack = self._pack(kind)
        with self._lock:
            pack[self._digest(key)] = entry
            self._dirty.add(kind)

    def flush(self, limit: int = MAX_BYTES) -> None:
        """Write the packs that changed, each atomically (a temporary file, then rename), merged with what another
        run wrote meanwhile, and bounded to `limit` bytes in all (the entries written longest ago go first)."""
        with self._lock:
            dirty, self._dirty = sorted(self._dirty), set()
            ours = {k: dict(self._packs.get(k) or {}) for k in dirty}
        for kind in dirty:
            entries = self._read_pack(kind)
            entries.update(ours[kind])
            self._write_pack(kind, entries, max(limit - self._others_size(kind), limit // 8))

    def _others_size(self, kind: str) -> int:
        """Bytes of the other packs (and of temporary files a crashed run left, removed when over an hour old)."""
        total = 0
        try:
            with os.scandir(self.path) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if e.name.startswith(".tmp-") and time.time() - st.st_mtime > 3600:
                        try:
                            os.unlink(e.path)
                        except OSError:
                            pass
                    elif e.name.endswith(_SUFFIX) and e.name != f"{kind}{_SUFFIX}":
                        total += st.st_size
        except OSError:
            pass
        return total

    def _write_pack(self, kind: str, entries: dict, limit: int) -> None:
        items = sorted(entries.items(), key=lambda kv: -float(kv[1][2]) if isinstance(kv[1][2], (int, float)) else 0)
        while True:
            try:
                data = json.dumps(
                    {"format": FORMAT, "version": code_version(), "kind": kind, "entries": dict(items)},
                    separators=(",", ":"),
                    allow_nan=False,
                ).encode()
            except (TypeError, ValueError, RecursionError):  # a value that is not JSON: keep nothing of this run
                return
            if len(data) <= limit or not items:
                break
            items = items[: len(items) * 3 // 4]  # drop the oldest quarter
        tmp = os.path.join(self.path, f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_serial)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.pack_path(kind))
            self.written += len(data)
        except OSError:
            try:
                os.unlink(tmp)
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


def _ident(st: os.stat_result) -> list:
    return [stat.S_IFMT(st.st_mode), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def path_state(path: str) -> list:
    """What a memo's validity depends on for one path: its lstat identity and, for a symlink, its target's;
    ["missing"] when nothing is there, ["error", errno] when it cannot be looked at."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ["missing"]
    except OSError as exc:
        return ["error", exc.errno or 0]
    except ValueError:  # a NUL byte in a name read from a file
        return ["error", 0]
    out = _ident(st)
    if stat.S_ISLNK(st.st_mode):
        try:
            out += _ident(os.stat(path))
        except OSError as exc:
            out += ["broken", exc.errno or 0]
    return out


_NAMES = "\0names\0"  # a key no real path can be (a NUL byte): a directory's entries with given suffixes


def _names_key(directory: str, suffixes: tuple) -> str:
    return _NAMES + "\0".join(suffixes) + _NAMES + directory


def _names_state(key: str) -> list:
    """["names", [entries of the directory that end with one of the suffixes, sorted]], or what path_state says
    when the directory cannot be listed."""
    _, suffixes, directory = key.split(_NAMES, 2)
    try:
        names = os.listdir(directory)
    except (OSError, ValueError):
        return path_state(directory)
    ends = tuple(suffixes.split("\0"))
    return ["names", sorted(n for n in names if n.endswith(ends))]


def state_of(key: str) -> list:
    """path_state of a path, or the entries a names key stands for."""
    return _names_state(key) if key.startswith(_NAMES) else path_state(key)


def _settled(state: list, before_ns: int) -> bool:
    """Whether a state may be kept: it did not change after before_ns (ctime moves on every change)."""
    return all(state[i] < before_ns for i in (5, 11) if len(state) > i and isinstance(state[i], int))


class Witness:
    """The paths a result was computed from, with their states (see path_state). Paths may be noted after they
    were read: a path that changed after the work began (or just before it) makes the result one not to keep."""

    def __init__(self) -> None:
        self.states: dict = {}
        self.keep = True  # False: something was read that the witness cannot vouch for
        self.began_ns = time.time_ns() - int(RACY_SECONDS * 1e9)

    def see(self, path: str) -> None:
        if path not in self.states:
            self.states[path] = path_state(path)

    def see_all(self, paths: Any) -> None:
        for p in paths:
            self.see(p)

    def see_names(self, directory: str, suffixes: tuple) -> None:
        """Note which entries of a directory end with one of the suffixes (its mtime would also move for every
        other file written there: a working directory on sys.path, a log next to the packages)."""
        key = _names_key(directory, tuple(suffixes))
        if key not in self.states:
            self.states[key] = _names_state(key)

    def glob(self, pattern: str) -> None:
        """Note what glob.glob(pattern) depends on: every directory it lists and every path it looks for."""
        import fnmatch

        parts = pattern.split("/")
        magic = [i for i, part in enumerate(parts) if any(c in part for c in "*?[")]
        if not magic:
            self.see(pattern)
            return
        bases = ["/".join(parts[: magic[0]]) or ("/" if pattern.startswith("/") else ".")]
        for part in parts[magic[0] :]:
            nxt = []
            for base in bases:
                if any(c in part for c in "*?["):
                    self.see(base)  # its entries decide what matches
                    try:
                        names = os.listdir(base)
                    except (OSError, ValueError):
                        continue
                    nxt += [os.path.join(base, n) for n in fnmatch.filter(names, part)]
                else:
                    nxt.append(os.path.join(base, part))
            bases = nxt
        self.see_all(bases)

    def keepable(self) -> bool:
        return self.keep and all(_settled(s, self.began_ns) for s in self.states.values())


def _witness_holds(witness: Any) -> bool:
    if not isinstance(witness, list):
        return False
    try:
        return all(state_of(p) == s for p, s in witness)
    except (TypeError, ValueError):
        return False


def _sha256(data: bytes) -> Any:
    """hashlib.sha256(data), from the interpreter's own implementation where it has one: hashlib's first import
    loads OpenSSL, which costs a warm check (3 ms of 0.13 s here) more than all of its cache keys."""
    global _SHA256
    if _SHA256 is None:
        import importlib

        for name in ("_sha2", "_sha256"):  # 3.12+, 3.10-3.11
            try:
                _SHA256 = importlib.import_module(name).sha256
                break
            except (ImportError, AttributeError):
                continue
        else:  # pragma: no cover - an interpreter built without its own sha256
            import hashlib

            _SHA256 = hashlib.sha256
    return _SHA256(data)


_SHA256: Optional[Callable[[bytes], Any]] = None


def fingerprint(value: Any) -> str:
    """A short stand-in for a large JSON-shaped value in a memo's key (sha256 of its canonical JSON)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return _sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def memo(kind: str, key: tuple, compute: Callable[[Witness], Any], store: Optional[Store]) -> Any:
    """compute(witness), or the value it returned on an earlier run while every path its witness noted is in the
    same state now. key: everything else the value depends on (the probe's input facts, environment variables).
    The states are taken again after computing: a path that changed meanwhile keeps the value out of the cache."""
    if store is None:
        return compute(Witness())
    hit = store.get(kind, key)
    if isinstance(hit, dict) and "value" in hit and _witness_holds(hit.get("witness")):
        return hit["value"]
    w = Witness()
    value = compute(w)
    if isinstance(value, (dict, list)) and w.keepable() and all(state_of(p) == s for p, s in w.states.items()):
        store.put(kind, key, {"witness": [[p, s] for p, s in w.states.items()], "value": value})
    return value


def finish() -> None:
    """Write what this process added to every store (called at the end of a run; again is harmless)."""
    with _lock:
        stores = [s for s in _stores.values() if s is not None]
    for s in stores:
        s.flush()
