"""`bwdoctor fleet`: every node of a vLLM cluster (Ray), or facts files gathered elsewhere, and their drift."""
from __future__ import annotations

import json
import sys

HELP = """Gather bwdoctor's facts on every alive node of a Ray cluster (one task pinned to each node),
evaluate each node's checks, and compare the nodes: driver, kernel-module flavour, GPUs, torch, vLLM,
NCCL, flash-attn/FlashInfer, VLLM_*/NCCL_* settings, and the interfaces NCCL_SOCKET_IFNAME names.
A node that does not answer within --timeout is a finding. With --facts, the same evaluation runs on
facts files made elsewhere (`bwdoctor facts --format json -o NODE.json` over ssh, a DaemonSet, srun).
Ray is optional: pip install 'bwdoctor[fleet]'."""


def register(sub):
    p = sub.add_parser("fleet", help="check every node of a Ray cluster (or facts files) and compare them",
                       description=HELP)
    p.add_argument("--address", default=None, help="Ray address (default: auto, the running cluster)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every node (default 60)")
    p.add_argument("--facts", nargs="+", metavar="FILE", help="evaluate these facts files instead of asking Ray")
    p.add_argument("--format", choices=("rich", "json"), default="rich")
    p.add_argument("--fail-on", choices=("error", "warning", "info"), default="error")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import fleet
    from ..cli import UsageError, emit
    from ..engine import exit_code
    from ..redact import redact_obj

    if args.facts:
        nodes = fleet.load_facts_files(args.facts)
    else:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("fleet needs Ray: pip install 'bwdoctor[fleet]' (or pass --facts FILE...)") from None
        try:
            nodes = fleet.gather_ray(args.address, args.timeout)
        except Exception as exc:  # no cluster, bad address
            raise UsageError(f"cannot reach the Ray cluster: {type(exc).__name__}: {exc}") from None
    reports, cross, _ = fleet.evaluate(nodes)
    doc = {"schema": fleet.FLEET_SCHEMA, "nodes": reports, "findings": [f.to_json() for f in cross]}
    if args.format == "json":
        emit(args, json.dumps(redact_obj(doc), indent=2) + "\n")
    else:
        emit(args, render(doc))
    node_findings = [f for r in reports for f in _findings_of(r)]
    return exit_code(list(cross) + node_findings, args.fail_on)


def _findings_of(r):
    from ..model import Finding

    return [Finding(**{k: v for k, v in f.items() if k != "location"}) for f in r["report"]["findings"]]


def render(doc: dict) -> str:
    """A per-node summary table and the cross-node differences."""
    rows = [("node", "failed", "warnings", "passed", "first problem")]
    for n in doc["nodes"]:
        fs = n["report"]["findings"]
        bad = [f for f in fs if f["status"] in ("fail", "error") and f["severity"] == "error"]
        warn = [f for f in fs if f["status"] == "fail" and f["severity"] == "warning"]
        first = (bad or warn or [{"id": "", "message": ""}])[0]
        rows.append((n["node"], str(len(bad)), str(len(warn)), str(sum(f["status"] == "pass" for f in fs)),
                     f"{first['id']} {first['message'][:60]}".strip()))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.append("")
    diffs = [f for f in doc["findings"] if f["status"] in ("fail", "error")]
    if not diffs:
        lines.append(f"✓ no drift across {len(doc['nodes'])} node(s)")
    for f in diffs:
        lines.append(f"✗ {f['id']} {f['name']}: {f['message']}")
        fix = (f.get("evidence") or {}).get("fix")
        if fix:
            lines.append(f"    fix: {fix}")
    lines.append("more: bwdoctor explain fleet-drift")
    return "\n".join(lines) + "\n"
