"""Reading and writing facts files (bwdoctor facts --format json → bwdoctor check --facts FILE).

A facts file comes from another machine and is untrusted: its size is bounded, its shape validated,
and a fact of the wrong type becomes Unavailable rather than crashing a check.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict

from . import __version__, fileio
from .model import FACTS_SCHEMA, REPORT_SCHEMA, Unavailable, fact_from_json, fact_to_json

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64  # real facts nest about 8 deep; json's recursion would fail far deeper

# JSON type of the core facts; a value of another type is replaced by Unavailable.
FACT_TYPES = {
    "kernel_release": str,
    "kernel_modules": list,
    "host": dict,
    "nvidia_driver": dict,
    "pci_gpus": list,
    "nvml": dict,
    "gpus": list,
    "targets": list,
    "environment": dict,
    "python_env": dict,
    "distributions": list,
    "net_interfaces": list,
}


def _cc_ok(cc) -> bool:
    return cc is None or (isinstance(cc, list) and len(cc) == 2 and all(isinstance(x, int) for x in cc))


# Items of list facts: each must be an object (and, for GPUs, carry a [major, minor] compute capability).
ITEM_RULES = {
    "gpus": lambda g: isinstance(g, dict) and _cc_ok(g.get("cc")),
    "pci_gpus": lambda g: isinstance(g, dict) and _cc_ok(g.get("cc")),
    "kernel_modules": lambda m: isinstance(m, dict) and isinstance(m.get("name"), str),
    "distributions": lambda d: (
        isinstance(d, dict) and isinstance(d.get("name"), str) and isinstance(d.get("version"), str)
    ),
    "targets": lambda t: isinstance(t, str),
}


class FactsFileError(Exception):
    """The facts file cannot be used; the message says why."""


def dump(facts: Dict[str, Any]) -> dict:
    """The JSON document for a set of facts."""
    return {"schema": FACTS_SCHEMA, "version": __version__, "facts": {k: fact_to_json(v) for k, v in facts.items()}}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (a facts file never holds NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range (a facts file never holds Infinity)")
    return value


def _too_deep(data: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


def read_document(path: str) -> dict:
    """The JSON object of a facts file or report, read through the one door (a regular file, at most MAX_BYTES,
    UTF-8, nested at most MAX_DEPTH deep, no NaN/Infinity); raises FactsFileError with a clear reason."""
    try:
        raw = fileio.read_bytes(path, MAX_BYTES, strict=True)
    except OSError as exc:
        raise FactsFileError(f"cannot read facts file {path}: {fileio.describe(exc)}") from None
    if not raw.strip():
        raise FactsFileError(f"facts file {path} is empty")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise FactsFileError(f"facts file {path} is not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        raise FactsFileError(f"facts file {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise FactsFileError(f"facts file {path} is nested too deeply") from None
    if not isinstance(data, dict):
        raise FactsFileError(f"facts file {path} must hold a JSON object, not {type(data).__name__}")
    if _too_deep(data, MAX_DEPTH):
        raise FactsFileError(f"facts file {path} is nested more than {MAX_DEPTH} levels deep; not a facts file")
    return data


def load(path: str) -> Dict[str, Any]:
    """Facts from a facts file or a report (its 'facts'); raises FactsFileError with a clear reason."""
    return facts_of(read_document(path), path)


def facts_of(data: dict, path: str) -> Dict[str, Any]:
    """The validated facts of a facts document read by read_document."""
    schema = data.get("schema")
    if schema not in (FACTS_SCHEMA, REPORT_SCHEMA):
        raise FactsFileError(
            f"facts file {path} has schema {schema!r}; expected {FACTS_SCHEMA!r} "
            f"(from 'bwdoctor facts --format json') or {REPORT_SCHEMA!r}"
        )
    facts = data.get("facts")
    if not isinstance(facts, dict):
        raise FactsFileError(f"facts file {path} has no 'facts' object")
    if not facts:  # every check would skip: a green answer about nothing
        raise FactsFileError(f"facts file {path} holds no facts (its 'facts' object is empty): nothing to check")
    out = {}
    for name, value in facts.items():
        if not isinstance(name, str):
            continue
        value = fact_from_json(value)
        want = FACT_TYPES.get(name)
        if want and not isinstance(value, Unavailable) and not isinstance(value, want):
            value = Unavailable(
                f"fact {name} in {os.path.basename(path)} is a {type(value).__name__}, expected {want.__name__}"
            )
        rule = ITEM_RULES.get(name)
        if rule and isinstance(value, list):
            bad = next((i for i, item in enumerate(value) if not rule(item)), None)
            if bad is not None:
                value = Unavailable(f"fact {name} in {os.path.basename(path)}: item {bad} has the wrong shape")
        out[name] = value
    return out
