"""Cross-node checks of a fleet run (family fleet, BW9xx): the same stack on every node."""

from __future__ import annotations

from bwdoctor.model import Pass, Problem, Skip, Unavailable
from bwdoctor.registry import check

FLEET = ("fleet",)
PER_NODE = {"VLLM_HOST_IP", "VLLM_PORT", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "NCCL_HOSTID", "NCCL_IB_HCA"}
# torch is BW904's (version and CUDA variant): one finding per difference
PACKAGES = (
    "vllm",
    "nvidia-nccl-cu12",
    "nvidia-nccl-cu13",
    "flash-attn",
    "flashinfer-python",
    "xformers",
    "triton",
    "ray",
)


def _value(facts, fact, fn):
    v = facts.get(fact) if isinstance(facts, dict) else None
    if v is None or isinstance(v, Unavailable):
        return None
    try:
        return fn(v)
    except (KeyError, TypeError, AttributeError, IndexError):
        return None


def _drift(fleet_nodes, label, fact, fn, fix):
    nodes = {n: f for n, f in fleet_nodes.items() if "$error" not in f}
    values = {n: _value(f, fact, fn) for n, f in nodes.items()}
    if len(nodes) < 2:
        return Skip("fewer than two nodes answered")
    values = {n: ("unknown" if v is None else v) for n, v in values.items()}
    if len(set(map(str, values.values()))) <= 1:
        return Pass(f"{label}: {next(iter(values.values()))} on every node")
    return Problem(
        f"{label} differs across nodes: " + "; ".join(f"{n}: {v}" for n, v in sorted(values.items())),
        {"per_node": {n: v for n, v in values.items()}, "fix": fix},
    )


@check("BW901", "fleet-nodes-answer", severity="error", kb="fleet-drift", groups=FLEET)
def fleet_nodes_answer(fleet_nodes):
    """Every node of the cluster returned its facts in time."""
    bad = {n: f["$error"] for n, f in fleet_nodes.items() if "$error" in f}
    if not bad:
        return Pass(f"{len(fleet_nodes)} node(s) answered")
    return [
        Problem(
            f"node {n}: {why}",
            {"node": n, "fix": "check the node (ray status; is it alive, is the driver or a probe hanging?)"},
        )
        for n, why in sorted(bad.items())
    ]


@check("BW902", "fleet-same-driver", severity="error", kb="fleet-drift", groups=FLEET)
def fleet_same_driver(fleet_nodes):
    """The NVIDIA driver version and kernel-module flavour are the same on every node."""
    return _drift(
        fleet_nodes,
        "NVIDIA driver",
        "nvidia_driver",
        lambda d: f"{d['version']} ({d['flavour']})",
        "install the same driver branch and flavour on every node",
    )


@check("BW903", "fleet-same-gpus", severity="warning", kb="fleet-drift", groups=FLEET)
def fleet_same_gpus(fleet_nodes):
    """Every node has the same GPU models and compute capabilities."""
    return _drift(
        fleet_nodes,
        "GPUs",
        "gpus",
        lambda g: ", ".join(sorted(f"{x.get('name')} CC {'.'.join(map(str, x.get('cc') or []))}" for x in g)),
        "pipeline/tensor parallel across different GPUs runs at the slowest one and may pick different kernels",
    )


@check("BW904", "fleet-same-torch", severity="error", kb="fleet-drift", groups=FLEET)
def fleet_same_torch(fleet_nodes):
    """torch has the same version and CUDA variant on every node."""
    return _drift(
        fleet_nodes,
        "torch",
        "torch_build",
        lambda t: f"{t['version']} ({t.get('variant')})",
        "install the same torch wheel on every node",
    )


@check("BW908", "fleet-same-kernel", severity="warning", kb="fleet-drift", groups=FLEET)
def fleet_same_kernel(fleet_nodes):
    """Every node runs the same kernel release (it decides, among others, nvidia_peermem vs DMA-BUF at 6.14)."""
    return _drift(
        fleet_nodes,
        "kernel release",
        "kernel_release",
        lambda k: str(k).strip(),
        "run the same kernel on every node: from 6.14 on, NCCL needs DMA-BUF instead of nvidia_peermem "
        "(bwdoctor explain peermem-nccl-hang), so mixed kernels need mixed settings",
    )


@check("BW905", "fleet-same-packages", severity="error", kb="fleet-drift", groups=FLEET)
def fleet_same_packages(fleet_nodes):
    """vLLM, NCCL, flash-attn, FlashInfer, xformers, Triton and Ray have the same versions on every node (torch:
    BW904)."""
    out = []
    for pkg in PACKAGES:
        r = _drift(
            fleet_nodes,
            pkg,
            "distributions",
            lambda ds, p=pkg: next((d["version"] for d in ds if d["name"] == p), "not installed"),
            f"pip install the same {pkg} version on every node",
        )
        if isinstance(r, Problem):
            r.evidence["distribution"] = pkg
            out.append(r)
    return out or Pass("the same package versions on every node")


@check("BW906", "fleet-same-settings", severity="warning", kb="fleet-drift", groups=FLEET)
def fleet_same_settings(fleet_nodes):
    """VLLM_* and NCCL_* environment settings are the same on every node."""
    nodes = {n: f for n, f in fleet_nodes.items() if "$error" not in f}
    envs = {n: (f.get("environment") if isinstance(f.get("environment"), dict) else {}) for n, f in nodes.items()}
    # per-node by design: vLLM's run_cluster.sh sets VLLM_HOST_IP per node, and interface names may differ
    # between nodes (NCCL maintainers, NVIDIA/nccl#286); BW907 checks that each node's own names exist
    keys = sorted({k for e in envs.values() for k in e if k.startswith(("VLLM_", "NCCL_", "GLOO_"))} - PER_NODE)
    out = []
    for k in keys:
        vals = {n: e.get(k) for n, e in envs.items()}
        if len(set(vals.values())) > 1:
            out.append(
                Problem(
                    f"{k} differs across nodes: "
                    + "; ".join(f"{n}: {v if v is not None else 'unset'}" for n, v in sorted(vals.items())),
                    {"variable": k, "per_node": vals, "fix": f"set {k} the same way on every node"},
                )
            )
    return out or Pass("VLLM_*/NCCL_* settings agree")


@check("BW907", "fleet-socket-ifname-present", severity="error", kb="fleet-drift", groups=FLEET)
def fleet_socket_ifname_present(fleet_nodes):
    """The interfaces named by NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME exist on every node."""
    out = []
    for n, f in sorted(fleet_nodes.items()):
        if "$error" in f:
            continue
        env = f.get("environment") if isinstance(f.get("environment"), dict) else {}
        ifaces = f.get("net_interfaces")
        if not isinstance(ifaces, list):
            continue
        for var in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
            spec = env.get(var)
            if not spec or spec.startswith("^"):
                continue  # unset, or an exclusion list
            names = [s.strip().lstrip("=") for s in spec.split(",") if s.strip()]
            # NCCL matches prefixes unless the list starts with '='; Gloo takes exact interface names
            exact = spec.startswith("=") or var == "GLOO_SOCKET_IFNAME"
            if not any(i == s or (not exact and i.startswith(s)) for s in names for i in ifaces):
                out.append(
                    Problem(
                        f"node {n}: {var}={spec} names no interface there (it has {', '.join(ifaces)}): "
                        "NCCL/Gloo cannot bootstrap and the cluster hangs at init",
                        {
                            "node": n,
                            "variable": var,
                            "interfaces": ifaces,
                            "fix": f"set {var} to an interface present on {n}",
                        },
                    )
                )
    return out or Pass("socket interface names resolve on every node")
