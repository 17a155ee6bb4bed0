"""The edge every output passes: secrets redacted (bwdoctor.redact), control characters made visible, numbers
made valid JSON. Documents are cleaned as structures first (so JSON, SARIF and JUnit stay well formed), and the
final text of the text formats goes through the text rules once more as a second net.

- Control characters: C0 (except tab and newline), DEL, C1 (0x80-0x9f, CSI 0x9b included), U+FFFE/U+FFFF,
  lone surrogates (undecodable bytes of a file name), the bidirectional marks, embeddings, overrides and
  isolates (U+200E/F, U+202A-E, U+2066-9) and the line/paragraph separators (U+2028/9) are written as a visible
  escape `\\xNN` / `\\uNNNN`, so nothing from an inspected machine can move the cursor, reorder what a reader
  sees (a right-to-left override in a path), clear a terminal, set a window title, end an XML document or break
  a GitHub annotation. A byte that was undecodable (U+DC80-U+DCFF) shows as `\\xNN`.
- Numbers: NaN and +/-Infinity become null in every JSON output; JSON is written with allow_nan=False.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .. import lazyre, records
from ..redact import redact, redact_obj

_CONTROL = lazyre.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]"
)


def _visible(m: re.Match) -> str:
    c = ord(m.group(0))
    if 0xDC80 <= c <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{c - 0xDC00:02x}"
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def strip_controls(text: str) -> str:
    """The text with every control character (but tab and newline) written as a visible escape."""
    if not isinstance(text, str) or text.isprintable():  # every character _CONTROL names is unprintable
        return text
    return _CONTROL.sub(_visible, text)


def clean_text(text: str) -> str:
    """A string ready for a terminal, a file or an annotation: secrets redacted, control characters escaped."""
    return strip_controls(redact(text)) if isinstance(text, str) else text


def _strict(obj: Any, finite: bool = True) -> Any:
    """JSON-shaped and printable: strings and keys without control characters, tuples → lists, anything else →
    its str(); with `finite`, non-finite floats → None (text views keep them: they print as nan/inf)."""
    if isinstance(obj, str):
        return strip_controls(obj)
    if isinstance(obj, bool) or obj is None or isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) or not finite else None
    if isinstance(obj, dict):
        return {(strip_controls(k) if isinstance(k, str) else str(k)): _strict(v, finite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v, finite) for v in obj]
    if hasattr(obj, "to_json"):
        return _strict(obj.to_json(), finite)
    return strip_controls(str(obj))


def clean_obj(obj: Any, finite: bool = True) -> Any:
    """A JSON-shaped value ready for any output: redacted (structure-aware), printable, and finite unless
    `finite` is False (a text view formats numbers itself and must not meet a None where a number was)."""
    return redact_obj(_strict(obj, finite))


def dump_json(obj: Any, indent: int = 2) -> str:
    """Strict JSON text of a cleaned value (never NaN/Infinity; a stray one raises instead of being written)."""
    return json.dumps(clean_obj(obj), indent=indent, allow_nan=False) + "\n"


def clean_report(report: Any) -> Any:
    """A copy of a Report whose facts, findings and notes are cleaned: what every finding renderer reads."""
    from ..model import Location, fact_from_json, fact_to_json

    findings = []
    for f in report.findings:
        loc = f.location
        if loc is not None:
            loc = Location(clean_text(str(loc.path)), loc.line, loc.column)
        ev = clean_obj(f.evidence, finite=False) if isinstance(f.evidence, dict) else {}
        findings.append(
            records.replace(
                f,
                id=clean_text(str(f.id)),
                name=clean_text(str(f.name)),
                family=clean_text(str(f.family)),
                message=clean_text(str(f.message)),
                kb=clean_text(str(f.kb)),
                evidence=ev,
                location=loc,
            )
        )
    facts = {
        clean_text(str(k)): fact_from_json(clean_obj(fact_to_json(v), finite=False)) for k, v in report.facts.items()
    }
    probes = {k: (v if isinstance(v, (int, float)) and math.isfinite(v) else 0.0) for k, v in report.probes.items()}
    return records.replace(
        report,
        version=clean_text(str(report.version)),
        targets=[clean_text(str(t)) for t in report.targets],
        facts=facts,
        findings=findings,
        probes=probes,
        notes=[clean_text(str(n)) for n in report.notes],
    )
