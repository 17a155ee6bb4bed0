"""Checks of multi-GPU communication: PCIe P2P and IOMMU, custom all-reduce, Resizable BAR, NCCL env (BW52x)."""

from __future__ import annotations

from bwdoctor.model import Pass, Problem, Skip, Unavailable
from bwdoctor.registry import check

GIB = 1 << 30


def _pairs(nvml):
    return nvml.get("pairs") or []


def _iommu_translating(cmdline):
    """True when the boot line turns on IOMMU translation for devices (no passthrough)."""
    on = any(t in ("intel_iommu=on", "amd_iommu=on", "amd_iommu=force_isolation") for t in cmdline)
    passthrough = any(
        t in ("iommu=pt", "iommu.passthrough=1", "iommu=off", "amd_iommu=off", "intel_iommu=off") for t in cmdline
    )
    return on and not passthrough


@check("BW521", "p2p-not-behind-iommu", severity="warning", kb="pcie-p2p-acs-iommu", optional=("kernel_cmdline",))
def p2p_not_behind_iommu(nvml, kernel_cmdline, environment):
    """GPUs talking over PCIe are not forced through an IOMMU or a host bridge that breaks P2P."""
    pairs = _pairs(nvml)
    if not pairs:
        return Skip("fewer than two GPUs")
    pcie = [p for p in pairs if not p.get("nvlink")]
    if not pcie:
        return Pass("all GPU pairs use NVLink")
    if environment.get("NCCL_P2P_DISABLE") == "1":
        return Pass("NCCL_P2P_DISABLE=1: NCCL does not use PCIe P2P")
    out = []
    if not isinstance(kernel_cmdline, Unavailable) and _iommu_translating(kernel_cmdline):
        opts = [t for t in kernel_cmdline if "iommu" in t]
        out.append(
            Problem(
                f"the kernel boots with {' '.join(opts)} (DMA translation) and {len(pcie)} GPU pair(s) talk over PCIe: "
                "peer-to-peer traffic is redirected through the root complex, and vLLM hangs after NCCL init "
                "('No available shared memory broadcast block found in 60 seconds')",
                {
                    "cmdline": opts,
                    "fix": "add iommu=pt to the kernel command line (or disable the IOMMU in the BIOS); "
                    "software workaround: NCCL_P2P_DISABLE=1",
                },
            )
        )
    bad = [p for p in pcie if p.get("p2p_read") not in (None, "OK")]
    for p in bad:
        out.append(
            Problem(
                f"GPU {p['a']} and GPU {p['b']} cannot use P2P ({p['p2p_read']}; link: {p.get('topology')}): NCCL "
                "falls back to copies through host memory, and vLLM's custom all-reduce fails",
                {
                    "gpus": [p["a"], p["b"]],
                    "p2p": p["p2p_read"],
                    "fix": "vllm serve ... --disable-custom-all-reduce (and NCCL_P2P_DISABLE=1 if transfers hang)",
                },
                severity="info",
            )
        )
    return out or Pass(f"P2P reads work between all {len(pcie)} PCIe GPU pair(s)")


@check("BW522", "custom-allreduce-safe", severity="warning", kb="custom-allreduce-p2p")
def custom_allreduce_safe(gpus, nvml):
    """vLLM's custom all-reduce can run: NVLink, or P2P-capable GPUs of an architecture it supports."""
    pairs = _pairs(nvml)
    if not pairs:
        return Skip("fewer than two GPUs")
    sm12 = [g for g in gpus if g.get("cc") and g["cc"][0] == 12]
    nolink = [p for p in pairs if not p.get("nvlink")]
    if sm12 and nolink:
        return Problem(
            f"{len(sm12)} sm_12x GPU(s) without NVLink: vLLM's custom all-reduce is not built for 12.x and aborts in "
            "CUDA-graph capture (custom_all_reduce.cuh 'invalid argument') or deadlocks at start-up",
            {"gpus": [g.get("name") for g in sm12], "fix": "vllm serve ... --disable-custom-all-reduce"},
        )
    no_p2p = [p for p in nolink if p.get("p2p_read") not in (None, "OK")]
    if no_p2p:
        return Problem(
            f"{len(no_p2p)} GPU pair(s) have no P2P access: vLLM's custom all-reduce fails with "
            "'peer access is not supported between these two devices'",
            {"pairs": [[p["a"], p["b"]] for p in no_p2p], "fix": "vllm serve ... --disable-custom-all-reduce"},
        )
    return Pass("custom all-reduce has NVLink or P2P between every GPU pair")


@check("BW523", "resizable-bar-enabled", severity="warning", kb="rebar-above4g-disabled")
def resizable_bar_enabled(nvml):
    """Every GPU exposes a large BAR1 (Resizable BAR / Above 4G Decoding enabled)."""
    small = [
        g
        for g in nvml.get("gpus", [])
        if g.get("bar1_total") and g.get("mem_total") and g["bar1_total"] < GIB and g["mem_total"] > 4 * GIB
    ]
    if not nvml.get("gpus"):
        return Skip("NVML reports no GPU")
    if not small:
        return Pass("BAR1 is large on every GPU")
    return Problem(
        ", ".join(f"GPU {g['index']} ({g.get('name')}) BAR1 {g['bar1_total'] // (1 << 20)} MiB" for g in small)
        + ": Resizable BAR / Above 4G Decoding is off in the BIOS; Blackwell cards may fail to initialise "
        "(RmInitAdapter failed! (0x22:0x56:884)) and P2P and large transfers slow down",
        {"gpus": [g["index"] for g in small], "fix": "enable Above 4G Decoding and Resizable BAR in the BIOS"},
    )


P2P_LEVELS = {"LOC", "NVL", "PIX", "PXB", "PHB", "SYS", "0", "1", "2", "3", "4", "5"}


@check("BW524", "nccl-env-sane", severity="warning", kb="pcie-p2p-acs-iommu", optional=("nvml",))
def nccl_env_sane(environment, nvml):
    """NCCL_* settings are valid and do not throw away NVLink."""
    out = []
    lvl = environment.get("NCCL_P2P_LEVEL")
    if lvl is not None and lvl.upper() not in P2P_LEVELS:
        out.append(
            Problem(
                f"NCCL_P2P_LEVEL={lvl!r} is not a level NCCL knows (LOC, NVL, PIX, PXB, PHB, SYS)",
                {"NCCL_P2P_LEVEL": lvl, "fix": "unset NCCL_P2P_LEVEL"},
                severity="error",
            )
        )
    for var in ("NCCL_P2P_DISABLE", "NCCL_DMABUF_ENABLE", "NCCL_IB_DISABLE", "NCCL_SHM_DISABLE"):
        val = environment.get(var)
        if val is not None and val not in ("0", "1"):
            out.append(
                Problem(
                    f"{var}={val!r}: NCCL reads this as an integer (0 or 1)",
                    {var: val, "fix": f"set {var}=0 or {var}=1"},
                )
            )
    pairs = [] if isinstance(nvml, Unavailable) else _pairs(nvml)
    if environment.get("NCCL_P2P_DISABLE") == "1" and any(p.get("nvlink") for p in pairs):
        out.append(
            Problem(
                "NCCL_P2P_DISABLE=1 on GPUs joined by NVLink: collectives go through host memory, many times slower",
                {"fix": "unset NCCL_P2P_DISABLE"},
            )
        )
    return out or None
