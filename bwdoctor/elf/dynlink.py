"""Model of what the dynamic loader does when Python imports a compiled extension — without loading it.

The process is modelled as Python has it at that moment: the interpreter (and libpython) in the global
scope, and, when the module imports torch first, torch's libraries: libtorch_global_deps.so loaded
RTLD_GLOBAL, torch/_C and its dependencies loaded (found by soname by later DT_NEEDED entries). The
extension's DT_NEEDED are then resolved like ld.so does (DT_RPATH of the chain unless DT_RUNPATH,
LD_LIBRARY_PATH, DT_RUNPATH, /etc/ld.so.cache, default dirs, $ORIGIN), every newly loaded object's
version needs are checked against the providers' version definitions, and every non-weak undefined
symbol must be defined in the global scope or the extension's dependency closure.
"""

from __future__ import annotations

import glob
import os
import stat
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .dynelf import DynElf, ElfError
from .ldcache import read as read_ldcache
from .rootpath import realpath_under

DEFAULT_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")
# e_machine -> (multiarch triplet, $PLATFORM): the default directories differ per architecture (GB10 is aarch64)
ARCHES = {62: ("x86_64-linux-gnu", "x86_64"), 183: ("aarch64-linux-gnu", "aarch64")}
MAX_OBJECTS = 2000
# What `import torch` preloads from site-packages (torch/__init__.py `_load_global_deps`, read from the PyPI wheels
# torch-2.9.1, 2.10.0 and 2.11.0 for Linux x86_64; 2.13.0 is the same as 2.11.0). Each is (folder, glob) searched in
# every sys.path entry as nvidia/<folder>/lib/<glob>, nvidia/cu<torch CUDA major>/lib/<glob>, <folder>/lib/<glob>.
# torch < 2.10, after libtorch_global_deps.so loaded with libcudart in the process: nvrtc and nvJitLink only.
TORCH_CUDA_PRELOADS = (
    ("cuda_nvrtc", "libnvrtc.so.*[0-9]"),
    ("cuda_nvrtc", "libnvrtc-builtins.so.*[0-9]"),
    ("nvjitlink", "libnvJitLink.so.*[0-9]"),
)
# torch >= 2.10 `_preload_cuda_deps()`: the whole list, in order, after a successful load (a required one not found
# ends the loop, inside try/except) and, on every torch, after libtorch_global_deps.so failed with an error naming one
# of them (torch 2.9.1 has the same list without libcublasLt and libnvrtc-builtins); nvtx is optional.
TORCH_CUDA_DEPS = (
    ("cublas", "libcublasLt.so.*[0-9]"),
    ("cublas", "libcublas.so.*[0-9]"),
    ("cudnn", "libcudnn.so.*[0-9]"),
    ("cuda_nvrtc", "libnvrtc.so.*[0-9]"),
    ("cuda_nvrtc", "libnvrtc-builtins.so.*[0-9]"),
    ("cuda_runtime", "libcudart.so.*[0-9]"),
    ("cuda_cupti", "libcupti.so.*[0-9]"),
    ("cufft", "libcufft.so.*[0-9]"),
    ("curand", "libcurand.so.*[0-9]"),
    ("nvjitlink", "libnvJitLink.so.*[0-9]"),
    ("cusparse", "libcusparse.so.*[0-9]"),
    ("cusparselt", "libcusparseLt.so.*[0-9]"),
    ("cusolver", "libcusolver.so.*[0-9]"),
    ("nccl", "libnccl.so.*[0-9]"),
    ("nvshmem", "libnvshmem_host.so.*[0-9]"),
    ("cufile", "libcufile.so.*[0-9]"),
)
TORCH_OPTIONAL_DEPS = (("nvtx", "libnvToolsExt.so.*[0-9]"),)


def torch_cuda_deps(version: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    """TORCH_CUDA_DEPS as a torch release lists them: 2.10 has no libcublasLt, 2.9 neither libnvrtc-builtins."""
    minor = _torch_minor(version)
    if minor >= (2, 11):
        return TORCH_CUDA_DEPS
    drop = {"libcublasLt.so.*[0-9]"} | ({"libnvrtc-builtins.so.*[0-9]"} if minor < (2, 10) else set())
    return tuple(d for d in TORCH_CUDA_DEPS if d[1] not in drop)


def default_dirs(machine: int) -> tuple:
    """The loader's built-in directories for objects of one architecture (multiarch first, as Debian's)."""
    triplet = ARCHES.get(machine, ARCHES[62])[0]
    return (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


class Loader:
    """Resolve and cache shared objects under a root, like ld.so would on that machine."""

    def __init__(
        self, root: str = "/", env: Optional[dict] = None, objects: Optional[dict] = None, store: Any = None
    ) -> None:
        self.root = root.rstrip("/") or "/"
        self.env = env or {}
        # machine realpath -> DynElf | error str; pass another Loader's to parse each file once per run
        self.objects: Dict[str, object] = {} if objects is None else objects
        entries, self.ldcache_error = read_ldcache(self.host("/etc/ld.so.cache"))
        self.ldcache: Dict[str, List[str]] = {}
        for e in entries:
            if e["arch"] in ("x86-64", "aarch64", ""):
                self.ldcache.setdefault(e["soname"], []).append(e["path"])
        self.loaded: Dict[str, DynElf] = {}  # soname -> object already in the process
        self.global_scope: List[DynElf] = []
        self.executable: Optional[DynElf] = None  # its DT_RPATH is searched last in every RPATH chain
        self.torch_failures: List[dict] = []  # what would make `import torch` fail (see preload_torch)
        self._real: Dict[str, str] = {}
        self._real_dirs: Dict[str, str] = {}
        self._expanded: Dict[Tuple[str, str, int], str] = {}
        self.globbed: List[str] = []  # the host patterns _machine_paths listed (for a bwdoctor.cache.Witness)
        # a bwdoctor.cache.Store: what is read from an unchanged file (dynamic section, undefined symbols, the
        # symbols a scope resolves) is reused from an earlier run
        self.store: Any = store
        # $LIB is "lib/<triplet>" on multiarch (Debian/Ubuntu) systems, "lib64" elsewhere
        self.multiarch = os.path.isdir(self.host("/lib/x86_64-linux-gnu")) or os.path.isdir(
            self.host("/lib/aarch64-linux-gnu")
        )

    def host(self, path: str) -> str:
        return path if self.root == "/" else os.path.join(self.root, path.lstrip("/"))

    def witness(self, w: Any) -> None:
        """Note in a bwdoctor.cache.Witness every host path this loader's answers depend on: each path it tried
        (a name in a directory, followed through symlinks), each directory it resolved, ld.so.cache, the $LIB
        test and each pattern it listed."""
        w.see_all(self.host(p) for p in self._real)
        w.see_all(self.host(d) for d in self._real_dirs)
        w.see_all(self.host(p) for p in ("/etc/ld.so.cache", "/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu"))
        for pattern in self.globbed:
            w.glob(pattern)

    def realpath(self, path: str) -> str:
        """Machine path after symlinks, each step kept under the root (cached: searches repeat paths)."""
        if path not in self._real:
            self._real[path] = self._realpath(path)
        return self._real[path]

    def _realpath(self, path: str) -> str:
        # The loader tries a name in many directories and many names in one directory: resolve each directory
        # once, then only the last component (one lstat instead of one per component of a deep venv path).
        head, name = os.path.split(path)
        if not head.startswith("/") or name in ("", ".", ".."):
            return realpath_under(self.root, path)
        real_head = self._real_dirs.get(head)
        if real_head is None:
            real_head = self._real_dirs[head] = realpath_under(self.root, head)
        joined = os.path.join(real_head, name)
        try:
            if stat.S_ISLNK(os.lstat(self.host(joined)).st_mode):
                return realpath_under(self.root, joined)
        except (OSError, ValueError):
            pass
        return joined

    def open(self, path: str):
        """DynElf for a machine path, or an error string (cached by realpath)."""
        real = self.realpath(path)
        if real not in self.objects:
            host = self.host(real)
            if not os.path.exists(host):
                self.objects[real] = (
                    "does not exist"
                    if not os.path.lexists(self.host(path))
                    else "is a broken symbolic link (or a symlink loop)"
                )
            elif not os.path.isfile(host):
                self.objects[real] = "is not a regular file"
            else:
                try:
                    obj = DynElf(host, self.store)
                    obj.machine_path = real
                    self.objects[real] = obj
                except ElfError as exc:
                    self.objects[real] = str(exc)
        return self.objects[real]

    def _expand(self, entry: str, origin: str, machine: int = 62) -> str:
        """An RPATH/RUNPATH entry with $ORIGIN, $LIB and $PLATFORM (also ${...}) substituted as ld.so does."""
        if "$" not in entry:
            return entry
        memo = (entry, origin, machine)
        if memo in self._expanded:
            return self._expanded[memo]
        triplet, platform = ARCHES.get(machine, ARCHES[62])
        lib = f"lib/{triplet}" if self.multiarch else "lib64"
        for key, val in (("ORIGIN", origin), ("LIB", lib), ("PLATFORM", platform)):
            entry = entry.replace("${%s}" % key, val).replace("$" + key, val)
        self._expanded[memo] = entry
        return entry

    def search(self, name: str, requester: DynElf, chain: Sequence[DynElf]) -> Tuple[Optional[DynElf], List[str]]:
        """Find a DT_NEEDED name for `requester`; returns (object or None, the paths tried)."""
        if name in self.loaded:
            return self.loaded[name], []
        tried: List[str] = []

        def try_dir(d: str):
            path = os.path.join(d, name)
            tried.append(path)
            obj = self.open(path)
            if isinstance(obj, DynElf) and obj.machine == requester.machine:
                return obj
            return None

        if "/" in name:
            obj = self.open(name)
            return (obj if isinstance(obj, DynElf) else None), [name]
        origin = os.path.dirname(getattr(requester, "machine_path", requester.path))
        mach = requester.machine
        dirs: List[str] = []
        if not requester.runpath:
            # DT_RPATH of the requester, then of each object that loaded it, then of the executable; an
            # object with DT_RUNPATH contributes nothing to the chain (glibc dl-load.c, cache_rpath)
            rchain = [requester, *reversed(chain)]
            if self.executable is not None and self.executable not in rchain:
                rchain.append(self.executable)
            for o in rchain:
                if o.runpath:
                    continue
                o_origin = os.path.dirname(getattr(o, "machine_path", o.path))
                dirs += [self._expand(r, o_origin, mach) for r in o.rpath]
        dirs += [d for d in (self.env.get("LD_LIBRARY_PATH") or "").replace(";", ":").split(":") if d]
        dirs += [self._expand(r, origin, mach) for r in requester.runpath]
        for d in dirs:
            obj = try_dir(d)
            if obj:
                return obj, tried
        if not requester.nodeflib:
            for path in self.ldcache.get(name, []):
                tried.append(path)
                obj = self.open(path)
                if isinstance(obj, DynElf) and obj.machine == requester.machine:
                    return obj, tried
            for d in default_dirs(mach):
                obj = try_dir(d)
                if obj:
                    return obj, tried
        return None, tried

    def closure(self, root_obj: DynElf) -> Tuple[List[DynElf], List[dict]]:
        """The objects a dlopen of root_obj brings into its scope (BFS), and the DT_NEEDED not found."""
        order, missing = [root_obj], []
        seen = {id(root_obj)}
        queue: List[Tuple[DynElf, List[DynElf]]] = [(root_obj, [])]
        while queue and len(order) < MAX_OBJECTS:
            obj, chain = queue.pop(0)
            for name in obj.needed:
                dep, tried = self.search(name, obj, chain)
                if dep is None:
                    reasons = {p: self.objects.get(self.realpath(p)) for p in tried}
                    missing.append(
                        {
                            "name": name,
                            "needed_by": getattr(obj, "machine_path", obj.path),
                            "tried": [f"{p} ({r})" if isinstance(r, str) else p for p, r in reasons.items()],
                        }
                    )
                    continue
                if id(dep) not in seen:  # a DT_NEEDED loop ends here, as in ld.so
                    seen.add(id(dep))
                    order.append(dep)
                    queue.append((dep, chain + [obj]))
        return order, missing

    def preload(self, path: str, global_: bool) -> Optional[str]:
        """Put an object and its dependencies into the process (RTLD_GLOBAL or by soname only)."""
        obj = self.open(path)
        if not isinstance(obj, DynElf):
            return f"{path}: {obj}"
        objs, _ = self.closure(obj)
        for o in objs:
            self.loaded.setdefault(o.soname or os.path.basename(o.machine_path), o)
            self.loaded.setdefault(os.path.basename(o.machine_path), o)
            if global_ and o not in self.global_scope:
                self.global_scope.append(o)
        return None

    def undefined(self, obj: DynElf) -> List[Tuple[str, Optional[str], Optional[str], bool]]:
        """obj.undefined(), from the cache when the file is unchanged (it is pure in the file's bytes)."""
        from ..cache import file_key

        key = file_key(obj.stat) if self.store is not None else None
        if key is not None:
            hit = self.store.get("undefined", key)
            if isinstance(hit, list) and all(isinstance(u, list) and len(u) == 4 for u in hit):
                return [(u[0], u[1], u[2], u[3]) for u in hit]
        out = obj.undefined()
        if key is not None:
            self.store.put("undefined", key, [list(u) for u in out])
        return out

    def defined_anywhere(self, name: str) -> bool:
        """Whether any object already in the process (global or by soname) defines a symbol."""
        seen = set()
        for o in [*self.global_scope, *self.loaded.values()]:
            if id(o) not in seen:
                seen.add(id(o))
                if o.defines(name):
                    return True
        return False

    def check(self, path: str, symbols: bool = True) -> dict:
        """What dlopen(path) would do now: missing libraries, version needs and (unless symbols is False: torch's
        own libraries hold hundreds of thousands) symbols not found."""
        result: Dict[str, Any] = {
            "path": path,
            "missing_libraries": [],
            "missing_versions": [],
            "undefined": [],
            "error": None,
        }
        obj = self.open(path)
        if not isinstance(obj, DynElf):
            result["error"] = f"{path} {obj}"
            return result
        objs, result["missing_libraries"] = self.closure(obj)
        new = [o for o in objs if o not in self.loaded.values() and o not in self.global_scope]
        scope = self.global_scope + [o for o in objs if o not in self.global_scope]
        by_name: Dict[str, DynElf] = {}
        for o in scope:
            for key in (o.soname, os.path.basename(o.machine_path)):
                if key:
                    by_name.setdefault(key, o)
        for o in new:
            for fname, versions in o.verneeds.items():
                provider = by_name.get(fname)
                if provider is None or not provider.verdefs:
                    continue
                for vname in versions:
                    if not provider.defines_version(vname):
                        result["missing_versions"].append(
                            {
                                "version": vname,
                                "file": fname,
                                "required_by": o.machine_path,
                                "provider": provider.machine_path,
                            }
                        )
        if not symbols:
            return result
        undefined = self.unresolved(new, scope)
        if result["missing_libraries"]:
            # dlopen stops at the first missing library, so these are not its error; but a symbol that the
            # libraries found (torch's) do not define fails the import even once the library is found
            result["undefined_beside_missing"] = [u["symbol"] for u in undefined]
        else:
            result["undefined"] = undefined
        return result

    def unresolved(self, new: List[DynElf], scope: List[DynElf]) -> List[dict]:
        """The non-weak undefined symbols of the newly loaded objects that no object of the scope defines (looked up
        through each object's hash table, in scope order, as ld.so does). Pure in the files' bytes and their order,
        so cached under the identities of every object of the scope."""
        from ..cache import file_key

        key = None
        if self.store is not None:
            idents = [file_key(o.stat) for o in scope]
            if all(idents) and all(o in scope for o in new):
                key = (repr(idents), repr([scope.index(o) for o in new]))
        if key is not None:
            hit = self.store.get("unresolved", key)
            if isinstance(hit, list):
                try:
                    return [{"symbol": s, "version": v, "required_by": new[i].machine_path} for s, v, i in hit]
                except (TypeError, ValueError, IndexError):
                    pass
        found, rows = [], []
        for i, o in enumerate(new):
            for name, version, _vfile, weak in self.undefined(o):
                if weak:
                    continue
                if not any(s.defines(name, version) for s in scope):
                    found.append({"symbol": name, "version": version, "required_by": o.machine_path})
                    rows.append([name, version, i])
        if key is not None:
            self.store.put("unresolved", key, rows)
        return found


def interpreter_loader(
    python_env: dict,
    root: str = "/",
    env: Optional[dict] = None,
    torch_dir: Optional[str] = None,
    objects: Optional[dict] = None,
    torch_build: Optional[dict] = None,
    store: Any = None,
) -> Tuple[Loader, List[str]]:
    """A Loader with the interpreter (and, when given, torch) already in the process; plus notes.

    objects: the parsed-object cache of another Loader of the same run (files are parsed once). torch_build (its
    version and CUDA) picks what `import torch` preloads; the failures of `import torch` itself are left in
    Loader.torch_failures (the loader's results for libtorch_global_deps.so and torch/_C*.so). store: a
    bwdoctor.cache.Store for what is read from unchanged files."""
    ld = Loader(root, env, objects, store)
    notes = []
    if ld.ldcache_error:  # e.g. a minimal container image: ld.so then searches only paths and default dirs
        notes.append(
            f"ld.so.cache not used ({ld.ldcache_error}): only DT_RPATH/DT_RUNPATH, LD_LIBRARY_PATH "
            "and the default directories are searched"
        )
    exe = python_env.get("executable")
    if exe:
        err = ld.preload(exe, global_=True)
        if err:
            notes.append(f"interpreter not read: {err}")
        else:
            obj = ld.open(exe)
            ld.executable = obj if isinstance(obj, DynElf) else None
    if torch_dir:
        search = [p for p in [*(python_env.get("sys_path") or []), *(python_env.get("site_packages") or [])] if p]
        search.append(os.path.dirname(torch_dir))
        notes += preload_torch(ld, torch_dir, list(dict.fromkeys(search)), torch_build or {})
    return ld, notes


def _machine_paths(ld: Loader, pattern: str) -> List[str]:
    ld.globbed.append(ld.host(pattern))
    hits = sorted(glob.glob(ld.host(pattern)))
    return hits if ld.root == "/" else ["/" + os.path.relpath(h, ld.root) for h in hits]


def torch_dep_paths(ld: Loader, search: Sequence[str], folder: str, pattern: str, cuda: Optional[str]) -> List[str]:
    """torch/__init__.py `_get_cuda_dep_paths` over sys.path: the candidates of the first entry that has any."""
    for entry in search:
        found = _machine_paths(ld, os.path.join(entry, "nvidia", folder, "lib", pattern))
        if cuda:
            found += _machine_paths(ld, os.path.join(entry, "nvidia", f"cu{cuda.split('.')[0]}", "lib", pattern))
        found += _machine_paths(ld, os.path.join(entry, folder, "lib", pattern))
        if found:
            return found
    return []


def _torch_minor(version: Optional[str]) -> Tuple[int, int]:
    parts = (version or "").split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def preload_torch(
    ld: Loader, torch_dir: str, search: Sequence[str] = (), torch_build: Optional[dict] = None
) -> List[str]:
    """Put into the process what `import torch` loads (torch/__init__.py), in its order; returns notes.

    libtorch_global_deps.so RTLD_GLOBAL; when that fails on a CUDA library, each of TORCH_CUDA_DEPS from sys.path
    (a required one missing fails the import) and libtorch_global_deps.so again; when it loaded with libcudart,
    nvrtc and nvJitLink (torch < 2.10) or all of TORCH_CUDA_DEPS (torch >= 2.10) from sys.path; then torch._C
    (and libtorch*, libc10* through it) RTLD_LOCAL — present to later DT_NEEDED by soname only — unless
    TORCH_USE_RTLD_GLOBAL is set, which makes them global. What would make `import torch` fail is left in
    ld.torch_failures (the loader's results for those files)."""
    tb = torch_build or {}
    cuda = tb.get("cuda") if isinstance(tb.get("cuda"), str) else None
    notes: List[str] = []
    failures: List[dict] = []
    ld.torch_failures = failures

    def preload_list(deps: Sequence[Tuple[str, str]], required: bool) -> Optional[str]:
        """Preload each from sys.path; the pattern of the first required one not found (the loop ends there)."""
        for folder, pattern in deps:
            paths = torch_dep_paths(ld, search, folder, pattern, cuda)
            if not paths:
                if required:
                    return pattern
                continue
            ld.preload(paths[0], global_=False)
        return None

    gd = os.path.join(torch_dir, "lib", "libtorch_global_deps.so")
    if os.path.exists(ld.host(gd)):
        first = ld.check(gd)
        stems = {p.split(".", 1)[0] for _f, p in TORCH_CUDA_DEPS}
        missing = [m["name"] for m in first["missing_libraries"]]
        if missing and any(n.split(".", 1)[0] in stems for n in missing):
            # OSError naming a CUDA library: torch preloads every one from sys.path, then tries again
            absent = preload_list(torch_cuda_deps(tb.get("version")), required=True)
            if absent is None:
                preload_list(TORCH_OPTIONAL_DEPS, required=False)
                first = ld.check(gd)
            else:
                notes.append(f"import torch: {absent} not found in sys.path (torch's fallback for {missing[0]})")
        if first["missing_libraries"] or first["error"]:
            failures.append(first)
            return notes
        ld.preload(gd, global_=True)
    if any(k.startswith("libcudart.so") for k in ld.loaded):
        if _torch_minor(tb.get("version")) >= (2, 10):
            preload_list(torch_cuda_deps(tb.get("version")), required=True)
        else:
            for folder, pattern in TORCH_CUDA_PRELOADS:
                for path in torch_dep_paths(ld, search, folder, pattern, cuda)[:1]:
                    ld.preload(path, global_=True)
    global_c = bool(ld.env.get("TORCH_USE_RTLD_GLOBAL"))
    for machine in _machine_paths(ld, os.path.join(torch_dir, "_C.*.so")):
        r = ld.check(machine, symbols=False)
        if r["missing_libraries"] or r["error"] or r["missing_versions"]:
            failures.append(r)
        err = ld.preload(machine, global_=global_c)
        if err:
            notes.append(err)
    return notes
