"""SARIF 2.1.0: rules are the checks (help from the KB), results are the failed findings.

Every result has a location (GitHub code scanning rejects one without): a config finding's file and line,
relative to the repository (%SRCROOT%: $GITHUB_WORKSPACE, else the working directory) when it is inside it; a
finding about the machine a logical location `host/<family>/<id>`. Every result has `partialFingerprints`
(bwdoctorFinding/v1), so an alert keeps its identity from run to run."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Dict
from urllib.parse import quote

from .. import __version__
from ..knowledge import article
from .common import failed
from .safe import clean_text, dump_json

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SRCROOT = "%SRCROOT%"
FINGERPRINT = "bwdoctorFinding/v1"


def _article_markdown(art) -> str:
    return "\n\n".join(f"## {k}\n\n{v}" for k, v in art.sections.items())


def render_sarif(report) -> str:
    """The report as a SARIF 2.1.0 log."""
    specs = {c.id: c for c in report.checks}
    for f in report.findings:  # findings replayed without their spec still get a rule
        specs.setdefault(f.id, None)
    rules: list = []
    index: dict = {}
    for cid in sorted(specs):
        spec = specs[cid]
        sample: Any = next(f for f in report.findings if f.id == cid) if spec is None else None
        name = spec.name if spec else sample.name
        slug = spec.kb if spec else sample.kb
        art = article(slug)
        rule = {
            "id": cid,
            "name": name,
            "shortDescription": {"text": spec.title if spec else name},
            "fullDescription": {"text": art.title if art else name},
            "defaultConfiguration": {"level": LEVEL.get(spec.severity if spec else sample.severity, "warning")},
            "properties": {
                "tags": [spec.family if spec else sample.family, *(spec.groups if spec else ())],
                "kb": slug,
            },
        }
        if art:
            rule["help"] = {"text": f"{art.title}. Run: bwdoctor explain {slug}", "markdown": _article_markdown(art)}
            if art.references:
                rule["helpUri"] = art.references[0]
        index[cid] = len(rules)
        rules.append(rule)
    results = []
    for f in failed(report.findings):
        res = {
            "ruleId": f.id,
            "ruleIndex": index[f.id],
            "level": "error" if f.status == "error" else LEVEL.get(f.severity, "warning"),
            "message": {"text": f"{clean_text(f.message)} (bwdoctor explain {f.kb})"},
            "properties": {"status": f.status, "kb": f.kb},
        }
        res["locations"] = [_location(f)]
        res["partialFingerprints"] = {FINGERPRINT: fingerprint(f, res["locations"][0])}
        results.append(res)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bwdoctor",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": "https://pypi.org/project/bwdoctor/",
                        "rules": rules,
                    }
                },
                "results": results,
                "originalUriBaseIds": {SRCROOT: {"uri": _base_uri()}},
                "properties": {"targets": list(report.targets)},
            }
        ],
    }
    return dump_json(log)


def _base() -> str:
    """The directory repository-relative paths are relative to: $GITHUB_WORKSPACE in a GitHub job, else cwd."""
    return os.path.realpath(os.environ.get("GITHUB_WORKSPACE") or os.getcwd())


def _base_uri() -> str:
    return Path(_base()).as_uri().rstrip("/") + "/"


def _artifact(path: str) -> Dict[str, Any]:
    """An artifactLocation: relative to %SRCROOT% when the file is inside the repository, else a file: URI."""
    full = os.path.realpath(path) if path.startswith("/") else os.path.realpath(os.path.join(_base(), path))
    base = _base()
    if full == base or full.startswith(base.rstrip("/") + "/"):
        return {"uri": quote(os.path.relpath(full, base)), "uriBaseId": SRCROOT}
    if path.startswith("/"):
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(path), "uriBaseId": SRCROOT}


def _location(f: Any) -> Dict[str, Any]:
    """Where a result is: the file and line of a config finding (or the file its evidence names); else a logical
    location naming the check on the inspected machine (`host/<family>/<id>`), stable across runs."""
    logical = {"name": f.id, "fullyQualifiedName": f"host/{f.family}/{f.id}", "kind": "module"}
    path = f.location.path if f.location else (f.evidence.get("path") if isinstance(f.evidence, dict) else None)
    if not (isinstance(path, str) and path):
        return {"logicalLocations": [logical]}
    phys: Dict[str, Any] = {"artifactLocation": _artifact(path)}
    if f.location:
        phys["region"] = {"startLine": max(1, int(f.location.line)), "startColumn": max(1, int(f.location.column))}
    return {"physicalLocation": phys}


def fingerprint(f: Any, location: Dict[str, Any]) -> str:
    """A hash that stays the same while the same problem stays in the same place: the check id, where it is,
    and the message with its numbers taken out (a version bump or new timing does not make a new alert)."""
    phys = location.get("physicalLocation") or {}
    where = phys.get("artifactLocation", {}).get("uri", "") + ":" + str(phys.get("region", {}).get("startLine", ""))
    text = re.sub(r"\d+(\.\d+)*", "#", f.message)
    return hashlib.sha256(f"{f.id}|{where}|{text}".encode("utf-8", "replace")).hexdigest()
