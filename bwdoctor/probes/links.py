"""Would each compiled extension of the inspected environment load? (dynamic-link model, nothing loaded)"""

from __future__ import annotations

import json
import os
import re
from typing import List, Optional

from .. import lazyre
from ..model import Unavailable
from ..registry import probe
from .pyenv import canonical, installed_elf_files

EXTENSION_DISTS = (
    "vllm",
    "flash-attn",
    "flashinfer-python",
    "flashinfer-jit-cache",
    "xformers",
    "torchvision",
    "torchaudio",
    "bitsandbytes",
    "sgl-kernel",
    "vllm-flash-attn",
    "flash-attn-3",
    "deep-gemm",
)
TORCH_LIB = lazyre.compile(r"^lib(torch|c10)[a-z_]*\.so$")
MAX_SYMBOLS = 20  # undefined symbols recorded in full (demangled, version, required_by)
MAX_NAMES = 1000  # undefined symbol names recorded (mangled) for the cause rules
META_LIMIT = 1 << 20
# CUDA libraries whose soname carries the major of the toolkit they belong to (libcudart.so.12, libcublas.so.13)
CUDA_SONAME = lazyre.compile(
    r"^lib(cudart|cublas|cublasLt|cufft|cufftw|curand|cusolver|cusolverMg|cusparse|nvrtc|nvJitLink|cupti|nvblas"
    r"|npp[a-z]*|nvjpeg)\.so\.(\d+)$"
)


def _torch_requirement(d: dict) -> Optional[str]:
    """The Requires-Dist line on torch itself (not torchvision/torchaudio/torchao), extras excluded."""
    for r in d.get("requires") or []:
        head, _, marker = r.partition(";")
        name = re.match(r"\s*([A-Za-z0-9_.\-]+)", head)
        if name and canonical(name.group(1)) == "torch" and "extra" not in marker:
            return head.strip()
    return None


def _requires_torch(d: dict) -> bool:
    return _torch_requirement(d) is not None


def _read_json(ctx, path: str):
    """A small JSON file of the inspected machine (a machine path, read through the context door), or None."""
    try:
        return json.loads(ctx.read_bytes(path, META_LIMIT).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def built_for(ctx, d: dict, witness=None) -> Optional[dict]:
    """Which torch a distribution was built for, from what it wrote down (see linkcause.built_for_torch)."""
    cpp_path = os.path.join(d["location"], "xformers", "cpp_lib.json")
    direct_path = os.path.join(d["dist_info"], "direct_url.json") if d.get("dist_info") else None
    if witness is not None:
        witness.see_all(str(ctx.host_path(p)) for p in (cpp_path, direct_path) if p)
    cpp_lib = _read_json(ctx, cpp_path) if d["name"] == "xformers" else None
    direct = _read_json(ctx, direct_path) if direct_path else None
    url = direct.get("url") if isinstance(direct, dict) and isinstance(direct.get("url"), str) else None
    from ..elf.linkcause import built_for_torch

    return built_for_torch(d.get("version") or "", url, cpp_lib, _torch_requirement(d))


def select_loaded(name: str, paths: List[str], torch_build, env: dict) -> List[str]:
    """The libraries of a distribution that its import actually loads, where it picks one of several:
    bitsandbytes ships libbitsandbytes_cuda118.so ... _cuda132.so, _rocm64.so ..., _xpu2025.so, _cpu.so and
    loads the one for torch's CUDA (BNB_CUDA_VERSION overrides) or ROCm, else the CPU one."""
    if name != "bitsandbytes":
        return paths
    tb = torch_build if isinstance(torch_build, dict) else {}
    cuda, hip = tb.get("cuda"), tb.get("hip")
    if env.get("BNB_CUDA_VERSION") or cuda:
        pick = f"libbitsandbytes_cuda{env.get('BNB_CUDA_VERSION') or str(cuda).replace('.', '')}.so"
    elif hip:
        pick = "libbitsandbytes_rocm" + "".join(str(hip).split(".")[:2]) + ".so"
    else:
        pick = "libbitsandbytes_cpu.so"
    # _nocublaslt twins (bitsandbytes <= 0.44, for GPUs below CC 7.5) are variants too, never loaded with the pick
    variants = [p for p in paths if re.match(r"libbitsandbytes_[a-z]+\d*(_nocublaslt)?\.so$", os.path.basename(p))]
    return [p for p in paths if p not in variants] + [p for p in variants if os.path.basename(p) == pick]


def link_result(ld, path: str, location: str, raw: Optional[dict] = None, imp: Optional[dict] = None) -> dict:
    """What the loader model sees for one file, no verdict: whether it loads; the libraries it needs that are not
    found (every path tried); the symbol versions missing; the undefined symbols (the first MAX_SYMBOLS mangled
    and demangled, every name up to MAX_NAMES mangled) and those whose other-std::string-ABI twin the process
    defines; the import that fails (or the optional load). The causes are made by checks/linkcauses.py."""
    from ..elf.demangle import demangle
    from ..elf.linkcause import import_of, swap_string_abi

    r = raw if raw is not None else ld.check(path)
    obj = ld.open(path)
    exports = obj.defines if hasattr(obj, "defines") else (lambda _n: False)
    imp = imp or import_of(path, location, exports)
    names = [u["symbol"] for u in r["undefined"]]
    und = [
        {
            "symbol": u["symbol"],
            "demangled": demangle(u["symbol"]),
            "version": u["version"],
            "required_by": u["required_by"],
        }
        for u in r["undefined"][:MAX_SYMBOLS]
    ]
    twins = [n for n in names[:MAX_NAMES] if (t := swap_string_abi(n)) and ld.defined_anywhere(t)]
    missing = [dict(m, found_elsewhere=installed_copies(ld, m["name"], location)) for m in r["missing_libraries"]]
    loads = not (r["error"] or r["missing_libraries"] or r["missing_versions"] or r["undefined"])
    return {
        "path": path,
        "import": imp["import"],
        "soft": imp["soft"],
        "loads": loads,
        "missing_libraries": missing,
        "missing_versions": r["missing_versions"],
        "undefined_beside_missing": (r.get("undefined_beside_missing") or [])[:MAX_NAMES],
        "undefined": und,
        "undefined_count": len(r["undefined"]),
        "undefined_names": names[:MAX_NAMES],
        "abi_twin_defined": twins,
        "error": r["error"],
    }


def installed_copies(ld, name: str, location: str) -> List[str]:
    """Where a library the loader did not find is installed all the same in the environment's NVIDIA wheels
    (<site-packages>/nvidia/<pkg>/lib, nvidia/cu<N>/lib): present, only not on this file's search path."""
    from ..elf.dynlink import _machine_paths

    if not location or not re.match(r"^[A-Za-z0-9_.+\-]+$", name):
        return []
    return _machine_paths(ld, os.path.join(location, "nvidia", "*", "lib", name))[:3]


def dist_results(ld, paths: List[str], location: str) -> List[dict]:
    """Results for one distribution's libraries. A package loads its own libraries first (torchaudio
    loads lib/libtorchaudio.so before _torchaudio.so), so libraries that link become available by
    soname to the others, until nothing changes."""
    results = {p: link_result(ld, p, location) for p in paths}
    added, done = [], set()
    for _ in range(len(paths)):
        fresh = [p for p, r in results.items() if r["loads"] and p not in done]
        if not fresh:
            break
        for p in fresh:
            done.add(p)
            obj = ld.open(p)
            for key in {obj.soname, os.path.basename(p)} - {None} if hasattr(obj, "needed") else ():
                if key not in ld.loaded:
                    ld.loaded[key] = obj
                    added.append(key)
        results = {p: (r if r["loads"] else link_result(ld, p, location)) for p, r in results.items()}
    for key in added:
        ld.loaded.pop(key, None)
    own = {os.path.basename(p) for p in paths}

    def root_cause_first(r):  # a file that fails only because a sibling failed is listed after it
        return (r["loads"], bool(r["missing_libraries"]) and r["missing_libraries"][0]["name"] in own)

    return sorted((results[p] for p in paths), key=root_cause_first)


def cuda_libraries(ld, paths: List[str]) -> dict:
    """{soname: machine path} of the CUDA libraries (libcudart.so.12, libcublas.so.13...) that importing these files
    maps into the process, torch's already loaded ones included (what the loader model resolves)."""
    out: dict = {}
    for key, obj in ld.loaded.items():
        if CUDA_SONAME.match(key) and hasattr(obj, "machine_path"):
            out.setdefault(key, obj.machine_path)
    for p in paths:
        obj = ld.open(p)
        if not hasattr(obj, "needed"):
            continue
        for o in ld.closure(obj)[0]:
            name = o.soname or os.path.basename(o.machine_path)
            if CUDA_SONAME.match(name):
                out.setdefault(name, o.machine_path)
    return dict(sorted(out.items()))


def links_torch(ld, paths: List[str]) -> bool:
    """Whether any of the files names libtorch*/libc10* in DT_NEEDED (a torch extension by its own word)."""
    for p in paths:
        obj = ld.open(p)
        if hasattr(obj, "needed") and any(TORCH_LIB.match(n) for n in obj.needed):
            return True
    return False


def torch_entry(ctx, ld, distributions, tb: dict, torch_dir: str, witness=None) -> dict:
    """The extension_links row of torch itself: what `import torch` would fail on (see dynlink.preload_torch)."""
    d: dict = next((x for x in distributions if x["name"] == "torch"), {})
    if witness is not None:
        witness.glob(str(ctx.host_path(os.path.join(torch_dir, "_C.*.so"))))
        witness.see(str(ctx.host_path(os.path.join(torch_dir, "lib", "libtorch_global_deps.so"))))
    files = [
        link_result(ld, r["path"], os.path.dirname(torch_dir), raw=r, imp={"import": "torch", "soft": None})
        for r in ld.torch_failures
    ]
    return {
        "distribution": "torch",
        "version": tb.get("version") or d.get("version"),
        "dist_info": d.get("dist_info"),
        "requires_torch": None,
        "built_for": None,
        "files": files,
        "checked": 1 + len(ctx.glob(os.path.join(torch_dir, "_C.*.so"))),
        "cuda_libraries": cuda_libraries(ld, []),
    }


# Python modules a distribution imports at its own import that another distribution may no longer ship, as
# (distribution, glob of its files, module, provider distribution). bitsandbytes <= 0.45.0 imports
# triton.ops.matmul_perf_model (bitsandbytes/triton/int8_matmul_*.py, reached from `import bitsandbytes` through
# bitsandbytes.nn.triton_based_modules) whenever triton is installed; triton.ops is in the triton 3.1.0 wheel and gone
# from 3.2.0, and bitsandbytes 0.45.1 vendors the module (all read from the PyPI wheels).
IMPORTED_MODULES = (("bitsandbytes", "bitsandbytes/triton/*.py", "triton.ops", "triton"),)


def missing_python_modules(ctx, d: dict, distributions, witness=None) -> List[dict]:
    """Modules the distribution's own code imports (module-level `from M...`/`import M...`) that the installed
    provider does not have: `import <distribution>` fails with "No module named 'M'" before any library loads."""
    out: List[dict] = []
    providers = {x["name"]: x for x in distributions}
    for dist, pattern, module, provider in IMPORTED_MODULES:
        prov = providers.get(provider)
        if d["name"] != dist or prov is None:
            continue
        init = os.path.join(prov["location"], *module.split("."), "__init__.py")
        if witness is not None:
            witness.see(str(ctx.host_path(init)))
            witness.glob(str(ctx.host_path(os.path.join(d["location"], pattern))))
        if ctx.exists(init):
            continue
        rx = re.compile(rf"^\s*(?:from\s+{re.escape(module)}[.\s]|import\s+{re.escape(module)}\b)")
        for path in ctx.glob(os.path.join(d["location"], pattern)):
            try:
                lines = ctx.read_text(path, META_LIMIT).splitlines()
            except OSError:
                continue
            hit = next((i for i, line in enumerate(lines, 1) if rx.match(line)), None)
            if hit is not None:
                out.append(
                    {
                        "module": module,
                        "imported_by": path,
                        "line": hit,
                        "text": lines[hit - 1].strip()[:200],
                        "provider": provider,
                        "provider_version": prov.get("version"),
                    }
                )
                break
    return out


# Environment variables the loader model and the extensions' own library choice read (the memo's key holds them).
LINK_ENV = ("LD_LIBRARY_PATH", "TORCH_USE_RTLD_GLOBAL", "BNB_CUDA_VERSION")


@probe("extension_links", budget=15.0)
def extension_links(ctx, python_env, distributions, torch_build):
    """Compiled extensions of vLLM, flash-attn, xformers, torchvision, torchaudio... that will not load, with the
    loader model's raw result for each failing file and the torch each distribution was built for.

    The result is pure in the files and directories the loader model looks at, so on the live machine it is
    kept whole in the cache (bwdoctor.cache.memo) and reused while every one of them is unchanged."""
    if isinstance(distributions, Unavailable) or isinstance(python_env, Unavailable):
        return Unavailable("the inspected environment is unknown")
    from .. import cache

    def compute(witness):
        return _extension_links(ctx, python_env, distributions, torch_build, witness)

    store = cache.store(ctx)
    if store is None or not ctx.live_machine:
        return compute(cache.Witness())
    key = (
        "extension_links",
        cache.fingerprint([python_env, distributions, torch_build, [ctx.env.get(v) for v in LINK_ENV]]),
    )
    return cache.memo("links", key, compute, store)


def _extension_links(ctx, python_env, distributions, torch_build, witness):
    root = str(ctx.root).rstrip("/") or "/"
    exe = python_env.get("executable") or ""

    def machine(p: str) -> str:  # a path of this host → the same file as the inspected machine names it
        return ctx.machine_path(p)

    def host(p):  # facts name machine paths (a static python_env); older callers gave host paths
        return p if not p or root == "/" or p.startswith(root + "/") else str(ctx.resolve(p))

    if python_env.get("source") == "static":
        exe = host(exe)
    if root != "/" and not exe.startswith(root + "/"):
        return Unavailable(
            f"the inspected interpreter {exe} is not inside --root {root}: its extensions and the "
            "libraries they need must come from one machine (pass --python ROOT/.../bin/python)"
        )
    tb = None if isinstance(torch_build, Unavailable) else torch_build
    torch_dir = machine(os.path.join(tb["location"], "torch")) if tb else None
    env = dict(ctx.env)
    python_env = dict(python_env, executable=machine(exe))
    from .. import cache
    from ..elf.dynlink import interpreter_loader

    ld_plain, notes = interpreter_loader(python_env, root, env, store=cache.store(ctx))
    ld_torch = None
    out: List[dict] = []
    if torch_dir:  # torch's own libraries: `import torch` (libtorch_global_deps.so, then torch/_C*.so)
        ld_torch, n2 = interpreter_loader(python_env, root, env, torch_dir, ld_plain.objects, tb, ld_plain.store)
        notes += n2
        out.append(torch_entry(ctx, ld_torch, distributions, tb, torch_dir, witness))
    for d in distributions:
        if d["name"] == "torch" or not d.get("dist_info"):
            continue
        known = d["name"] in EXTENSION_DISTS or _requires_torch(d)
        paths, _err = installed_elf_files(ctx, d, shared_only=True, witness=witness)
        gaps = missing_python_modules(ctx, d, distributions, witness)
        if not gaps and (not paths or not (known or links_torch(ld_plain, paths))):
            continue
        paths = [machine(p) for p in select_loaded(d["name"], paths, tb, env)]
        # every one of these is imported after torch (they import it first)
        ld = ld_torch if ld_torch is not None else ld_plain
        built = built_for(ctx, d, witness)
        files = dist_results(ld, paths, machine(d["location"]))
        row = {
            "distribution": d["name"],
            "version": d["version"],
            "dist_info": d["dist_info"],
            "requires_torch": _torch_requirement(d),
            "built_for": built,
            "files": [f for f in files if not f["loads"]],
            "checked": len(files),
            "cuda_libraries": cuda_libraries(ld, paths),
        }
        if gaps:
            row["missing_modules"] = gaps
        out.append(row)
    torch_cuda = cuda_libraries(ld_torch, []) if ld_torch is not None else {}
    for ld in (ld_plain, ld_torch):
        if ld is not None:
            ld.witness(witness)
    return {
        "extensions": out,
        "torch": tb["version"] if tb else None,
        "torch_cuda_libraries": torch_cuda,
        "notes": notes,
    }


def _not_elf(arg: str) -> dict:
    return {
        "path": arg,
        "not_elf": True,
        "loads": False,
        "import": None,
        "soft": None,
        "missing_libraries": [],
        "missing_versions": [],
        "undefined": [],
        "undefined_count": 0,
        "error": "not an ELF file",
    }


@probe("named_links", budget=60.0)
def named_links(ctx, python_env, distributions, torch_build):
    """The loader model's raw result for the shared objects, directories or installed distributions a command
    names (`bwdoctor symbols`), each with the distribution and the torch it was built for."""
    from ..elf.distfiles import is_elf, iter_elf_files
    from ..elf.dynlink import interpreter_loader

    if isinstance(python_env, Unavailable) and ctx.live_machine:
        return Unavailable(f"the inspected interpreter is unknown: {python_env.reason}")
    py = {} if isinstance(python_env, Unavailable) else python_env  # a tree without Python: files are still read
    tb = None if isinstance(torch_build, Unavailable) else torch_build
    torch_dir = os.path.join(tb["location"], "torch") if tb else None
    root = str(ctx.root)
    ld, notes = interpreter_loader(py, root, dict(ctx.env), torch_dir, torch_build=tb)
    by_name = {} if isinstance(distributions, Unavailable) else {d["name"]: d for d in distributions}
    rows: List[dict] = []
    unknown: List[str] = []

    def machine(host_path: str) -> str:  # the loader names files as the inspected machine sees them
        return ctx.machine_path(host_path)

    for arg in ctx.options.get("link_paths") or []:
        key = canonical(arg)
        host = str(ctx.host_path(arg)) if os.path.isabs(arg) else arg
        if os.path.isdir(host):
            rows += [
                dict(link_result(ld, machine(f), machine(host)), distribution=None, built_for=None)
                for f in iter_elf_files(host)
            ]
        elif os.path.isfile(host):
            if not is_elf(host):
                rows.append(dict(_not_elf(arg), distribution=None, built_for=None))
            else:
                path = machine(os.path.abspath(host))
                rows.append(dict(link_result(ld, path, os.path.dirname(path)), distribution=None, built_for=None))
        elif key in by_name:
            d = by_name[key]
            paths, err = installed_elf_files(ctx, d, shared_only=True)
            paths = [machine(p) for p in paths]
            if err:
                notes.append(f"{d['name']}: {err}")
            built = built_for(ctx, d)
            rows += [
                dict(r, distribution=d["name"], built_for=built)
                for r in dist_results(ld, select_loaded(d["name"], paths, tb, dict(ctx.env)), d["location"])
            ]
        else:
            unknown.append(arg)
    return {"python": py.get("executable"), "rows": rows, "unknown": unknown, "notes": notes}
