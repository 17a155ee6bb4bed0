"""Fleet view: gather bwdoctor's facts on every node (Ray, or facts files), evaluate each node, and
compare the nodes with each other."""

from __future__ import annotations

import os
import socket
from typing import Any, Dict, List, Optional, Tuple

from .. import engine, factsfile, registry
from ..model import Finding, Unavailable, fact_from_json

FLEET_SCHEMA = "bwdoctor.fleet/1"


def node_facts(root: str = "/", python: Optional[str] = None, env: Optional[dict] = None) -> dict:
    """This node's facts as a bwdoctor.facts/1 document (what `bwdoctor facts --format json` prints)."""
    from pathlib import Path

    from ..context import Context

    reg = registry.load(no_plugins=True)
    names = engine.needed_facts(reg, list(reg.checks.values()))
    names = [n for n in names if n not in ("fleet_nodes", "live_torch")]
    e = dict(os.environ)
    e.update(env or {})
    source = engine.Source(context=Context(root=Path(root), python=python, env=e))
    facts, _ = engine.gather_facts(names, source, reg)
    doc = factsfile.dump(facts)
    doc["node"] = socket.gethostname()
    return doc


def gather_ray(address: Optional[str], timeout: float, options_for=None) -> List[Tuple[str, Any]]:
    """[(node name, facts document | error text)] for every alive node of a Ray cluster.

    One task per node, pinned with a hard node-affinity strategy; a node that does not answer within
    `timeout` seconds is reported as such and its task cancelled. options_for(node) -> kwargs of
    node_facts for that node (root/python/env), for replaying trees; a "runtime_env" key in them goes
    to Ray (environment variables of the worker process itself)."""
    import logging

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not ray.is_initialized():
        ray.init(address=address or "auto", ignore_reinit_error=True, log_to_driver=False, logging_level=logging.ERROR)
    remote = ray.remote(num_cpus=0, max_retries=0)(node_facts)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs, names = [], []
    for n in nodes:
        name = f"{n.get('NodeManagerHostname') or n.get('NodeManagerAddress')}/{n['NodeID'][:8]}"
        kwargs = dict(options_for(n)) if options_for else {}
        opts = {"scheduling_strategy": NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)}
        if "runtime_env" in kwargs:
            opts["runtime_env"] = kwargs.pop("runtime_env")
        refs.append(remote.options(**opts).remote(**kwargs))
        names.append(name)
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    out: List[Tuple[str, Any]] = []
    for name, ref in zip(names, refs, strict=True):
        if ref not in ready:
            ray.cancel(ref, force=True)
            out.append((name, f"no answer within {timeout:g} s (node hung or unreachable)"))
            continue
        try:
            out.append((name, ray.get(ref, timeout=5)))
        except Exception as exc:  # a node whose task failed is a finding, not a crash
            out.append((name, f"facts task failed: {type(exc).__name__}: {str(exc)[:300]}"))
    return out


def unique_names(names: List[str], hints: Optional[List[str]] = None) -> List[str]:
    """The names with every duplicate told apart: `name [hint]` (the file it came from), then `name #2`..."""
    hints = hints or [""] * len(names)
    counts: Dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    out = [f"{n} [{h}]" if counts[n] > 1 and h and h != n else n for n, h in zip(names, hints, strict=True)]
    seen: Dict[str, int] = {}
    final = []
    for n in out:
        seen[n] = seen.get(n, 0) + 1
        final.append(n if seen[n] == 1 else f"{n} #{seen[n]}")
    while len(set(final)) < len(final):  # a "#2" that was someone's real name: number again
        final = [f"{n} #{i + 1}" for i, n in enumerate(final)]
    return final


def load_facts_files(paths: List[str]) -> List[Tuple[str, Any]]:
    """[(node name, facts document | error text)] from facts files (ssh, DaemonSet, Slurm); two nodes that
    call themselves the same are told apart by their file names."""
    out: List[Tuple[str, Any]] = []
    for p in paths:
        name = os.path.splitext(os.path.basename(p))[0]
        try:  # read once: a pipe or FIFO cannot be read twice
            doc = factsfile.read_document(p)
            facts = factsfile.facts_of(doc, p)
        except factsfile.FactsFileError as exc:
            out.append((name, str(exc)))
            continue
        node = doc.get("node")  # `bwdoctor facts` in a fleet records the node name; else the file name is the node
        out.append((node if isinstance(node, str) and node else name, {"facts": facts}))
    names = unique_names([n for n, _ in out], [os.path.basename(p) for p in paths])
    return [(n, doc) for n, (_old, doc) in zip(names, out, strict=True)]


def evaluate(nodes: List[Tuple[str, Any]]) -> Tuple[List[dict], List[Finding], Dict[str, dict]]:
    """Per-node reports, cross-node findings, and each node's facts."""
    reg = registry.load(no_plugins=True)
    node_checks = [c for c in reg.checks.values() if "fleet" not in c.groups]
    fleet_checks = [c for c in reg.checks.values() if "fleet" in c.groups]
    reports: List[dict] = []
    per_node: Dict[str, Dict[str, Any]] = {}
    names = unique_names([n for n, _ in nodes])  # one entry per node, even where two share a name
    for name, (_given, doc) in zip(names, nodes, strict=True):
        if isinstance(doc, str):
            per_node[name] = {"$error": doc}
            continue
        facts = {
            k: (v if isinstance(v, Unavailable) else fact_from_json(v)) for k, v in (doc.get("facts") or {}).items()
        }
        rep = engine.run(
            engine.Selection(checks=node_checks, facts=()), engine.Source.facts(facts, label="this node's facts"), reg
        )
        per_node[name] = {**facts, **rep.facts}  # with Unavailable for what the node's file lacks
        rep.facts, rep.notes = {}, []
        reports.append({"node": name, "report": rep.to_json()})
    cross = engine.run(
        engine.Selection(checks=fleet_checks, facts=()),
        engine.Source.facts({"fleet_nodes": per_node}, label="the fleet"),
        reg,
    ).findings
    return reports, list(cross), per_node
