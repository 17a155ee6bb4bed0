"""Reading and writing facts files (bwdoctor facts --format json → bwdoctor check --facts FILE).

A facts file comes from another machine and is untrusted: its size is bounded, its shape validated,
and a fact of the wrong type becomes Unavailable rather than crashing a check.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from . import __version__
from .model import FACTS_SCHEMA, REPORT_SCHEMA, Unavailable, fact_from_json, fact_to_json

MAX_BYTES = 64 * 1024 * 1024

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


def load(path: str) -> Dict[str, Any]:
    """Facts from a facts file or a report (its 'facts'); raises FactsFileError with a clear reason."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise FactsFileError(f"cannot read facts file {path}: {exc.strerror or exc}") from None
    if size > MAX_BYTES:
        raise FactsFileError(f"facts file {path} is {size / 2**20:.0f} MiB; the limit is {MAX_BYTES // 2**20} MiB")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise FactsFileError(f"facts file {path} is not UTF-8 text") from None
    except ValueError as exc:
        raise FactsFileError(f"facts file {path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise FactsFileError(f"cannot read facts file {path}: {exc.strerror or exc}") from None
    except RecursionError:
        raise FactsFileError(f"facts file {path} is nested too deeply") from None
    if not isinstance(data, dict):
        raise FactsFileError(f"facts file {path} must hold a JSON object, not {type(data).__name__}")
    schema = data.get("schema")
    if schema not in (FACTS_SCHEMA, REPORT_SCHEMA):
        raise FactsFileError(
            f"facts file {path} has schema {schema!r}; expected {FACTS_SCHEMA!r} "
            f"(from 'bwdoctor facts --format json') or {REPORT_SCHEMA!r}"
        )
    facts = data.get("facts")
    if not isinstance(facts, dict):
        raise FactsFileError(f"facts file {path} has no 'facts' object")
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
