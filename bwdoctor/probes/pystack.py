"""Probes of the Python GPU stack, read from files only: torch's build, CUDA runtimes, RECORD drift."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from typing import Optional

from .. import lazyre
from ..model import Unavailable
from ..registry import probe

_LOCAL_RE = lazyre.compile(r"\+(.+)$")


def _dist(distributions, name):
    if isinstance(distributions, Unavailable):
        return None
    return next((d for d in distributions if d.get("name") == name), None)


def parse_torch_version_py(text: str) -> dict:
    """__version__, cuda, hip, git_version from torch/version.py (assignments only; nothing executed)."""
    out = {}
    for key in ("__version__", "cuda", "hip", "git_version", "rocm", "xpu"):
        m = re.search(rf"^{re.escape(key)}\s*(?::[^=]+)?=\s*(?:'([^']*)'|\"([^\"]*)\"|None)", text, re.M)
        if m:
            out[key] = m.group(1) if m.group(1) is not None else m.group(2)
    return out


def variant_of(version: str, cuda) -> str:
    """'cu130', 'cpu', 'rocm6.3'... from a local version tag, else from torch.version.cuda."""
    m = _LOCAL_RE.search(version or "")
    if m:
        tag = m.group(1)
        for part in tag.split("."):
            if re.match(r"(cu\d+|cpu|rocm[\d.]+|xpu)$", part):
                return part
        return tag
    if cuda:
        return "cu" + str(cuda).replace(".", "")
    return "cpu"


@probe("torch_build", budget=3.0)
def torch_build(ctx, distributions):
    """The installed torch: version, CUDA version and variant (from torch/version.py, never imported)."""
    d = _dist(distributions, "torch")
    if d is None:
        return Unavailable("torch is not installed in the inspected environment")
    out = {"version": d["version"], "location": d["location"], "requires": d.get("requires", [])}
    vp = os.path.join(d["location"], "torch", "version.py")
    try:
        info = parse_torch_version_py(ctx.read_text(vp, limit=65536))
    except OSError as exc:
        info = {}
        out["error"] = f"{vp}: {exc.strerror or exc}"
    out["cuda"] = info.get("cuda")
    out["hip"] = info.get("hip")
    out["git_version"] = info.get("git_version")
    out["variant"] = variant_of(d["version"], info.get("cuda"))
    try:
        names = ctx.listdir(os.path.join(d["location"], "torch", "lib"))
    except OSError:
        names = []
    out["has_libtorch_cuda"] = any(n.startswith("libtorch_cuda") for n in names)
    out["shadowed"] = d.get("shadowed", [])
    return out


@probe("cuda_runtimes", budget=2.0)
def cuda_runtimes(ctx, distributions, torch_build):
    """CUDA runtime versions the environment brings: torch's, nvidia-cuda-runtime-*, vLLM's wheel tag."""
    out = []
    if not isinstance(torch_build, Unavailable) and torch_build.get("cuda"):
        out.append(
            {"source": "torch", "distribution": "torch", "cuda": torch_build["cuda"], "version": torch_build["version"]}
        )
    if not isinstance(distributions, Unavailable):
        for d in distributions:
            m = re.match(r"nvidia-cuda-runtime(?:-cu(\d+))?$", d["name"])
            if m:
                v = d["version"].split(".")
                out.append(
                    {"source": "wheel", "distribution": d["name"], "cuda": ".".join(v[:2]), "version": d["version"]}
                )
            elif d["name"] == "vllm":
                tag = _LOCAL_RE.search(d["version"] or "")
                cu = re.search(r"cu(\d+)(\d)\b", tag.group(1)) if tag else None
                if cu:
                    out.append(
                        {
                            "source": "vllm wheel tag",
                            "distribution": "vllm",
                            "cuda": f"{int(cu.group(1))}.{cu.group(2)}",
                            "version": d["version"],
                        }
                    )
    return out


RECORD_LIMIT = 64 * 1024 * 1024  # the RECORD of the largest wheels is a few MB
HASH_LIMIT = 64 * 1024 * 1024  # a hand-edited Python source is far smaller; larger files are not hashed


def _record_rows(ctx, dist_info: str):
    try:
        text = ctx.read_text(os.path.join(dist_info, "RECORD"), limit=RECORD_LIMIT)
    except (OSError, ValueError):
        return None
    return list(csv.reader(io.StringIO(text)))


def file_digest(ctx, path: str, algo: str, budget: Optional[list] = None, limit: int = HASH_LIMIT) -> str:
    """The RECORD-style digest (urlsafe base64, no padding) of a whole machine file, read in chunks.

    Only a regular file of at most `limit` bytes is hashed (ValueError past it); `budget` (a one-item list)
    bounds the bytes hashed over a whole probe (ValueError when it would pass them). The digest is cached by the
    file's identity (bwdoctor.cache), so a patched file is hashed once, not on every run."""
    from .. import cache

    host = str(ctx.resolve(path))
    fd = os.open(host, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(22, "not a regular file", path)
        if st.st_size > limit:
            raise ValueError("file too large to hash")
        if budget is not None:  # spent on a cache hit too: the findings never depend on the cache
            if st.st_size > budget[0]:
                raise ValueError("hash budget spent")
            budget[0] -= st.st_size
        store = cache.store(ctx)
        ident = cache.file_key(st) if store else None
        key = (algo, *ident) if ident else None
        if store and key:
            hit = store.get("digest", key)
            if isinstance(hit, str):
                return hit
        import base64
        import hashlib

        h = hashlib.new(algo)
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        digest = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
        if store and key:
            store.put("digest", key, digest)
        return digest
    finally:
        os.close(fd)


def _compared_rows(ctx, dist_info: str, suffixes: tuple, record_stat: Optional[os.stat_result]) -> Optional[list]:
    """[(path, digest, size)] of the RECORD rows record_drift compares (with a digest; ending in one of `suffixes`
    when given), or None without a RECORD; cached by the RECORD's identity (torch's has ~14,000 rows)."""
    from .. import cache

    store = cache.store(ctx) if record_stat is not None else None
    ident = cache.file_key(record_stat) if store is not None and record_stat is not None else None
    key = (dist_info, list(suffixes), *ident) if ident else None
    if key is not None and store is not None:
        hit = store.get("record-rows", key)
        if isinstance(hit, list) and all(isinstance(r, list) and len(r) == 3 for r in hit):
            return hit
    rows = _record_rows(ctx, dist_info)
    if rows is None:
        return None
    out = [
        [row[0], row[1], row[2]]
        for row in rows
        if len(row) >= 3 and row[1] and "=" in row[1] and (not suffixes or row[0].endswith(suffixes))
    ]
    if key is not None and store is not None:
        store.put("record-rows", key, out)
    return out


def record_drift_for(dist: dict, limit: int = 50, suffixes: tuple = (), ctx=None) -> dict:
    """Files of an installed distribution that differ from its RECORD: size first, hash when sizes agree
    but the file is newer than the RECORD (a same-size edit). `suffixes` limits the files compared.

    What is guaranteed: every compared file is stat'ed on every run (an edit in place changes no directory, so no
    directory mtime can stand for it); a file whose size differs from its RECORD row is reported; one of the same
    size whose mtime is after the RECORD's is hashed - any write moves the mtime, so a one-byte edit is found. Only
    the hash is cached (bwdoctor.cache, by the file's dev, inode, size, mtime and ctime): a file written again is
    hashed again. The RECORD's rows are cached by the RECORD's identity. An edit whose mtime was set back to before
    the RECORD (touch -d) with the size kept is not looked at, with or without the cache.

    Paths are machine paths read through ctx (the live machine when None)."""
    if ctx is None:
        from ..context import Context

        ctx = Context()
    di = dist["dist_info"]
    try:
        record_stat: Optional[os.stat_result] = ctx.stat(os.path.join(di, "RECORD"))
    except (OSError, ValueError):
        record_stat = None
    record_mtime = record_stat.st_mtime if record_stat is not None else 0
    rows = _compared_rows(ctx, di, suffixes, record_stat)
    if rows is None:
        return {"distribution": dist["name"], "error": "no RECORD file"}
    # Resolve the install directory once inside the tree; the files below it are then stat'ed directly
    # (a symlink among them is followed inside the tree through ctx.stat).
    try:
        base = str(ctx.resolve(dist["location"]))
    except (OSError, ValueError):
        return {"distribution": dist["name"], "error": f"{dist['location']} could not be resolved"}
    modified, missing, checked = [], [], 0
    # On the live machine every file is stat'ed relative to the install directory, opened once: the same lookup
    # as base + "/" + rel (".." and absolute entries included), without walking base's components each time.
    dir_fd = None
    if not ctx.in_tree:
        try:
            dir_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except (OSError, ValueError):
            dir_fd = None
    try:
        for rel, digest, size in rows:
            try:
                if dir_fd is not None:
                    st = os.stat(rel, dir_fd=dir_fd)
                elif not ctx.in_tree:
                    st = os.stat(os.path.join(base, rel))  # os.path, not pathlib: torch lists ~12,000 files
                elif rel.startswith("/") or ".." in rel.split("/"):  # scripts in ../../../bin: look up in the tree
                    st = ctx.stat(os.path.normpath(os.path.join(dist["location"], rel)))
                else:
                    st = os.lstat(os.path.join(base, rel))
                    if stat.S_ISLNK(st.st_mode):
                        st = ctx.stat(os.path.normpath(os.path.join(dist["location"], rel)))
            except FileNotFoundError:
                if not rel.endswith(".pyc"):
                    missing.append(rel)
                continue
            except (OSError, ValueError):  # unreadable, a loop, or a NUL byte in the RECORD's path
                continue
            checked += 1
            if size.isdigit() and st.st_size != int(size):
                modified.append(rel)
            elif rel.endswith(".py") and st.st_mtime > record_mtime + 2:
                machine = (
                    os.path.normpath(os.path.join(dist["location"], rel)) if ctx.in_tree else os.path.join(base, rel)
                )
                algo, _, want = digest.partition("=")
                import hashlib  # only for a file edited after its RECORD: most runs hash nothing

                try:
                    if algo in hashlib.algorithms_available and file_digest(ctx, machine, algo) != want:
                        modified.append(rel)
                except (OSError, ValueError):
                    pass
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return {
        "distribution": dist["name"],
        "version": dist["version"],
        "checked": checked,
        "modified": sorted(modified)[:limit],
        "modified_count": len(modified),
        "missing": sorted(missing)[:limit],
        "missing_count": len(missing),
    }


@probe("record_drift", budget=5.0)
def record_drift(ctx, distributions):
    """Locally modified or missing files of vllm, torch, flashinfer and xformers versus their RECORD.

    Every file of vLLM and the smaller packages is compared; of torch only the Python sources (where
    hand patches go), which keeps this probe to a few tens of milliseconds."""
    out = []
    for name in ("vllm", "torch", "flashinfer-python", "xformers", "flash-attn"):
        d = _dist(distributions, name)
        if d and d.get("dist_info"):
            out.append(record_drift_for(d, suffixes=(".py",) if name == "torch" else (), ctx=ctx))
    return out


SHARED_LIMIT = 500  # files listed in full; the count says how many more
SHARED_HASH_BUDGET = 2 * 1024 * 1024 * 1024  # bytes hashed to tell owners apart when recorded sizes are equal


def _owner(ctx, path: str, entries: list, budget: list):
    """(the entries whose recorded bytes are on disk, how that was told) for one shared file."""
    try:
        st = ctx.stat(path)
    except FileNotFoundError:
        return [], "missing"
    except (OSError, ValueError):
        return [], "unreadable"
    same = [e for e in entries if e[2].isdigit() and int(e[2]) == st.st_size]
    if not same:
        return [], "size"
    # one size matches: that is the owner, unless the file changed after its RECORD was written (then hash it)
    if len({e[1] for e in same}) == 1 and st.st_mtime <= min(e[3] for e in same) + 2:
        return same, "size"
    algo = same[0][1].partition("=")[0]
    import hashlib

    if algo not in hashlib.algorithms_available:
        return [], "unknown"
    try:
        digest = f"{algo}={file_digest(ctx, path, algo, budget, limit=SHARED_HASH_BUDGET)}"
    except (OSError, ValueError):
        return [], "unknown"
    return [e for e in same if e[1] == digest], "hash"


def _clean_rel(rel: str) -> bool:
    """True when location + "/" + rel is already normal (no empty, "." or ".." component, not absolute)."""
    return bool(rel) and rel[0] != "/" and rel[-1] != "/" and "//" not in rel and "/." not in "/" + rel


def _scan_listings(ctx, dists: list) -> tuple:
    """([(path, [(index in dists, digest, size, RECORD mtime)])] of the paths two distributions list with different
    digests, sorted by path; the number of RECORDs read)."""
    by_path: dict = {}
    checked = 0
    for i, d in enumerate(dists):
        di = d["dist_info"]
        rows = _record_rows(ctx, di)
        if rows is None:
            continue
        checked += 1
        try:
            record_mtime = ctx.stat(os.path.join(di, "RECORD")).st_mtime
        except (OSError, ValueError):
            record_mtime = 0.0
        loc = os.path.normpath(d["location"])
        for row in rows:
            if len(row) < 3 or "=" not in row[1]:
                continue
            rel = row[0]
            if rel.endswith(".pyc") or "__pycache__" in rel or ".dist-info/" in rel:
                continue
            path = loc + "/" + rel if _clean_rel(rel) and loc != "/" else os.path.normpath(os.path.join(loc, rel))
            entry = (i, row[1], row[2], record_mtime)
            hit = by_path.get(path)
            if hit is None:
                by_path[path] = entry
            elif isinstance(hit, list):
                hit.append(entry)
            else:
                by_path[path] = [hit, entry]
    shared = []
    for path in sorted(p for p, v in by_path.items() if isinstance(v, list)):
        entries = by_path[path]
        if len({dists[e[0]]["name"] for e in entries}) < 2 or len({e[1] for e in entries}) < 2:
            continue  # listed once, or every copy is the same bytes (a namespace __init__.py)
        shared.append((path, entries))
    return shared, checked


def _shared_listings(ctx, dists: list) -> tuple:
    """_scan_listings, from the cache when no RECORD changed (the key holds every RECORD's identity)."""
    from .. import cache

    store = cache.store(ctx)
    key = None
    if store is not None:
        parts: list = []
        for d in dists:
            try:
                ident = cache.file_key(ctx.stat(os.path.join(d["dist_info"], "RECORD")))
            except (OSError, ValueError):
                ident = None
            if ident is None:
                break
            parts.append([d["name"], d["version"], d["location"], d["dist_info"], *ident])
        else:
            key = (json.dumps(parts, separators=(",", ":")),)
    if key is not None and store is not None:
        hit = store.get("shared-listings", key)
        if isinstance(hit, list) and len(hit) == 2 and isinstance(hit[0], list) and isinstance(hit[1], int):
            try:
                return [(p, [tuple(e) for e in es]) for p, es in hit[0] if all(e[0] < len(dists) for e in es)], hit[1]
            except (TypeError, ValueError, IndexError):
                pass
    shared, checked = _scan_listings(ctx, dists)
    if key is not None and store is not None:
        store.put("shared-listings", key, [[[p, [list(e) for e in es]] for p, es in shared], checked])
    return shared, checked


@probe("shared_files", budget=10.0)
def shared_files(ctx, distributions):
    """Files that two installed distributions both list in their RECORD with different contents, and whose
    recorded bytes are on disk now: pip installs one wheel's files over another's at the same path (nvidia-nccl-cu13
    over nvidia-nccl-cu12: nvidia/nccl/lib/libnccl.so.2), so the other distribution's file is silently replaced.

    Sizes tell the owner apart; the file is hashed only when two RECORDs give it the same size."""
    if isinstance(distributions, Unavailable):
        return distributions
    dists = [d for d in distributions if (d.get("dist_info") or "").endswith(".dist-info")]
    shared, checked = _shared_listings(ctx, dists)
    budget = [SHARED_HASH_BUDGET]
    out = []
    for path, listed in shared:
        entries = [(dists[i], digest, size, mtime) for i, digest, size, mtime in listed]
        owners, how = _owner(ctx, path, entries, budget)
        owner = owners[0][0] if len({e[0]["name"] for e in owners}) == 1 else None
        out.append(
            {
                "path": path,
                "owner": owner["name"] if owner else None,
                "owner_version": owner["version"] if owner else None,
                "how": how,
                "listed_by": [{"distribution": e[0]["name"], "version": e[0]["version"]} for e in entries],
            }
        )
    return {"files": out[:SHARED_LIMIT], "count": len(out), "distributions_checked": checked}


NCCL_DIST = lazyre.compile(r"nvidia-nccl(-cu\d+)?$")


@probe("nccl_libraries", budget=3.0)
def nccl_libraries(ctx, distributions):
    """The libnccl.so of each NCCL wheel as it is on disk now, with the version its own banner gives
    ("NCCL version 2.27.5+cuda12.9" in .rodata), which differs from the wheel's when another wheel replaced it."""
    from ..elf.libversion import nccl_version

    if isinstance(distributions, Unavailable):
        return distributions
    out = []
    for d in distributions:
        if not NCCL_DIST.match(d["name"]) or not d.get("dist_info"):
            continue
        rows = _record_rows(ctx, d["dist_info"]) or []
        for row in rows:
            if not row or not re.search(r"(^|/)libnccl\.so(\.\d+)*$", row[0]):
                continue
            path = os.path.normpath(os.path.join(d["location"], row[0]))
            entry = {"distribution": d["name"], "version": d["version"], "path": path}
            try:
                found = nccl_version(str(ctx.resolve(path)))
            except (OSError, ValueError) as exc:
                entry["error"] = getattr(exc, "strerror", None) or str(exc)
            else:
                entry["library_version"] = found["version"] if found else None
                entry["library_cuda"] = found["cuda"] if found else None
            out.append(entry)
    return out


@probe("native_libraries", budget=2.0)
def native_libraries(ctx, distributions):
    """Names of the variant-specific native libraries some packages choose at import (bitsandbytes)."""
    out = {}
    d = _dist(distributions, "bitsandbytes")
    if d:
        try:
            out["bitsandbytes"] = [
                n for n in ctx.listdir(os.path.join(d["location"], "bitsandbytes")) if n.startswith("libbitsandbytes")
            ]
        except OSError:
            out["bitsandbytes"] = []
    return out
