"""The shipped registry index (bwdoctor/data/registry_index.json) says what the built-in modules register, so that
a run imports only the check modules whose checks run and starts its probes before any of them."""

from __future__ import annotations

import json

from conftest import H100_ROOT, modules_after_check

from bwdoctor import engine, registry
from bwdoctor.checks import BUILTIN as CHECK_MODULES
from bwdoctor.context import Context
from bwdoctor.model import CheckSpec

REGENERATE = 'python -c "from bwdoctor import registry; registry.write_index()"'


def _full() -> registry.Registry:
    reg = registry.Registry()
    for modname in registry.builtin_modules():
        import importlib

        reg.add_module(importlib.import_module(modname))
    return reg


_CHECK_KEYS = ("id", "name", "family", "severity", "kb", "groups", "needs", "title", "origin", "optional")


def _meta(spec: CheckSpec) -> dict:
    return {k: getattr(spec, k) for k in _CHECK_KEYS}


def test_index_is_current():
    with open(registry.INDEX_PATH, encoding="utf-8") as fh:
        shipped = json.load(fh)
    assert shipped == json.loads(json.dumps(registry.build_index())), f"stale index: run {REGENERATE}"


def test_index_registry_equals_imported_registry():
    lazy = registry._from_index()
    assert lazy is not None
    full = _full()
    assert list(lazy.checks) == list(full.checks)  # the same order: findings come in registration order
    assert list(lazy.probes) == list(full.probes)
    for cid, spec in full.checks.items():
        assert _meta(lazy.checks[cid]) == _meta(spec), cid
        assert lazy.checks[cid].func.resolve() is spec.func
    for name, spec in full.probes.items():
        got = lazy.probes[name]
        assert (got.needs, got.budget, got.title, got.origin) == (spec.needs, spec.budget, spec.title, spec.origin)
        assert got.func.resolve() is spec.func


def test_unusable_index_falls_back_to_importing(tmp_path):
    for text in ("", "{", json.dumps({"schema": "other"}), json.dumps({"schema": registry.INDEX_SCHEMA})):
        p = tmp_path / "index.json"
        p.write_text(text)
        assert registry._from_index(str(p)) is None
    stale = registry.build_index()
    stale["modules"] = stale["modules"][:-1]
    p.write_text(json.dumps(stale))
    assert registry._from_index(str(p)) is None


def test_findings_equal_with_index_and_with_every_module_imported():
    def report(reg):
        ctx = Context(root=str(H100_ROOT))
        rep = engine.run(engine.Selection(groups=("runtime", "serve")), engine.Source(context=ctx), reg)
        return [(f.id, f.status, f.severity, f.message) for f in rep.findings]

    assert report(registry._from_index()) == report(_full())


def test_a_run_imports_only_the_check_modules_it_runs(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    modules, report = modules_after_check(root, tmp_path)
    imported = {m for m in modules if m.startswith("bwdoctor.checks.")}
    ran = {f["id"] for f in report["findings"] if f["status"] not in ("skip",)}
    lazy = registry._from_index()
    needed = {lazy.checks[c].origin for c in ran if c in lazy.checks}
    assert needed <= imported
    assert len(imported) < len(CHECK_MODULES)  # a check that skips is never imported
