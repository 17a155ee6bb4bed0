"""Prometheus / OpenMetrics text of a report, for node_exporter's textfile collector.

One gauge sample per check, `bwdoctor_check_status{id, name, family, severity}`, whose value is the check's
status: 0 pass, 1 fail, 2 error (it crashed or could not run: no verdict), -1 skip (does not apply here). A
check with several findings takes its worst (error > fail > pass > skip); `severity` is the worst severity among
its failures, else the check's own. Alert on `bwdoctor_check_status == 1` (and on `== 2` for "could not tell").

Beside it: `bwdoctor_findings{status}` (the report's summary counts), `bwdoctor_exit_code` (what the run
returned for --fail-on), `bwdoctor_last_run_timestamp_seconds` and `bwdoctor_probe_duration_seconds{probe}`.

The text is OpenMetrics 1.0 (it ends with `# EOF`) and, having no sample timestamps, UNIT lines or counters, it is
also valid Prometheus text format 0.0.4, which the textfile collector reads (a `# EOF` line is a comment there).
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional

STATUS_VALUE = {"pass": 0, "fail": 1, "error": 2, "skip": -1}
_WORST = {"error": 3, "fail": 2, "pass": 1, "skip": 0}
_SEV_RANK = {"error": 0, "warning": 1, "info": 2}


def _label(value: Any) -> str:
    """A label value escaped as both text formats want it (backslash, double quote, newline)."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Dict[str, Any]) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}"


def _number(value: float) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "NaN"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def check_rows(report: Any) -> List[Dict[str, Any]]:
    """One row per check of the report: id, name, family, severity and the worst status of its findings."""
    specs = {c.id: c for c in report.checks}
    rows: Dict[str, Dict[str, Any]] = {}
    for f in report.findings:
        row = rows.get(f.id)
        spec = specs.get(f.id)
        if row is None:
            row = rows[f.id] = {
                "id": f.id,
                "name": f.name,
                "family": f.family,
                "severity": spec.severity if spec else f.severity,
                "status": f.status,
                "fail_severity": None,
            }
        if _WORST.get(f.status, 0) > _WORST.get(row["status"], 0):
            row["status"] = f.status
        if f.status == "fail":
            cur: Optional[str] = row["fail_severity"]
            if cur is None or _SEV_RANK.get(f.severity, 3) < _SEV_RANK.get(cur, 3):
                row["fail_severity"] = f.severity
    for row in rows.values():
        if row["status"] == "fail" and row["fail_severity"]:
            row["severity"] = row["fail_severity"]
    return [rows[k] for k in sorted(rows)]


def render_prometheus(report: Any, exit_code: int, now: Optional[float] = None) -> str:
    """The report as OpenMetrics text (gauges only, `# EOF` at the end)."""
    from ..model import summary

    now = time.time() if now is None else now
    out: List[str] = []

    def family(name: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")

    family(
        "bwdoctor_check_status",
        "Status of each bwdoctor check: 0 pass, 1 fail, 2 error (no verdict), -1 skip (does not apply).",
    )
    for row in check_rows(report):
        labels = {k: row[k] for k in ("id", "name", "family", "severity")}
        out.append(f"bwdoctor_check_status{_labels(labels)} {STATUS_VALUE.get(row['status'], 2)}")
    family("bwdoctor_findings", "Findings of the last run by status (fail_error etc.: failures by severity).")
    for key, count in summary(report.findings).items():
        out.append(f"bwdoctor_findings{_labels({'status': key})} {count}")
    family("bwdoctor_exit_code", "Exit code of the last run: 0 ok, 1 a finding at or above --fail-on, 3 no verdict.")
    out.append(f"bwdoctor_exit_code {int(exit_code)}")
    family("bwdoctor_last_run_timestamp_seconds", "Unix time the last bwdoctor run finished.")
    out.append(f"bwdoctor_last_run_timestamp_seconds {_number(round(now, 3))}")
    family("bwdoctor_probe_duration_seconds", "Seconds each probe took in the last run.")
    for name in sorted(report.probes):
        value = report.probes[name]
        out.append(f"bwdoctor_probe_duration_seconds{_labels({'probe': name})} {_number(round(float(value), 4))}")
    family("bwdoctor_build_info", "The bwdoctor version that wrote this (always 1).")
    out.append(f"bwdoctor_build_info{_labels({'version': report.version})} 1")
    out.append("# EOF")
    return "\n".join(out) + "\n"
