"""JUnit XML: one testcase per check; findings below --fail-on are reported but do not fail.

Every string is cleaned (bwdoctor.render.safe.clean_text) before it enters the tree, so the document is XML 1.0:
no character outside XML's Char production (C0 but tab/newline/CR, lone surrogates, U+FFFE/U+FFFF) is written."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import OrderedDict

from ..model import error_cause
from .safe import clean_text

LEVELS = {"error": ("error",), "warning": ("error", "warning"), "info": ("error", "warning", "info")}


def render_junit(report, fail_on: str = "error") -> str:
    """The report as a JUnit XML document."""
    by_check: "OrderedDict[str, list]" = OrderedDict()
    for f in report.findings:
        by_check.setdefault(f.id, []).append(f)
    gating = LEVELS.get(fail_on, LEVELS["error"])
    suites = ET.Element("testsuites", name="bwdoctor")
    suite = ET.SubElement(suites, "testsuite", name="bwdoctor")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for cid, fs in by_check.items():
        first = fs[0]
        counts["tests"] += 1
        case = ET.SubElement(
            suite, "testcase", classname=clean_text(f"bwdoctor.{first.family}"), name=clean_text(f"{cid} {first.name}")
        )
        errors = [f for f in fs if f.status == "error"]
        fails = [f for f in fs if f.status == "fail" and f.severity in gating]
        notes = [f for f in fs if f.status == "fail" and f.severity not in gating]
        if errors:
            counts["errors"] += 1
            el = ET.SubElement(case, "error", message=clean_text(errors[0].message)[:500], type=error_cause(errors[0]))
            el.text = "\n".join(clean_text(f.message) for f in errors)
        elif fails:
            counts["failures"] += 1
            el = ET.SubElement(case, "failure", message=clean_text(fails[0].message)[:500], type=fails[0].severity)
            el.text = "\n".join(f"[{f.severity}] {clean_text(f.message)}\nmore: bwdoctor explain {f.kb}" for f in fails)
        elif all(f.status == "skip" for f in fs):
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=clean_text(fs[0].message)[:500])
        if notes:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"[{f.severity}] {clean_text(f.message)}" for f in notes)
    for k, v in counts.items():
        suite.set(k, str(v))
        suites.set(k, str(v))
    ET.indent(suites) if hasattr(ET, "indent") else None
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
