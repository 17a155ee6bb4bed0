"""SARIF 2.1.0: rules are the checks (help from the KB), results are the failed findings."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..knowledge import load_all
from .common import failed
from .safe import clean_text, dump_json

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _article_markdown(art) -> str:
    return "\n\n".join(f"## {k}\n\n{v}" for k, v in art.sections.items())


def render_sarif(report) -> str:
    """The report as a SARIF 2.1.0 log."""
    kb = load_all()
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
        art = kb.get(slug)
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
        path = f.location.path if f.location else (f.evidence.get("path") if isinstance(f.evidence, dict) else None)
        if isinstance(path, str) and path:
            phys = {"artifactLocation": {"uri": _uri(path)}}
            if f.location:
                phys["region"] = {"startLine": f.location.line, "startColumn": f.location.column}
            res["locations"] = [{"physicalLocation": phys}]
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
                "properties": {"targets": list(report.targets)},
            }
        ],
    }
    return dump_json(log)


def _uri(path: str) -> str:
    from pathlib import Path
    from urllib.parse import quote

    if path.startswith("/"):
        return Path(path).as_uri()
    return quote(path)
