"""The engine: budgets, concurrency, crashing checks, plugins loaded in isolation."""

import json
import textwrap
import threading
import time

import pytest
from conftest import H100_ROOT, run_cli

from bwdoctor import engine, registry
from bwdoctor.context import Context
from bwdoctor.model import Problem, Unavailable
from bwdoctor.registry import Registry, RegistryError, check, probe


def make_registry(*objs):
    reg = Registry()
    for o in objs:
        reg.add_object(o)
    return reg


def test_hung_probe_times_out_and_others_finish():
    @probe("slow", budget=0.3)
    def slow(ctx):
        time.sleep(30)

    @probe("fast", budget=2)
    def fast(ctx):
        return 1

    @probe("derived", budget=2)
    def derived(ctx, fast):
        return fast + 1

    reg = make_registry(slow, fast, derived)
    t0 = time.perf_counter()
    facts, timings = engine.gather(reg, Context(), ["slow", "derived"])
    assert time.perf_counter() - t0 < 5
    assert isinstance(facts["slow"], Unavailable) and "timed out after 0.3 s" in facts["slow"].reason
    assert facts["derived"] == 2


def test_independent_probes_run_concurrently():
    barrier = threading.Barrier(2, timeout=3)

    @probe("a", budget=5)
    def a(ctx):
        barrier.wait()
        return "a"

    @probe("b", budget=5)
    def b(ctx):
        barrier.wait()
        return "b"

    facts, _ = engine.gather(make_registry(a, b), Context(), ["a", "b"])
    assert facts == {"a": "a", "b": "b"}  # a serial engine would break the barrier


def test_probe_exceptions_and_non_json_become_unavailable():
    @probe("bad", budget=1)
    def bad(ctx):
        raise OSError("disk on fire")

    @probe("weird", budget=1)
    def weird(ctx):
        return {1, 2}

    facts, _ = engine.gather(make_registry(bad, weird), Context(), ["bad", "weird", "missing"])
    assert "disk on fire" in facts["bad"].reason
    assert "not JSON" in facts["weird"].reason
    assert "no probe provides" in facts["missing"].reason


def test_crashing_check_is_an_error_finding_and_run_goes_on():
    @check("BW990", "boom", severity="error", kb="x")
    def boom(kernel_release):
        raise KeyError("nope")

    @check("BW991", "fine", severity="warning", kb="x")
    def fine(kernel_release):
        return Problem("bad kernel")

    specs = [getattr(boom, registry.CHECK_ATTR), getattr(fine, registry.CHECK_ATTR)]
    found = engine.evaluate(specs, {"kernel_release": "6.8"})
    assert [f.status for f in found] == ["error", "fail"]
    assert "KeyError" in found[0].message
    # a crashed check keeps the exit code from 0 (3: no verdict); a definite gate failure still says 1
    assert engine.exit_code(found, "error") == 3 and engine.exit_code(found, "warning") == 1
    assert found[0].evidence["cause"] == "check-crashed"


def test_exit_code_nothing_evaluated():
    @check("BW992", "needs-x", severity="error", kb="x")
    def needs_x(x):
        return None

    found = engine.evaluate([getattr(needs_x, registry.CHECK_ATTR)], {"x": Unavailable("no x")})
    assert found[0].status == "skip" and engine.exit_code(found) == 3


def test_registry_rejects_duplicates_and_bad_ids():
    @check("BW993", "one", severity="error", kb="x")
    def one():
        pass

    @check("BW993", "two", severity="error", kb="x")
    def two():
        pass

    @check("X1", "Bad_Name", severity="fatal", kb="x")
    def three():
        pass

    reg = make_registry(one)
    with pytest.raises(RegistryError, match="already used"):
        reg.add_object(two)
    with pytest.raises(RegistryError, match="BW \\+ 3 digits"):
        reg.add_object(three)


def test_builtin_registry_is_consistent():
    reg = registry.load(no_plugins=True)
    assert reg.validate() == []
    assert reg.load_errors == []


PLUGIN = """
import time
from bwdoctor.registry import check, probe
from bwdoctor.model import Problem

@probe("plugin_hang", budget=0.5)
def plugin_hang(ctx):
    time.sleep(60)

@check("BW981", "plugin-needs-hang", severity="error", kb="peermem-nccl-hang")
def plugin_needs_hang(plugin_hang):
    return Problem("never reached")

@check("BW982", "plugin-raises", severity="error", kb="peermem-nccl-hang")
def plugin_raises(kernel_release):
    raise RuntimeError("plugin bug")
"""


@pytest.fixture
def plugin_path(tmp_path):
    (tmp_path / "bwtestplugin.py").write_text(PLUGIN)
    (tmp_path / "bwbrokenplugin.py").write_text("raise ImportError('broken plugin')\n")
    di = tmp_path / "bwtestplugin-0.1.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: bwtestplugin\nVersion: 0.1\n")
    (di / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [bwdoctor.checks]
        testplugin = bwtestplugin
        broken = bwbrokenplugin
        """)
    )
    return tmp_path


def test_plugins_hang_and_raise_without_stopping_the_run(plugin_path, report_schema, tmp_path):
    import jsonschema
    from hosttrees import blackwell_broken

    env = {"PYTHONPATH": str(plugin_path)}
    env_all = dict(env, BWDOCTOR_PLUGINS="testplugin,broken")
    t0 = time.perf_counter()
    res = run_cli("check", "--format", "json", "--root", str(H100_ROOT), env=env_all)
    assert time.perf_counter() - t0 < 20
    report = json.loads(res.stdout)
    jsonschema.validate(report, report_schema)
    by_id = {f["id"]: f for f in report["findings"]}
    # a probe that hangs is not "does not apply here": its check could not run (status error, cause probe-failed)
    assert by_id["BW981"]["status"] == "error" and "timed out" in by_id["BW981"]["message"]
    assert by_id["BW981"]["evidence"]["cause"] == "probe-failed"
    assert report["summary"]["probe_failed"] >= 1 and report["summary"]["check_crashed"] >= 1
    assert by_id["BW982"]["status"] == "error" and "plugin bug" in by_id["BW982"]["message"]
    assert "broken plugin" in " ".join(report["notes"])
    assert res.returncode == 3  # the H100 tree is healthy, but a crashed check never lets the gate pass
    root = blackwell_broken(tmp_path / "bw")
    res = run_cli("check", "--format", "json", "--root", str(root), env=env_all)
    assert res.returncode == 1 and json.loads(res.stdout)["findings"]
    # --no-plugins and an empty pin load none
    for extra in (["--no-plugins"], []):
        res = run_cli(
            "check",
            "--format",
            "json",
            "--root",
            str(H100_ROOT),
            *extra,
            env=dict(env, BWDOCTOR_PLUGINS="") if not extra else env,
        )
        assert "BW981" not in {f["id"] for f in json.loads(res.stdout)["findings"]}


def test_concurrency_never_exceeds_the_limit(monkeypatch):
    monkeypatch.setenv("BWDOCTOR_JOBS", "2")
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    probes = []
    for i in range(6):

        @probe(f"p{i}", budget=5)
        def p(ctx):
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.05)
            with lock:
                state["now"] -= 1
            return 1

        probes.append(p)
    facts, _ = engine.gather(make_registry(*probes), Context(), [f"p{i}" for i in range(6)])
    assert all(facts[f"p{i}"] == 1 for i in range(6))
    assert state["max"] == 2


def test_a_waiting_probe_frees_its_slot(monkeypatch):
    """Two probes that wait (a hung command) do not hold the two slots for their whole budget: the quick probes
    start once the waiting ones have run for STALL_S, and the run ends when the hung ones time out."""
    monkeypatch.setenv("BWDOCTOR_JOBS", "2")
    monkeypatch.setattr(engine, "STALL_S", 0.1)
    gate = threading.Event()
    started: dict = {}

    def make(name, wait):
        @probe(name, budget=1.0)
        def p(ctx):
            started[name] = time.perf_counter()
            if wait:
                gate.wait(5)
            return 1

        return p

    hung = [make("hung0", True), make("hung1", True)]
    quick = [make(f"quick{i}", False) for i in range(4)]
    t0 = time.perf_counter()
    facts, _ = engine.gather(
        make_registry(*hung, *quick), Context(), ["hung0", "hung1"] + [f"quick{i}" for i in range(4)]
    )
    gate.set()
    assert all(facts[f"quick{i}"] == 1 for i in range(4))
    assert all(started[f"quick{i}"] - t0 < 0.6 for i in range(4))  # long before the hung ones' 1 s budget
    assert all(getattr(facts[f"hung{i}"], "failed", False) for i in range(2))  # timed out: failed, not a value


def test_a_registered_function_whose_module_cannot_be_imported_fails_its_fact_and_its_check():
    """An index entry whose module is gone (a broken install): the probe's fact is failed (never a skip), the check
    that needs it reports an error, and the run goes on."""
    from bwdoctor.model import CheckSpec, ProbeSpec

    reg = Registry()
    reg.add_probe(ProbeSpec("ghost", registry.LazyFunc("bwdoctor.probes.no_such_module", "ghost"), (), 1.0, "t"))
    reg.add_check(
        CheckSpec(
            "BW999",
            "ghost-check",
            "other",
            "error",
            "k",
            ("runtime",),
            registry.LazyFunc("bwdoctor.checks.no_such_module", "ghost_check"),
            ("ghost",),
            "t",
        )
    )
    facts, _ = engine.gather(reg, Context(), ["ghost"])
    assert getattr(facts["ghost"], "failed", False) and "could not be loaded" in facts["ghost"].reason
    (finding,) = engine.evaluate(list(reg.checks.values()), facts)
    assert finding.status == "error"
    reg.probes["ghost"] = ProbeSpec("ghost", lambda ctx: 1, (), 1.0, "t")
    facts, _ = engine.gather(reg, Context(), ["ghost"])
    (finding,) = engine.evaluate(list(reg.checks.values()), facts)
    assert finding.status == "error" and "crashed" in finding.message  # the check's own module is missing
