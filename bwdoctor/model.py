"""Data types shared by probes, checks, the engine and the renderers."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .records import dataclass, field

REPORT_SCHEMA = "bwdoctor.report/1"
FACTS_SCHEMA = "bwdoctor.facts/1"

STATUSES = ("pass", "fail", "skip", "error")
# Why a finding has status error: the check itself raised (or returned garbage), or it could not run because a
# fact it needs failed to be gathered (its probe crashed, timed out or ran out of budget).
CAUSE_CRASH, CAUSE_PROBE = "check-crashed", "probe-failed"
SEVERITIES = ("error", "warning", "info")
GROUPS = ("runtime", "pre-build", "serve", "fleet")


@dataclass(frozen=True)
class Unavailable:
    """A fact that could not be gathered, with the reason a person can act on.

    failed: False when the fact honestly does not exist here ("no GPU", "torch is not installed": a check that
    needs it does not apply, status skip); True when its probe crashed, timed out, ran out of budget or returned
    garbage (the check could not run: status error, and the run never exits 0)."""

    reason: str
    failed: bool = False

    def to_json(self) -> Dict[str, Any]:
        return {"$unavailable": self.reason, "$failed": True} if self.failed else {"$unavailable": self.reason}


def probe_failure(reason: str) -> Unavailable:
    """An Unavailable for a probe that crashed, timed out or returned garbage (not "does not apply here")."""
    return Unavailable(reason, failed=True)


def is_unavailable_json(value: Any) -> bool:
    """True for the JSON form of an Unavailable fact."""
    return (
        isinstance(value, dict)
        and "$unavailable" in value
        and set(value) <= {"$unavailable", "$failed"}
        and isinstance(value["$unavailable"], str)
        and isinstance(value.get("$failed", False), bool)
    )


def fact_to_json(value: Any) -> Any:
    """Encode a fact value for JSON output (Unavailable becomes {"$unavailable": reason})."""
    return value.to_json() if isinstance(value, Unavailable) else value


def fact_from_json(value: Any) -> Any:
    """Decode a fact value read from JSON."""
    if is_unavailable_json(value):
        return Unavailable(value["$unavailable"], failed=bool(value.get("$failed", False)))
    return value


@dataclass(frozen=True)
class Location:
    """Where in a file a finding points (1-based line and column)."""

    path: str
    line: int = 1
    column: int = 1

    def to_json(self) -> Dict[str, Any]:
        return {"path": self.path, "line": self.line, "column": self.column}


@dataclass
class Problem:
    """What a check returns when it fails: message, evidence, optional location and severity."""

    message: str
    evidence: Dict[str, Any] = field(default_factory=dict)
    location: Optional[Location] = None
    severity: Optional[str] = None  # overrides the check's default severity when set
    kb: Optional[str] = None  # the article for this finding when it is not the check's own (a cause)


@dataclass
class Skip:
    """What a check returns when it does not apply to this machine (status skip)."""

    reason: str


@dataclass
class Pass:
    """An explicit pass carrying a message and evidence (shown with -v)."""

    message: str = ""
    evidence: Dict[str, Any] = field(default_factory=dict)


CheckResult = Optional[Any]  # None | Problem | Skip | Pass | list of those


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: stable id, name, family, severity, groups, KB slug and function."""

    id: str
    name: str
    family: str
    severity: str
    kb: str
    groups: Tuple[str, ...]
    func: Callable[..., CheckResult]
    needs: Tuple[str, ...]  # fact names, from the function's parameters
    title: str
    origin: str = "builtin"
    optional: Tuple[str, ...] = ()  # facts passed even when Unavailable (the check handles that itself)


@dataclass(frozen=True)
class ProbeSpec:
    """A registered probe: the fact it produces, the facts it needs, and its time budget."""

    name: str
    func: Callable[..., Any]
    needs: Tuple[str, ...]
    budget: float
    title: str
    origin: str = "builtin"


@dataclass
class Finding:
    """One result of one check, as every renderer sees it."""

    id: str
    name: str
    family: str
    status: str
    severity: str
    message: str
    kb: str
    evidence: Dict[str, Any] = field(default_factory=dict)
    location: Optional[Location] = None

    def to_json(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "family": self.family,
            "status": self.status,
            "severity": self.severity,
            "message": self.message,
            "kb": self.kb,
            "evidence": self.evidence,
            "location": self.location.to_json() if self.location else None,
        }


@dataclass
class Report:
    """Everything one run produced; every output format is rendered from this."""

    version: str
    targets: List[str]
    facts: Mapping[str, Any]
    findings: Sequence[Finding]
    probes: Mapping[str, float]
    checks: Sequence[CheckSpec] = ()
    notes: List[str] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "version": self.version,
            "targets": list(self.targets),
            "facts": {k: fact_to_json(v) for k, v in self.facts.items()},
            "findings": [f.to_json() for f in self.findings],
            "probes": {k: round(v, 4) for k, v in self.probes.items()},
            "notes": list(self.notes),
            "summary": summary(self.findings),
        }


def summary(findings: Sequence[Finding]) -> Dict[str, int]:
    """Counts of the findings by status, failures by severity, and errors by cause (the report's "summary")."""
    out = {s: sum(1 for f in findings if f.status == s) for s in ("pass", "fail", "skip", "error")}
    for sev in ("error", "warning", "info"):
        out[f"fail_{sev}"] = sum(1 for f in findings if f.status == "fail" and f.severity == sev)
    out["check_crashed"] = sum(1 for f in findings if f.status == "error" and error_cause(f) == CAUSE_CRASH)
    out["probe_failed"] = sum(1 for f in findings if f.status == "error" and error_cause(f) == CAUSE_PROBE)
    return out


def error_cause(finding: Finding) -> str:
    """check-crashed or probe-failed for a finding of status error (older reports carry no cause: crashed)."""
    cause = finding.evidence.get("cause") if isinstance(finding.evidence, dict) else None
    return cause if cause in (CAUSE_CRASH, CAUSE_PROBE) else CAUSE_CRASH


@dataclass
class Outcome:
    """What a command gives the CLI: ONE document (JSON-shaped, with its "schema"), the exit code, and
    messages for stderr. report: the Report behind a report document, for the renderers that need it."""

    document: Dict[str, Any]
    code: int = 0
    messages: List[str] = field(default_factory=list)
    report: Optional[Report] = None

    @property
    def kind(self) -> str:
        """The document kind: "report" for bwdoctor.report/1."""
        from .schemas import kind_of

        return kind_of(self.document)
