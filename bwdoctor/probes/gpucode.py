"""Probe of the GPU code compiled into the CUDA .so files of installed distributions.

Files come from each distribution's RECORD; only ELF files are opened, and only their section
headers and fatbin headers are read (bwdoctor.elf.fatbin), so even torch and the nvidia-* libraries
cost well under a second when cached.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List

from ..elf.distfiles import RECORD_LIMIT, is_elf, parse_record
from ..model import Unavailable
from ..registry import probe
from .pyenv import installed_elf_files

# Distributions whose .so files carry GPU code that bwdoctor's checks read (canonical names). The
# nvidia-* and cupy libraries are large and no check reads them: `bwdoctor cubins` lists them on request.
CUDA_DISTRIBUTIONS = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "vllm",
        "vllm-flash-attn",
        "flash-attn",
        "flash-attn-3",
        "flashinfer-python",
        "flashinfer-jit-cache",
        "flashinfer-cubin",
        "xformers",
        "bitsandbytes",
        "sgl-kernel",
        "deep-gemm",
        "flashmla",
    }
)
CUDA_PREFIXES = ()
FLASHINFER_CACHE = "flashinfer-cache"  # pseudo-distribution: JIT/AOT builds under ~/.cache/flashinfer
CACHE_FILE_LIMIT = 2000  # ELF files read from the flashinfer cache at most
CUBIN_FILE_LIMIT = 50_000  # stand-alone .cubin headers read per distribution at most (flashinfer-cubin: 10,560)


def is_cuda_distribution(name: str) -> bool:
    """True for the distributions whose GPU code is read."""
    return name in CUDA_DISTRIBUTIONS or name.startswith(CUDA_PREFIXES)


def scan_paths(paths: List[str], workers: int = 4, store=None) -> List[dict]:
    """Trimmed scan of each path that has GPU code or could not be read, in path order (`store`: the
    bwdoctor.cache to reuse listings of unchanged files from)."""
    if not paths:
        return []
    from ..cache import cached, lookup
    from ..elf.fatbin import has_gpu_code, scan_file, trim

    # listings of unchanged files come from the cache; threads overlap the page faults of the others
    found = {p: hit for p in paths if (hit := lookup("fatbin", p, store)) is not None}
    todo = [p for p in paths if p not in found]
    if todo:
        from concurrent.futures import ThreadPoolExecutor

        from ..engine import jobs_override

        cores = jobs_override() or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo), cores))) as pool:
            found.update(zip(todo, pool.map(lambda p: cached("fatbin", p, scan_file, store), todo), strict=True))
    items = [found[p] for p in paths]
    return [trim(i) for i in items if i["error"] or has_gpu_code(i)]


def flashinfer_cache_dir(env) -> str:
    """Where FlashInfer keeps its JIT builds: $FLASHINFER_WORKSPACE_BASE or ~/.cache, + /flashinfer."""
    base = env.get("FLASHINFER_WORKSPACE_BASE") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "flashinfer")


def cache_elf_files(root: str, limit: int = CACHE_FILE_LIMIT, witness=None) -> List[str]:
    """Up to `limit` .so files under the FlashInfer cache (sorted); `witness` notes every directory walked and
    every file looked at."""
    out: List[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if witness is not None:
            witness.see(dirpath)
        for name in sorted(filenames):
            if re.search(r"\.so(\.|$)", name):
                path = os.path.join(dirpath, name)
                if witness is not None:
                    witness.see(path)
                if is_elf(path):
                    out.append(path)
                    if len(out) >= limit:
                        if witness is not None:
                            witness.keep = False  # the walk stopped part-way: what it did not see is unknown
                        return out
    return out


def standalone_cubins(ctx, dist: dict, limit: int = CUBIN_FILE_LIMIT, witness=None):
    """One files[] item for the stand-alone .cubin files a distribution's RECORD lists (flashinfer-cubin ships
    thousands, loaded by the library at run time): the targets their ELF headers name, or None when it has none."""
    record = os.path.join(dist["dist_info"], "RECORD")
    if witness is not None:
        witness.see(str(ctx.host_path(record)))
    try:
        text = ctx.read_text(record, RECORD_LIMIT)
    except (OSError, ValueError):
        return None
    rels = [r for r in parse_record(text) if r.lower().endswith(".cubin")]
    if not rels:
        return None
    from ..elf.fatbin import arch_sort_key, cubin_target

    archs, unreadable = set(), 0
    for rel in rels[:limit]:
        path = os.path.normpath(os.path.join(dist["location"], rel))
        if witness is not None:
            witness.see(str(ctx.host_path(path)))
        try:
            target = cubin_target(ctx.read_bytes(path, 64))
        except (OSError, ValueError):
            target = None
        if target is None:
            unreadable += 1
        else:
            archs.add(f"sm_{target[0]}{target[1]}")
    top = os.path.commonpath(rels[:limit]) if len(rels) > 1 else os.path.dirname(rels[0])
    item: Dict[str, object] = {
        "path": os.path.join(dist["location"], top),
        "fatbin": {"elf": sorted(archs, key=arch_sort_key), "ptx": []},
        "relfatbin": {"elf": [], "ptx": []},
        "error": None if archs else f"none of its {len(rels)} .cubin files could be read",
        "cubin_files": len(rels),
    }
    if unreadable and archs:
        item["unreadable"] = unreadable
    return item


@probe("cuda_binaries", budget=20.0)
def cuda_binaries(ctx, python_env, distributions):
    """GPU code (cubin and PTX targets) in the CUDA .so files of installed distributions.

    On the live machine the whole result is kept in the cache (bwdoctor.cache.memo) and reused while every RECORD,
    every file it names as a candidate and the FlashInfer cache directories are unchanged."""
    if isinstance(distributions, Unavailable):
        return Unavailable(f"installed distributions are unknown: {distributions.reason}")
    from .. import cache

    store = cache.store(ctx)
    if store is None or not ctx.live_machine:
        return _cuda_binaries(ctx, distributions, store, cache.Witness())
    dists = [d for d in distributions if is_cuda_distribution(d.get("name", "")) and d.get("dist_info")]
    where = [ctx.env.get("FLASHINFER_WORKSPACE_BASE"), ctx.env.get("HOME")]
    key = ("cuda_binaries", cache.fingerprint([dists, where]))
    return cache.memo("gpucode", key, lambda w: _cuda_binaries(ctx, distributions, store, w), store)


def _cuda_binaries(ctx, distributions, store, witness) -> dict:
    out: Dict[str, dict] = {}
    for dist in distributions:
        name = dist.get("name", "")
        if not is_cuda_distribution(name) or not dist.get("dist_info"):
            continue
        # facts name machine paths: read the files under --root, name them as the machine does
        paths, error = installed_elf_files(ctx, dist, shared_only=True, witness=witness)
        files = [dict(f, path=ctx.machine_path(f["path"])) for f in scan_paths(paths, store=store)]
        cubins = standalone_cubins(ctx, dist, witness=witness)
        if cubins is not None:
            files.append(cubins)
        entry = {"version": dist.get("version", ""), "elf_files": len(paths), "files": files}
        if error:
            entry["error"] = error
        out[name] = entry
    cache = ctx.machine_path(str(ctx.host_path(flashinfer_cache_dir(ctx.env))))
    witness.see(str(ctx.host_path(cache)))
    if ctx.is_dir(cache):
        paths = cache_elf_files(str(ctx.resolve(cache)), witness=witness)
        out[FLASHINFER_CACHE] = {
            "version": "",
            "path": cache,
            "elf_files": len(paths),
            "files": [dict(f, path=ctx.machine_path(f["path"])) for f in scan_paths(paths, store=store)],
        }
    return out
