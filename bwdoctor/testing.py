"""Helpers for testing checks on JSON facts (used by bwdoctor's tests and by plugin authors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Mapping, Union

from .engine import evaluate
from .model import Finding, fact_from_json
from .registry import CHECK_ATTR, LazyFunc


def run_check(check_func, facts: Mapping[str, Any]) -> List[Finding]:
    """Evaluate one decorated check on a dict of facts (JSON form; {"$unavailable": r} allowed). The function may
    be a registry's (registry.load().checks[id].func), which is imported on first use."""
    if isinstance(check_func, LazyFunc):
        check_func = check_func.resolve()
    spec = getattr(check_func, CHECK_ATTR)
    decoded = {k: fact_from_json(v) for k, v in facts.items()}
    return evaluate([spec], decoded)


def load_facts(path: Union[str, Path]) -> dict:
    """Read a JSON fact case: either {"facts": {...}} or a bare mapping of facts."""
    data = json.loads(Path(path).read_text())
    return data.get("facts", data) if isinstance(data, dict) else {}


def statuses(findings: List[Finding]) -> List[str]:
    """The status of each finding, in order (handy for asserts)."""
    return [f.status for f in findings]
