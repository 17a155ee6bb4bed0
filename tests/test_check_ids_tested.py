"""Every built-in check is named by at least one test: its id (BW###), its name, or its function's name."""

from __future__ import annotations

import re
from pathlib import Path

from bwdoctor import registry

HERE = Path(__file__).resolve()


def test_every_check_is_named_by_a_test() -> None:
    checks = registry.load(no_plugins=True).checks
    assert len(checks) >= 60  # the built-ins are loaded, not an empty registry
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(HERE.parent.glob("*.py")) if p.resolve() != HERE)
    untested = sorted(
        f"{spec.id} {spec.name}"
        for spec in checks.values()
        if not any(
            re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text)
            for word in (spec.id, spec.name, spec.func.__name__)
        )
    )
    assert untested == [], "checks named by no test (add a pass and a fail case): " + ", ".join(untested)
