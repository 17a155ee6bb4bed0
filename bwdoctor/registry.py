"""Check and probe registration: decorators, built-in module lists, entry-point plugins."""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from typing import Any, Callable, Iterable, Optional

from . import lazyre
from .model import GROUPS, SEVERITIES, CheckSpec, ProbeSpec
from .records import dataclass, field

CHECK_ATTR = "__bwdoctor_check__"
PROBE_ATTR = "__bwdoctor_probe__"
ID_RE = lazyre.compile(r"^BW\d{3}$")
NAME_RE = lazyre.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
FACT_RE = lazyre.compile(r"^[a-z][a-z0-9_]*$")

FAMILIES = {
    "1": "host",
    "2": "driver",
    "3": "gpu-code",
    "4": "linking",
    "5": "stack",
    "6": "serve-config",
    "7": "build",
    "8": "capacity",
    "9": "fleet",
}


def _first_line(doc: Optional[str]) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


def _fact_params(func: Callable, skip_first: bool) -> tuple:
    code = getattr(func, "__code__", None)
    if code is not None and not hasattr(func, "__wrapped__") and type(func).__name__ == "function":
        # a plain function: its parameters straight from the code object (inspect costs a check's start-up more
        # than the checks); positional-only ones, *args and **kwargs are not facts, as below
        names = code.co_varnames[code.co_posonlyargcount : code.co_argcount + code.co_kwonlyargcount]
        if skip_first and code.co_posonlyargcount == 0:
            names = names[1:]
        return tuple(names)
    import inspect

    params = list(inspect.signature(func).parameters.values())
    if skip_first:
        params = params[1:]
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def check(
    id: str,
    name: str,
    *,
    severity: str,
    kb: str,
    groups: Iterable[str] = ("runtime",),
    family: Optional[str] = None,
    optional: Iterable[str] = (),
):
    """Declare a check. Its parameters name the facts it needs; it returns None/Problem/Skip/Pass or a list.

    The family defaults to the one of the id's hundreds digit (BW2xx → driver). Facts named in
    `optional` reach the check even when Unavailable; any other Unavailable input makes it skip."""

    def wrap(func):
        fam = family or FAMILIES.get(id[2:3], "other")
        spec = CheckSpec(
            id=id,
            name=name,
            family=fam,
            severity=severity,
            kb=kb,
            groups=tuple(groups),
            func=func,
            needs=_fact_params(func, skip_first=False),
            title=_first_line(func.__doc__) or name,
            origin=func.__module__,
            optional=tuple(optional),
        )
        setattr(func, CHECK_ATTR, spec)
        return func

    return wrap


def probe(name: str, *, budget: float = 5.0):
    """Declare a probe: func(ctx, **facts) returns a JSON-shaped fact or Unavailable(reason)."""

    def wrap(func):
        spec = ProbeSpec(
            name=name,
            func=func,
            needs=_fact_params(func, skip_first=True),
            budget=budget,
            title=_first_line(func.__doc__) or name,
            origin=func.__module__,
        )
        setattr(func, PROBE_ATTR, spec)
        return func

    return wrap


class RegistryError(Exception):
    """The set of checks or probes is inconsistent (duplicate id, bad name, unknown fact)."""


@dataclass
class Registry:
    """All known checks and probes, plus the plugin load errors seen on the way."""

    checks: dict = field(default_factory=dict)  # id -> CheckSpec
    probes: dict = field(default_factory=dict)  # fact name -> ProbeSpec
    load_errors: list = field(default_factory=list)

    def add_module(self, module, origin: str = "builtin") -> None:
        for obj in vars(module).values():
            self.add_object(obj, origin)

    def add_object(self, obj, origin: str = "builtin") -> None:
        spec = getattr(obj, CHECK_ATTR, None)
        if isinstance(spec, CheckSpec):
            self.add_check(spec if origin == "builtin" else _with_origin(spec, origin))
        pspec = getattr(obj, PROBE_ATTR, None)
        if isinstance(pspec, ProbeSpec):
            self.add_probe(pspec if origin == "builtin" else _with_origin(pspec, origin))

    def add_check(self, spec: CheckSpec) -> None:
        problems = []
        if not ID_RE.match(spec.id):
            problems.append(f"id {spec.id!r} is not BW + 3 digits")
        if not NAME_RE.match(spec.name):
            problems.append(f"name {spec.name!r} is not kebab-case")
        if spec.severity not in SEVERITIES:
            problems.append(f"severity {spec.severity!r} not in {SEVERITIES}")
        bad_groups = [g for g in spec.groups if g not in GROUPS]
        if bad_groups:
            problems.append(f"groups {bad_groups} not in {GROUPS}")
        if spec.id in self.checks:
            problems.append(f"id {spec.id} already used by {self.checks[spec.id].name}")
        if any(c.name == spec.name for c in self.checks.values()):
            problems.append(f"name {spec.name} already used")
        if problems:
            raise RegistryError(f"check {spec.id} ({spec.origin}): " + "; ".join(problems))
        self.checks[spec.id] = spec

    def add_probe(self, spec: ProbeSpec) -> None:
        if not FACT_RE.match(spec.name):
            raise RegistryError(f"probe {spec.name!r} ({spec.origin}): fact names are snake_case")
        if spec.name in self.probes:
            raise RegistryError(
                f"probe {spec.name!r} ({spec.origin}) already provided by {self.probes[spec.name].origin}"
            )
        self.probes[spec.name] = spec

    def validate(self) -> list:
        """Return messages for checks/probes that need facts no probe provides."""
        out = []
        for c in self.checks.values():
            missing = [n for n in c.needs if n not in self.probes]
            if missing:
                out.append(f"check {c.id} needs facts no probe provides: {', '.join(missing)}")
        for p in self.probes.values():
            missing = [n for n in p.needs if n not in self.probes]
            if missing:
                out.append(f"probe {p.name} needs facts no probe provides: {', '.join(missing)}")
        return out


def _with_origin(spec, origin):
    from .records import replace

    return replace(spec, origin=origin)


def builtin_modules() -> list:
    """Names of the built-in probe and check modules, from their package lists."""
    from bwdoctor.checks import BUILTIN as CHECKS
    from bwdoctor.probes import BUILTIN as PROBES

    return list(PROBES) + list(CHECKS)


def plugins_enabled(no_plugins: bool) -> Optional[set]:
    """None = every installed plugin; a set = only these entry-point names; empty set = none."""
    if no_plugins:
        return set()
    pinned = os.environ.get("BWDOCTOR_PLUGINS")
    if pinned is None:
        return None
    return {p.strip() for p in pinned.split(",") if p.strip()}


class LazyFunc:
    """A built-in check or probe function named by its module and attribute, imported when first called (or
    resolved): a run imports only the check modules whose checks do run, and its probes start before any check
    module is imported. A module that fails to import fails the call, as a crash of that check or probe."""

    __slots__ = ("module", "attr", "_func")

    def __init__(self, module: str, attr: str) -> None:
        self.module, self.attr = module, attr
        self._func: Optional[Callable] = None

    @property
    def __name__(self) -> str:  # type: ignore[override]
        return self.attr

    @property
    def resolved(self) -> bool:
        return self._func is not None

    def resolve(self) -> Callable:
        if self._func is None:
            self._func = getattr(importlib.import_module(self.module), self.attr)
        return self._func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<LazyFunc {self.module}.{self.attr}>"


INDEX_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "registry_index.json")
INDEX_SCHEMA = "bwdoctor.registry-index/1"


def build_index() -> dict:
    """What the built-in modules register, as data: every check and probe with its metadata and where its
    function lives (written to data/registry_index.json; tests/test_registry_index.py keeps it current)."""
    checks, probes = [], []
    for modname in builtin_modules():
        module = importlib.import_module(modname)
        for attr, obj in vars(module).items():
            spec = getattr(obj, CHECK_ATTR, None)
            if isinstance(spec, CheckSpec) and spec.origin == modname:
                checks.append(
                    {
                        "id": spec.id,
                        "name": spec.name,
                        "family": spec.family,
                        "severity": spec.severity,
                        "kb": spec.kb,
                        "groups": list(spec.groups),
                        "needs": list(spec.needs),
                        "title": spec.title,
                        "optional": list(spec.optional),
                        "module": modname,
                        "attr": attr,
                    }
                )
            pspec = getattr(obj, PROBE_ATTR, None)
            if isinstance(pspec, ProbeSpec) and pspec.origin == modname:
                probes.append(
                    {
                        "name": pspec.name,
                        "needs": list(pspec.needs),
                        "budget": pspec.budget,
                        "title": pspec.title,
                        "module": modname,
                        "attr": attr,
                    }
                )
    return {"schema": INDEX_SCHEMA, "modules": builtin_modules(), "checks": checks, "probes": probes}


def write_index(path: str = "") -> None:
    """Regenerate data/registry_index.json from the built-in modules (after adding or changing a check)."""
    import json

    with open(path or INDEX_PATH, "w", encoding="utf-8") as fh:
        json.dump(build_index(), fh, indent=1, sort_keys=True)
        fh.write("\n")


def _from_index(path: str = "") -> Optional[Registry]:
    """The built-ins from data/registry_index.json without importing their modules; None when the index is
    missing, unreadable or not for these built-in modules (then every module is imported, as before)."""
    import json

    try:
        with open(path or INDEX_PATH, encoding="utf-8") as fh:
            index = json.load(fh)
        if index.get("schema") != INDEX_SCHEMA or index.get("modules") != builtin_modules():
            return None
        reg = Registry()
        for c in index["checks"]:
            reg.add_check(
                CheckSpec(
                    id=c["id"],
                    name=c["name"],
                    family=c["family"],
                    severity=c["severity"],
                    kb=c["kb"],
                    groups=tuple(c["groups"]),
                    func=LazyFunc(c["module"], c["attr"]),
                    needs=tuple(c["needs"]),
                    title=c["title"],
                    origin=c["module"],
                    optional=tuple(c["optional"]),
                )
            )
        for p in index["probes"]:
            reg.add_probe(
                ProbeSpec(
                    name=p["name"],
                    func=LazyFunc(p["module"], p["attr"]),
                    needs=tuple(p["needs"]),
                    budget=float(p["budget"]),
                    title=p["title"],
                    origin=p["module"],
                )
            )
        return reg
    except (OSError, ValueError, KeyError, TypeError, RegistryError):
        return None


def load(no_plugins: bool = False, extra_modules: Iterable[str] = ()) -> Registry:
    """Build the registry: built-ins first (from the index, their modules imported when used), then plugins, each
    plugin in isolation."""
    reg = _from_index()
    if reg is None:
        reg = Registry()
        for modname in builtin_modules():
            reg.add_module(importlib.import_module(modname))
    for modname in extra_modules:
        _load_isolated(reg, lambda m=modname: importlib.import_module(m), f"module {modname}")
    allowed = plugins_enabled(no_plugins)
    if allowed == set():
        return reg
    memo: dict = {}
    for group in ("bwdoctor.probes", "bwdoctor.checks"):
        for ep in _entry_points(group, memo):
            if allowed is not None and ep.name not in allowed:
                continue
            _load_isolated(reg, ep.load, f"plugin {ep.name} ({ep.value})")
    return reg


@dataclass(frozen=True)
class _EntryPoint:
    """What the registry uses of importlib.metadata.EntryPoint: name, value ("module:attr [extras]"), load()."""

    name: str
    value: str

    def load(self) -> Any:
        ref = self.value.split("[", 1)[0].strip()
        module, _, attrs = ref.partition(":")
        obj = importlib.import_module(module.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj


def _scan_entry_points(group: str, memo: Optional[dict] = None) -> Optional[list]:
    """The entry points of a group from the entry_points.txt of each distribution on sys.path, the first copy of a
    distribution winning (as importlib.metadata.entry_points does) - without importing importlib.metadata (and
    email, zipfile, csv...), which costs more than the rest of bwdoctor's start. None when sys.path holds an
    entry only importlib.metadata reads (a zip or egg file, a path finder of its own). `memo` (a dict the caller
    keeps for one load) lets one scan serve every group."""
    from importlib.machinery import PathFinder

    if any(getattr(f, "find_distributions", None) for f in sys.meta_path if f is not PathFinder):
        return None
    memo = memo if memo is not None else {}
    if "groups" not in memo:
        memo["groups"] = _scan_all()
    groups = memo["groups"]
    return None if groups is None else list(groups.get(group, ()))


def _scan_all() -> Optional[dict]:
    seen: set = set()
    out: dict = {}
    for entry in sys.path:
        entry = entry or "."
        try:
            names = sorted(os.listdir(entry))
        except NotADirectoryError:
            return None  # a zip archive on sys.path
        except (OSError, ValueError):
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            dist = re.sub(r"[-_.]+", "_", name.rsplit(".", 1)[0].split("-", 1)[0]).lower()
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(entry, name, "entry_points.txt"), encoding="utf-8", errors="replace") as fh:
                    text = fh.read(1 << 20)
            except OSError:
                continue
            section = None
            for line in text.splitlines():
                line = line.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1].strip()
                elif section is not None and "=" in line:
                    key, _, value = line.partition("=")
                    out.setdefault(section, []).append(_EntryPoint(key.strip(), value.strip()))
    return out


def _entry_points(group: str, memo: Optional[dict] = None):
    try:
        fast = _scan_entry_points(group, memo)
        if fast is not None:
            return fast
        from importlib.metadata import entry_points

        if sys.version_info >= (3, 10):
            return list(entry_points(group=group))
        return list(entry_points().get(group, []))  # pragma: no cover
    except Exception:  # a broken distribution's metadata must not stop the run
        return []


def _load_isolated(reg: Registry, loader: Callable, label: str) -> None:
    """Load one plugin object or module; any failure is recorded, never raised."""
    trial = Registry(checks=dict(reg.checks), probes=dict(reg.probes))
    try:
        obj = loader()
        if isinstance(obj, types.ModuleType):
            trial.add_module(obj, origin=label)
        else:
            trial.add_object(obj, origin=label)
    except BaseException as exc:  # noqa: BLE001 - third-party code may raise anything
        if isinstance(exc, KeyboardInterrupt):
            raise
        reg.load_errors.append(f"{label}: {type(exc).__name__}: {exc}")
        return
    reg.checks, reg.probes = trial.checks, trial.probes
