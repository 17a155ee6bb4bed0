"""`bwdoctor fleet`: every node of a vLLM cluster (Ray), or facts files gathered elsewhere, and their drift."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..model import Finding, Outcome
from ..render import add_format_option

HELP = """Gather bwdoctor's facts on every alive node of a Ray cluster (one task pinned to each node),
evaluate each node's checks, and compare the nodes: driver, kernel-module flavour, GPUs, torch, vLLM,
NCCL, flash-attn/FlashInfer, VLLM_*/NCCL_* settings, and the interfaces NCCL_SOCKET_IFNAME names.
A node that does not answer within --timeout is a finding. With --facts, the same evaluation runs on
facts files made elsewhere (`bwdoctor facts --format json -o NODE.json` over ssh, a DaemonSet, srun).
Ray is optional: pip install 'bwdoctor[fleet]'. Exit 0 nothing at or above --fail-on on any node or across
nodes; 1 the gate failed (a node whose facts file cannot be used did not answer); 2 no cluster, or no facts
file can be used; 3 no verdict (a check crashed or could
not run because its probe failed)."""


def register(sub: Any, epilog: str = "") -> None:
    """Add `fleet`."""
    p = sub.add_parser(
        "fleet", help="check every node of a Ray cluster (or facts files) and compare them", description=HELP
    )
    p.add_argument("--address", default=None, help="Ray address (default: auto, the running cluster)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every node (default 60)")
    p.add_argument("--facts", nargs="+", metavar="FILE", help="evaluate these facts files instead of asking Ray")
    add_format_option(p, "fleet")
    p.add_argument("--fail-on", choices=("error", "warning", "info"), default="error")
    p.set_defaults(func=run)


def run(args: Any) -> Outcome:
    """The bwdoctor.fleet/1 document: each node's report and the cross-node findings."""
    from .. import fleet
    from ..engine import exit_code

    if args.facts:
        nodes = fleet.load_facts_files(args.facts)
        unusable = [doc for _name, doc in nodes if isinstance(doc, str)]
        if len(unusable) == len(nodes):  # one bad file among many is that node's finding; all bad is usage
            raise UsageError("; ".join(unusable))
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
    node_findings = [
        Finding(**{k: v for k, v in f.items() if k != "location"}) for r in reports for f in r["report"]["findings"]
    ]
    return Outcome(doc, exit_code(list(cross) + node_findings, args.fail_on))
