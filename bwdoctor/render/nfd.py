"""A Node Feature Discovery feature file (the `local` source: /etc/kubernetes/node-feature-discovery/features.d/).

Each line `name=value` becomes the node label `feature.node.kubernetes.io/name=value`:

- `bwdoctor-vllm-ready`: `true` when the run exited 0 (nothing failed at or above --fail-on and everything was
  evaluated), `false` when a check failed (exit 1), `unknown` when there was no verdict (exit 3);
- `bwdoctor-gpu-arch`: the target architectures, joined by `_` (e.g. `sm_120`, `sm_100_sm_120`), when known;
- `bwdoctor-failed-checks`: how many checks failed at or above --fail-on;
- `bwdoctor-version`: the bwdoctor version that wrote the file.

A pod that needs a node able to run vLLM selects `feature.node.kubernetes.io/bwdoctor-vllm-ready: "true"`.
Every value is a valid label value (at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric).
"""

from __future__ import annotations

import re
from typing import Any

READY = {0: "true", 1: "false"}
_LEVELS = {"error": ("error",), "warning": ("error", "warning"), "info": ("error", "warning", "info")}


def label_value(text: str) -> str:
    """A Kubernetes label value made of the text ('' when nothing of it is usable)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text))[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", s)


def render_nfd(report: Any, exit_code: int, fail_on: str = "error") -> str:
    """The feature file text."""
    levels = _LEVELS.get(fail_on, _LEVELS["error"])
    failed = {f.id for f in report.findings if f.status == "fail" and f.severity in levels}
    lines = [
        f"# bwdoctor {report.version}: node features for Node Feature Discovery (exit code {exit_code})",
        f"bwdoctor-vllm-ready={READY.get(exit_code, 'unknown')}",
    ]
    arch = label_value("_".join(report.targets))
    if arch:
        lines.append(f"bwdoctor-gpu-arch={arch}")
    lines.append(f"bwdoctor-failed-checks={len(failed)}")
    version = label_value(report.version)
    if version:
        lines.append(f"bwdoctor-version={version}")
    return "\n".join(lines) + "\n"
