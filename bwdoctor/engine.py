"""The spine: a selection of checks and a source of facts → probes (concurrent, budgeted) → checks → Report.

`run(selection, source)` is the one library entry; every command is a view over it (or over
`gather_facts` when it needs facts only). A source is the live machine, a `--root` tree or a facts file.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import __version__, exitcodes
from .context import Context
from .errors import UsageError
from .model import (
    CAUSE_CRASH,
    CAUSE_PROBE,
    CheckSpec,
    Finding,
    Location,
    Pass,
    ProbeSpec,
    Problem,
    Report,
    Skip,
    Unavailable,
    probe_failure,
)
from .records import dataclass, field
from .registry import LazyFunc, Registry

# Exit codes of every command (README "Exit codes"): 0 nothing at or above --fail-on and everything ran;
# 1 the gate failed; 2 usage: an option or a named input that cannot be used; 3 no verdict: nothing could be
# evaluated, a check crashed or could not run because its probe failed, or bwdoctor itself failed.
EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INCOMPLETE = exitcodes.OK, exitcodes.GATE, exitcodes.USAGE, exitcodes.INCOMPLETE

# Facts every report carries for its header (host, driver, GPUs, Python), whatever the checks need.
SUMMARY_FACTS = ("host", "kernel_release", "nvidia_driver", "gpus", "targets", "python_env")


@dataclass
class Source:
    """Where facts come from: the machine a Context reads (live, or a --root tree), or facts given as they are.

    preset: facts replayed from a facts file or another node; they are used as they are and nothing is
    gathered. label names the replayed facts in skip reasons ("the facts file host.json")."""

    context: Context = field(default_factory=Context)
    preset: Optional[Dict[str, Any]] = None
    label: str = "this machine"

    @classmethod
    def facts_file(cls, path: str, context: Optional[Context] = None) -> "Source":
        """Facts saved by `bwdoctor facts --format json` (or a report); raises UsageError when unusable."""
        from . import factsfile

        try:
            preset = factsfile.load(path)
        except factsfile.FactsFileError as exc:
            raise UsageError(str(exc)) from None
        return cls(context=context or Context(), preset=preset, label=f"the facts file {os.path.basename(path)}")

    @classmethod
    def facts(cls, facts: Mapping[str, Any], label: str = "the facts given") -> "Source":
        """Facts already known (another node's, a build's), used as they are."""
        return cls(context=Context(), preset=dict(facts), label=label)


@dataclass
class Selection:
    """Which checks run: --select/--ignore terms (ids, names, families, groups), or the groups when no term is
    given, or explicit check specs; plus facts to gather whatever the checks need."""

    select: Sequence[str] = ()
    ignore: Sequence[str] = ()
    groups: Sequence[str] = ()
    checks: Optional[Sequence[CheckSpec]] = None
    facts: Sequence[str] = SUMMARY_FACTS


def run(selection: Selection, source: Source, reg: Optional[Registry] = None, *, no_plugins: bool = False) -> Report:
    """Plan, gather and evaluate: the Report for these checks on this source.

    Raises UsageError for select/ignore terms that match no check."""
    from . import registry as registry_mod

    if source.preset is None:  # NVML's child starts now: it overlaps the imports of the checks and the probes
        from .probes.nvidia import start_nvml_early

        start_nvml_early(source.context)
    reg = reg if reg is not None else registry_mod.load(no_plugins=no_plugins)
    notes = list(reg.load_errors) + reg.validate()
    if selection.checks is not None:
        checks = list(selection.checks)
    else:
        unknown = unknown_terms(reg, list(selection.select) + list(selection.ignore))
        if unknown:
            raise UsageError(f"--select/--ignore: no check matches {', '.join(unknown)} (see 'bwdoctor list')")
        checks = select_checks(reg, list(selection.select) or list(selection.groups), selection.ignore)
    names = needed_facts(reg, checks, extra=selection.facts)
    facts, timings = gather_facts(names, source, reg, idle=Prefetch(checks))
    findings = evaluate(checks, facts)
    targets = facts.get("targets")
    targets = targets if isinstance(targets, list) else []
    if not targets:
        notes.append(
            "no target GPU architecture: no NVIDIA GPU was seen; pass --target sm_120 (or another) "
            "to check the software for a GPU this machine lacks"
        )
    shown = {n: facts[n] for n in names if n in facts}
    return Report(
        version=__version__, targets=targets, facts=shown, findings=findings, probes=timings, checks=checks, notes=notes
    )


def gather_facts(
    names: Sequence[str],
    source: Source,
    reg: Optional[Registry] = None,
    idle: Optional[Callable[[Mapping[str, Any]], bool]] = None,
) -> Tuple[Dict[str, Any], Dict[str, float]]:
    """(facts, probe seconds) for the facts named and their inputs, from the source.

    A replayed source answers from its facts (a --target given on the command line still wins);
    a fact it lacks is Unavailable, never read from this machine."""
    from . import registry as registry_mod

    reg = reg if reg is not None else registry_mod.load(no_plugins=True)
    if source.preset is None:
        facts, timings = gather(reg, source.context, names, idle=idle)
        problems = unusable_inputs(source.context, facts)
        if problems:
            raise UsageError("; ".join(problems))
        return facts, timings
    facts = dict(source.preset)
    if source.context.targets:
        facts["targets"] = list(source.context.targets)
    for n in with_inputs(reg, names):
        facts.setdefault(n, Unavailable(f"not in {source.label}"))
    return facts, {}


def unusable_inputs(ctx: Context, facts: Mapping[str, Any]) -> List[str]:
    """What the user named (--python, $VIRTUAL_ENV / $CONDA_PREFIX, --config) that the probes could not use.

    A named input that cannot be used is a usage error (exit 2), never a silent skip: `--python /bin/ls` would
    otherwise drop every Python check and pass."""
    out: List[str] = []
    py = facts.get("python_env")
    if isinstance(py, Unavailable):
        if ctx.python:
            out.append(f"--python {ctx.python}: cannot be used: {py.reason}")
        elif not ctx.in_tree and _environment_used(facts):
            named = next(((v, ctx.env[v]) for v in ("VIRTUAL_ENV", "CONDA_PREFIX") if ctx.env.get(v)), None)
            if named:
                out.append(
                    f"{named[0]}={named[1]}: cannot be used: {py.reason} "
                    f"(activate an existing environment, unset {named[0]}, or pass --python)"
                )
    serve = facts.get("serve_configs")
    if ctx.configs and "serve_configs" in facts:
        if isinstance(serve, Unavailable):
            out.append(f"--config {', '.join(ctx.configs)}: cannot be read: {serve.reason}")
        elif isinstance(serve, dict):
            out += _unusable_configs(ctx, serve)
    return out


def _environment_used(facts: Mapping[str, Any]) -> bool:
    """Whether the answer depends on the active environment. Commands that read named files (cubins, kernels)
    use it only to find a distribution by name: for paths alone a stale $VIRTUAL_ENV is not the user's input."""
    named = facts.get("named_artifacts")
    if not isinstance(named, list):
        return True
    return any(
        isinstance(a, dict) and (a.get("kind") == "distribution" or "installed distribution" in str(a.get("problem")))
        for a in named
    )


def _unusable_configs(ctx: Context, fact: Mapping[str, Any]) -> List[str]:
    """--config files that could not be read, or in which nothing was understood as a vLLM serve config."""
    errors = [e for e in fact.get("errors") or [] if isinstance(e, str)]
    configs = [c for c in fact.get("configs") or [] if isinstance(c, dict)]
    # a config entry that holds nothing but its read errors (binary data, over the size bound) was not read
    parsed = {
        c.get("path") for c in configs if c.get("argv") or c.get("env") or c.get("launcher") or not c.get("errors")
    }
    errors += [e for c in configs if c.get("path") not in parsed for e in c.get("errors") or [] if isinstance(e, str)]
    out = []
    for name in ctx.configs:
        paths = {os.path.abspath(name), str(ctx.host_path(name)) if name.startswith("/") else os.path.abspath(name)}
        unread = next((e for e in errors if any(e.startswith(p + ":") for p in paths)), None)
        if unread:
            out.append(f"--config {name}: {unread.split(': ', 1)[-1]}")
        elif not paths & parsed:
            out.append(
                f"--config {name}: nothing in it is a vLLM serve config bwdoctor understands (a vLLM YAML config, "
                "a systemd unit, a compose file, a Kubernetes manifest, an .env file or a script that runs vllm)"
            )
    return out


def select_checks(reg: Registry, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> List[CheckSpec]:
    """Checks matching --select (all when empty) minus --ignore; each term an id, name, family or group."""

    def matches(spec: CheckSpec, term: str) -> bool:
        t = term.strip()
        return t.upper() == spec.id or t == spec.name or t == spec.family or t in spec.groups

    chosen = [
        c for c in sorted(reg.checks.values(), key=lambda c: c.id) if not select or any(matches(c, t) for t in select)
    ]
    return [c for c in chosen if not any(matches(c, t) for t in ignore)]


def unknown_terms(reg: Registry, terms: Iterable[str]) -> List[str]:
    """Select/ignore terms that match no check (a likely typo)."""
    known = set()
    for c in reg.checks.values():
        known.update({c.id, c.name, c.family, *c.groups})
    return [t for t in terms if t.strip() not in known and t.strip().upper() not in known]


def needed_facts(reg: Registry, checks: Sequence[CheckSpec], extra: Iterable[str] = ()) -> List[str]:
    """Every fact the checks need, with the facts their probes need, in dependency order."""
    return with_inputs(reg, [n for c in checks for n in c.needs] + list(extra))


def with_inputs(reg: Registry, names: Iterable[str]) -> List[str]:
    """The facts named, preceded by every fact their probes need (dependency order, no repeats)."""
    order: List[str] = []
    seen: set[str] = set()

    def visit(name: str, stack: Tuple[str, ...]) -> None:
        if name in seen or name in stack:
            return
        spec = reg.probes.get(name)
        if spec is not None:
            for dep in spec.needs:
                visit(dep, stack + (name,))
        seen.add(name)
        order.append(name)

    for n in names:
        visit(n, ())
    return order


class _ProbeRun:
    """One probe running in a daemon thread, so that a hung probe can be abandoned."""

    def __init__(self, spec: ProbeSpec, ctx: Context, facts: Mapping[str, Any], finished: threading.Event):
        self.spec = spec
        self.finished = finished  # shared by the probes of one gather: set when any of them ends
        self.result: Any = probe_failure(f"probe {spec.name} timed out after {spec.budget:g} s")
        self.done = threading.Event()
        self.started = time.perf_counter()
        self.elapsed: Optional[float] = None
        kwargs = {n: facts[n] for n in spec.needs}
        self.thread = threading.Thread(target=self._run, args=(ctx, kwargs), daemon=True, name=f"probe-{spec.name}")

    def _run(self, ctx: Context, kwargs: Dict[str, Any]) -> None:
        try:
            value = self.spec.func(ctx, **kwargs)
            self.result = value
        except Exception as exc:  # a probe must never stop the run
            self.result = probe_failure(f"probe {self.spec.name} failed: {type(exc).__name__}: {exc}")
        finally:
            self.elapsed = time.perf_counter() - self.started
            self.done.set()
            self.finished.set()


def gather(
    reg: Registry,
    ctx: Context,
    names: Sequence[str],
    preset: Optional[Mapping[str, Any]] = None,
    on_progress: Optional[Callable[[str, Any], None]] = None,
    idle: Optional[Callable[[Mapping[str, Any]], bool]] = None,
) -> Tuple[Dict[str, Any], Dict[str, float]]:
    """Run the probes for `names` (plus their inputs); independent probes run concurrently.

    preset: facts already known (a --facts replay); they are used as they are and not gathered.
    idle: called with the facts so far while every running probe is still at work; it does one short piece of
    work and returns True, or returns False when it has none left (then the loop waits for a probe).
    Returns (facts, timings) where timings maps probe name to seconds.
    """
    from .context import watch_termination

    watch_termination()  # the probes' commands run from their threads, where the handlers cannot be set
    facts: Dict[str, Any] = dict(preset or {})
    timings: Dict[str, float] = {}
    pending = [n for n in with_inputs(reg, names) if n not in facts]
    for n in list(pending):
        if n not in reg.probes:
            facts[n] = probe_failure(f"no probe provides the fact {n!r}")
            pending.remove(n)
    running: Dict[str, _ProbeRun] = {}
    limit = max_workers()
    finished_any = threading.Event()

    while pending or running:
        # start probes whose inputs are ready, never more at work at once than the limit; a probe running for
        # longer than STALL_S is waiting (a command, a slow disk, a wedged driver) and no longer holds a slot
        start_look = time.perf_counter()
        busy = sum(1 for r in running.values() if start_look - r.started < STALL_S)
        waiting_for_slot = False
        for n in list(pending):
            spec = reg.probes[n]
            if all(d in facts for d in spec.needs):
                if busy >= limit:
                    waiting_for_slot = True
                    continue
                pending.remove(n)
                error = _load_error(spec.func)  # its module is imported here, in one thread, never in two at once
                if error:
                    facts[n] = probe_failure(f"probe {n} could not be loaded: {error}")
                    timings[n] = 0.0
                    if on_progress:
                        on_progress(n, facts[n])
                    continue
                run = _ProbeRun(spec, ctx, facts, finished_any)
                running[n] = run
                busy += 1
                run.thread.start()
            elif any(d not in facts and d not in running and d not in pending for d in spec.needs):
                facts[n] = probe_failure(f"needs facts that cannot be gathered: {spec.needs}")
                pending.remove(n)
        if not running:
            if pending:  # a dependency cycle: report, never loop
                for n in pending:
                    facts[n] = probe_failure("probe dependency cycle")
                pending = []
            break
        # wait for any probe to finish (each sets the shared event as it ends) or the first to run out of budget
        now = time.perf_counter()
        deadline = min(r.started + r.spec.budget for r in running.values())
        if waiting_for_slot:  # look again when the first busy probe turns into a waiting one
            deadline = min([deadline] + [r.started + STALL_S for r in running.values() if r.started + STALL_S > now])
        finished_any.clear()  # cleared before looking: a probe ending after the look sets it again
        finished = [n for n, r in running.items() if r.done.is_set()]
        if not finished and idle is not None and idle(facts):
            continue  # the main thread did a piece of work while the probes ran (imported a check module)
        if not finished:
            finished_any.wait(timeout=max(0.0, deadline - now))
            finished = [n for n, r in running.items() if r.done.is_set()]
            now = time.perf_counter()
            finished += [n for n, r in running.items() if n not in finished and now >= r.started + r.spec.budget]
        for n in finished:
            r = running.pop(n)
            if r.done.is_set():
                facts[n] = _inherit_failure(_jsonable(r.result, n), [facts.get(d) for d in r.spec.needs])
                timings[n] = r.elapsed or 0.0
            else:
                facts[n] = probe_failure(f"probe {n} timed out after {r.spec.budget:g} s")
                timings[n] = r.spec.budget
            if on_progress:
                on_progress(n, facts[n])
    if "bwdoctor.cache" in sys.modules:  # a probe used the cache: write what it added, once per run
        sys.modules["bwdoctor.cache"].finish()
    return facts, timings


def _load_error(func: Any) -> Optional[str]:
    """Import a lazily registered function's module now: None when it is loaded (or was never lazy), else why not."""
    if isinstance(func, LazyFunc):
        try:
            func.resolve()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    return None


class Prefetch:
    """While the probes run, import the module of each selected check whose facts have all arrived usable: the
    checks that will run. A check that will skip is never imported."""

    def __init__(self, checks: Sequence[CheckSpec]) -> None:
        self.waiting = [c for c in checks if isinstance(c.func, LazyFunc) and not c.func.resolved]

    def __call__(self, facts: Mapping[str, Any]) -> bool:
        for i, spec in enumerate(self.waiting):
            if all(n in facts and (n in spec.optional or not isinstance(facts[n], Unavailable)) for n in spec.needs):
                del self.waiting[i]
                _load_error(spec.func)  # a module that fails here fails the check's call the same way, reported there
                return True
        return False


# A probe at work this long is taken to be waiting, and frees its slot for the next probe.
STALL_S = 0.25
DEFAULT_JOBS = 2


def max_workers() -> int:
    """Probes at work at once (BWDOCTOR_JOBS overrides; default 2). Python runs one thread at a time: a third or a
    sixteenth probe thread only adds switching between them (measured on a 16-core host: 2 was the fastest, warm and
    cold), while a probe that waits on a command stops holding its slot after STALL_S."""
    return jobs_override() or DEFAULT_JOBS


def jobs_override() -> Optional[int]:
    """BWDOCTOR_JOBS when it is a positive number, else None."""
    import os

    env = os.environ.get("BWDOCTOR_JOBS", "")
    return int(env) if env.isdigit() and int(env) > 0 else None


def _jsonable(value: Any, name: str) -> Any:
    """A probe's result if it is JSON-shaped, else an Unavailable saying so."""
    import json

    if isinstance(value, Unavailable):
        return value
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError) as exc:
        return probe_failure(f"probe {name} returned a value that is not JSON: {exc}")


def _inherit_failure(value: Any, inputs: Sequence[Any]) -> Any:
    """A probe's Unavailable result is a failure too when one of its inputs failed (a python_env that timed out
    leaves `distributions` unavailable: that is not "does not apply here")."""
    if isinstance(value, Unavailable) and not value.failed:
        broken = [i for i in inputs if isinstance(i, Unavailable) and i.failed]
        if broken:
            return probe_failure(f"{value.reason} ({broken[0].reason})")
    return value


def evaluate(checks: Sequence[CheckSpec], facts: Mapping[str, Any]) -> List[Finding]:
    """Run each check on the facts; Unavailable inputs → skip; an exception → error finding."""
    out: List[Finding] = []
    for spec in checks:
        missing = [(n, facts.get(n, Unavailable(f"fact {n} was not gathered"))) for n in spec.needs]
        missing = [(n, v) for n, v in missing if isinstance(v, Unavailable) and n not in spec.optional]
        broken = [(n, v) for n, v in missing if v.failed]
        if broken:  # its probe crashed or timed out: the check could not run, which is not "does not apply"
            reason = "; ".join(f"{n}: {v.reason}" for n, v in broken)
            out.append(
                _finding(
                    spec,
                    "error",
                    "error",
                    f"could not run: {reason}",
                    {"cause": CAUSE_PROBE, "facts": [n for n, _ in broken]},
                )
            )
            continue
        if missing:
            reason = "; ".join(f"{n}: {v.reason}" for n, v in missing)
            out.append(_finding(spec, "skip", spec.severity, f"skipped: {reason}"))
            continue
        try:
            result = spec.func(**{n: facts.get(n, Unavailable("not gathered")) for n in spec.needs})
        except Exception as exc:  # a crashed check is a finding, never the end of the run
            import traceback  # a crash report's frames (a healthy run reports none)

            tb = traceback.extract_tb(exc.__traceback__)
            where = f"{tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else "?"
            out.append(
                _finding(
                    spec,
                    "error",
                    "error",
                    f"check crashed: {type(exc).__name__}: {exc}",
                    {"cause": CAUSE_CRASH, "exception": type(exc).__name__, "where": where},
                )
            )
            continue
        found = _to_findings(spec, result)
        gone = [
            (n, v) for n, v in ((n, facts.get(n)) for n in spec.optional) if isinstance(v, Unavailable) and v.failed
        ]
        if gone and all(f.status in ("pass", "skip") for f in found):
            # an optional fact it could do without failed to be gathered: a pass (or skip) made without it is
            # not a verdict; a problem it found all the same stands
            reason = "; ".join(f"{n}: {v.reason}" for n, v in gone)
            found = [
                _finding(
                    spec,
                    "error",
                    "error",
                    f"could not run: {reason}",
                    {"cause": CAUSE_PROBE, "facts": [n for n, _ in gone]},
                )
            ]
        out.extend(found)
    return out


def _to_findings(spec: CheckSpec, result: Any) -> List[Finding]:
    items = result if isinstance(result, (list, tuple)) else [result]
    items = [_checked(i) for i in items]
    if not items:
        return [_finding(spec, "pass", spec.severity, spec.title)]
    found = []
    for item in items:
        if item is None:
            found.append(_finding(spec, "pass", spec.severity, spec.title))
        elif isinstance(item, Pass):
            found.append(_finding(spec, "pass", spec.severity, item.message or spec.title, item.evidence))
        elif isinstance(item, Skip):
            found.append(_finding(spec, "skip", spec.severity, f"skipped: {item.reason}"))
        elif isinstance(item, Problem):
            sev = item.severity if item.severity in ("error", "warning", "info") else spec.severity
            f = _finding(spec, "fail", sev, item.message, item.evidence, item.location)
            if isinstance(item.kb, str) and item.kb:
                f.kb = item.kb
            found.append(f)
        else:
            found.append(
                _finding(
                    spec,
                    "error",
                    "error",
                    f"check returned {type(item).__name__} {str(item)[:80]!r}, not a Problem/Skip/Pass/None "
                    "with a text message and a dict of evidence",
                    {"cause": CAUSE_CRASH},
                )
            )
    return found


def _checked(item: Any) -> Any:
    """A check result whose message and evidence have the types renderers rely on (else a marker)."""
    if isinstance(item, (Problem, Pass, Skip)):
        text = item.reason if isinstance(item, Skip) else item.message
        ev = getattr(item, "evidence", {})
        if not isinstance(text, str) or not isinstance(ev, dict):
            return "malformed"
    return item


def _finding(
    spec: CheckSpec,
    status: str,
    severity: str,
    message: str,
    evidence: Optional[Dict[str, Any]] = None,
    location: Optional[Location] = None,
) -> Finding:
    return Finding(
        id=spec.id,
        name=spec.name,
        family=spec.family,
        status=status,
        severity=severity,
        message=message,
        kb=spec.kb,
        evidence=dict(evidence or {}),
        location=location,
    )


def exit_code(findings: Sequence[Finding], fail_on: str = "error") -> int:
    """1 a finding at or above fail_on failed; else 3 when a check crashed or could not run (status error) or
    nothing was evaluated (every check skipped); else 0.

    A definite gate failure wins over an incomplete run: CI fails either way, and 1 names the finding to fix."""
    levels = {"error": ("error",), "warning": ("error", "warning"), "info": ("error", "warning", "info")}[fail_on]
    if any(f.status == "fail" and f.severity in levels for f in findings):
        return EXIT_GATE
    if any(f.status == "error" for f in findings):
        return EXIT_INCOMPLETE
    if not any(f.status in ("pass", "fail") for f in findings):
        return EXIT_INCOMPLETE
    return EXIT_OK
