"""JSON Schemas of every document bwdoctor writes: `<kind>.schema.json` for "schema": "bwdoctor.<kind>/1"."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

KINDS = (
    "report",
    "facts",
    "list",
    "explain",
    "cubins",
    "kernels",
    "symbols",
    "plan",
    "verify-build",
    "fleet",
    "recommend",
)


def load(kind: str) -> Dict[str, Any]:
    """The JSON Schema of one document kind."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{kind}.schema.json"), encoding="utf-8") as fh:
        return json.load(fh)


def kind_of(document: Dict[str, Any]) -> str:
    """The kind a document names: "bwdoctor.cubins/1" → "cubins"."""
    return str(document.get("schema", "")).split(".", 1)[-1].split("/", 1)[0]


def all_schemas() -> List[Dict[str, Any]]:
    """Every shipped schema (for a validator's registry: they refer to each other by file name)."""
    return [load(k) for k in KINDS]
