"""Serve-config checks (BW6xx): wrong vLLM flags, env vars and settings found before the cold start.

Every check lints the same parsed configs (fact serve_configs) against the installed vLLM release
(fact distributions, or the probe's --vllm-version override) and the machine (targets, gpus); each
finding carries the location of the word a person edits.
"""
from __future__ import annotations

import re

from bwdoctor.model import Location, Problem, Skip, Unavailable
from bwdoctor.registry import check
from bwdoctor.serve.config import ServeConfig
from bwdoctor.serve.lint import Machine, lint
from bwdoctor.serve.memory import check_memory
from bwdoctor.serve.releases import release_for

OPTIONAL = ("distributions", "targets", "gpus")


def _vllm_version(serve_configs, distributions):
    override = serve_configs.get("vllm_version") if isinstance(serve_configs, dict) else None
    if override:
        return str(override)
    if isinstance(distributions, list):
        for d in distributions:
            if isinstance(d, dict) and d.get("name") == "vllm" and d.get("version"):
                return str(d["version"])
    return None


def _machine(targets, gpus) -> Machine:
    tg = tuple(targets) if isinstance(targets, (list, tuple)) else ()
    if isinstance(gpus, list) and gpus:
        mems = [g.get("mem_total") for g in gpus if isinstance(g, dict) and g.get("mem_total")]
        if not tg:
            tg = tuple(sorted({g["arch"] for g in gpus if isinstance(g, dict) and g.get("arch")}))
        return Machine(tg, len(gpus), min(mems) if mems else None)
    return Machine(tg, None, None)


def vllm_runs_natively(targets, cuda_binaries):
    """Whether vLLM's own CUDA library (_C) has code for every sm_12x target; None when unknown."""
    if not isinstance(cuda_binaries, dict) or not isinstance(cuda_binaries.get("vllm"), dict):
        return None
    from bwdoctor.domain.arch import parse_cc
    from bwdoctor.domain.compat import NONE, verdict_for_file
    core = [f for f in cuda_binaries["vllm"].get("files", [])
            if not f.get("error") and re.search(r"/_C(\.abi3)?\.so$|/_C_stable_libtorch", f.get("path", ""))]
    if not core:
        return None
    for t in targets or ():
        if t.startswith("sm_12"):
            if any(verdict_for_file(parse_cc(t), f).status == NONE for f in core):
                return False
    return True


def _lints(serve_configs, distributions, targets, gpus, rules, cuda_binaries=None):
    """Problems for the Lint rules named, over every config; or Skip when nothing can be judged."""
    if not isinstance(serve_configs, dict) or not serve_configs.get("configs"):
        return Skip("no vLLM serve config found (pass one with --config FILE)")
    version = _vllm_version(serve_configs, distributions)
    if not version:
        return Skip("vLLM is not installed in the inspected environment; pass --vllm-version to lint anyway")
    release = release_for(version)
    machine = _machine(targets, gpus)
    machine.vllm_runs_natively = vllm_runs_natively(machine.targets, cuda_binaries)
    out = []
    for raw in serve_configs["configs"]:
        cfg = ServeConfig.from_json(raw)
        found = lint(cfg, release, machine)
        if {"sampler-warmup-oom", "kv-cache-too-small"} & set(rules):
            found += check_memory(cfg, release, machine)
        for item in found:
            if item.rule in rules:
                ev = dict(item.evidence, config=cfg.path, kind=cfg.kind, vllm=release.requested)
                if cfg.name:
                    ev["name"] = cfg.name
                if not release.exact:
                    ev["facts_from_release"] = release.version
                if item.evidence.get("suggestion") and "fix" not in ev:
                    ev["fix"] = (f"replace {item.evidence.get('value') or item.evidence.get('flag') or 'it'!s} with "
                                 f"{item.evidence['suggestion']} at {item.path}:{item.line}")
                out.append(Problem(item.message, ev, Location(item.path, item.line, item.column),
                                   severity=item.severity))
    return out


@check("BW601", "serve-flags-known", severity="error", kb="unknown-serve-option", groups=("serve",),
       optional=OPTIONAL)
def serve_flags_known(serve_configs, distributions, targets, gpus):
    """Every vLLM serve flag and quantization name exists in the installed vLLM."""
    return _lints(serve_configs, distributions, targets, gpus, ("unknown-flag", "unknown-quantization"))


@check("BW602", "serve-env-read", severity="warning", kb="unknown-serve-option", groups=("serve",),
       optional=OPTIONAL)
def serve_env_read(serve_configs, distributions, targets, gpus):
    """Every VLLM_* variable set for the server is read by the installed vLLM."""
    return _lints(serve_configs, distributions, targets, gpus, ("env-not-read", "env-deprecated"))


@check("BW603", "serve-attention-backend", severity="error", kb="bad-attention-backend", groups=("serve",),
       optional=OPTIONAL)
def serve_attention_backend(serve_configs, distributions, targets, gpus):
    """The attention backend named is valid for this vLLM and runs on the target GPU."""
    return _lints(serve_configs, distributions, targets, gpus, ("bad-attention-backend",))


@check("BW604", "serve-workaround-flags", severity="warning", kb="workaround-flags-slow", groups=("serve",),
       optional=OPTIONAL + ("cuda_binaries",))
def serve_workaround_flags(serve_configs, distributions, targets, gpus, cuda_binaries):
    """No pre-native-kernel workaround flags (Marlin disabled, eager mode, forced awq) slow the server."""
    return _lints(serve_configs, distributions, targets, gpus, ("workaround-flags-slow", "awq-marlin"), cuda_binaries)


@check("BW605", "serve-sampler-warmup", severity="warning", kb="sampler-warmup-oom", groups=("serve",),
       optional=OPTIONAL)
def serve_sampler_warmup(serve_configs, distributions, targets, gpus):
    """The sampler warm-up fits in the memory --gpu-memory-utilization leaves free."""
    return _lints(serve_configs, distributions, targets, gpus, ("sampler-warmup-oom",))


@check("BW606", "serve-kv-cache-fits", severity="error", kb="kv-cache-too-small", groups=("serve",),
       optional=OPTIONAL)
def serve_kv_cache_fits(serve_configs, distributions, targets, gpus):
    """The KV cache left after weights holds at least one --max-model-len sequence."""
    return _lints(serve_configs, distributions, targets, gpus, ("kv-cache-too-small",))


@check("BW607", "serve-bitsandbytes-sm120", severity="error", kb="bitsandbytes-sm120", groups=("serve",),
       optional=OPTIONAL)
def serve_bitsandbytes_sm120(serve_configs, distributions, targets, gpus):
    """No bitsandbytes quantization on sm_120, where it gives garbage output."""
    return _lints(serve_configs, distributions, targets, gpus, ("bitsandbytes-sm120",))


@check("BW608", "serve-flashinfer-sm120", severity="warning", kb="flashinfer-sm120", groups=("serve",),
       optional=OPTIONAL)
def serve_flashinfer_sm120(serve_configs, distributions, targets, gpus):
    """No FLASHINFER attention on sm_120 with a vLLM where it crashes."""
    return _lints(serve_configs, distributions, targets, gpus, ("flashinfer-sm120",))


@check("BW609", "serve-fa3-blackwell", severity="error", kb="fa3-blackwell", groups=("serve",),
       optional=OPTIONAL)
def serve_fa3_blackwell(serve_configs, distributions, targets, gpus):
    """FlashAttention 3 is not forced on a Blackwell GPU."""
    return _lints(serve_configs, distributions, targets, gpus, ("fa3-blackwell",))


@check("BW610", "serve-tp-fits-gpus", severity="error", kb="tp-exceeds-gpus", groups=("serve",),
       optional=OPTIONAL)
def serve_tp_fits_gpus(serve_configs, distributions, targets, gpus):
    """Tensor × pipeline parallel size is not larger than the GPUs present."""
    if isinstance(gpus, Unavailable) or not gpus:
        return Skip("GPU count unknown (no GPUs seen)")
    return _lints(serve_configs, distributions, targets, gpus, ("tp-exceeds-gpus",))


@check("BW611", "serve-config-flag-used", severity="error", kb="config-flag-ignored", groups=("serve",),
       optional=OPTIONAL)
def serve_config_flag_used(serve_configs, distributions, targets, gpus):
    """--config files are passed in the form vLLM reads, and their values are applied."""
    return _lints(serve_configs, distributions, targets, gpus, ("config-ignored",))


@check("BW612", "serve-config-readable", severity="warning", kb="unknown-serve-option", groups=("serve",))
def serve_config_readable(serve_configs):
    """Every serve config found could be read and parsed."""
    if not isinstance(serve_configs, dict):
        return Skip("no serve configs")
    out = [Problem(e, {"config": e.split(":", 1)[0]}) for e in serve_configs.get("errors", [])]
    for raw in serve_configs.get("configs", []):
        for e in raw.get("errors", []):
            out.append(Problem(e, {"config": raw.get("path")}, Location(raw.get("path", ""), 1, 1)))
    return out
