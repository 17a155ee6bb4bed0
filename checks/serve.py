"""Serve-config checks (BW6xx): wrong vLLM flags, env vars and settings found before the cold start.

One pass (lint_all) lints the parsed configs (fact serve_configs) against the installed vLLM release
(fact distributions, or the probe's --vllm-version override) and the machine (targets, gpus); each rule
check of RULE_CHECKS keeps the records of its rules. A finding carries the location of the word a person
edits and its rule's own article.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from bwdoctor import lazyre, records
from bwdoctor.model import Location, Problem, Skip, Unavailable
from bwdoctor.records import dataclass, field
from bwdoctor.registry import check

if TYPE_CHECKING:  # the linter and the release tables are imported when a config is found, not before
    from bwdoctor.serve.config import ServeConfig
    from bwdoctor.serve.lint import Lint, Machine
    from bwdoctor.serve.releases import Release

OPTIONAL = ("distributions", "targets", "gpus")
MEMORY_RULES = ("sampler-warmup-oom", "kv-cache-too-small")
WORKAROUND_RULE = "workaround-flags-slow"  # holds only where vLLM has sm_12x code (read by BW604 alone)


def _vllm_version(serve_configs: Any, distributions: Any) -> Optional[str]:
    override = serve_configs.get("vllm_version") if isinstance(serve_configs, dict) else None
    if override:
        return str(override)
    if isinstance(distributions, list):
        for d in distributions:
            if isinstance(d, dict) and d.get("name") == "vllm" and d.get("version"):
                return str(d["version"])
    return None


# the version in a vLLM image tag: vllm/vllm-openai:v0.11.0, vllm-openai:0.10.1.1, ...:v0.11.1rc1 (not latest/nightly)
IMAGE_TAG_RE = lazyre.compile(r"vllm-openai[^:/@\s]*:v?(\d+(?:\.\d+){1,3}(?:rc\d+|\.post\d+)?)(?![\w.])")


def image_of(raw: Mapping[str, Any]) -> str:
    """The container image a serve config runs in (compose/k8s `image:`, the image word of a `docker run`)."""
    image = raw.get("image")
    if isinstance(image, str) and image:
        return image
    at = raw.get("launcher_at")
    if raw.get("launcher") == "image" and isinstance(at, list) and at and isinstance(at[0], str):
        return at[0]
    return ""


def image_version(image: str) -> Optional[str]:
    """The vLLM release an image tag names, or None (no tag, latest, nightly, a digest)."""
    m = IMAGE_TAG_RE.search(image or "")
    return m.group(1) if m else None


def version_for(raw: Mapping[str, Any], installed: Optional[str]) -> tuple:
    """(version, where it came from) for one config: --vllm-version or the installed vLLM, else the image tag,
    else the newest release bwdoctor knows (said in every finding)."""
    from bwdoctor.serve.releases import known_versions

    if installed:
        return installed, ""
    image = image_of(raw)
    tagged = image_version(image)
    if tagged:
        return tagged, f"vLLM {tagged} from the image tag {image}"
    newest = known_versions()[-1]
    return (
        newest,
        f"vLLM is not installed here: linted for {newest}, the newest release bwdoctor knows (--vllm-version)",
    )


def _machine(targets: Any, gpus: Any) -> Machine:
    from bwdoctor.serve.lint import Machine

    tg = tuple(targets) if isinstance(targets, (list, tuple)) else ()
    if isinstance(gpus, list) and gpus:
        mems = [g["mem_total"] for g in gpus if isinstance(g, dict) and isinstance(g.get("mem_total"), (int, float))]
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

    core = [
        f
        for f in cuda_binaries["vllm"].get("files", [])
        if not f.get("error") and re.search(r"/_C(\.abi3)?\.so$|/_C_stable_libtorch", f.get("path", ""))
    ]
    if not core:
        return None
    for t in targets or ():
        if t.startswith("sm_12"):
            if any(verdict_for_file(parse_cc(t), f).status == NONE for f in core):
                return False
    return True


@dataclass(frozen=True)
class LintRun:
    """What the one lint pass of a run found: records with their evidence, or why nothing can be judged."""

    lints: tuple = ()  # Lint records of every config, evidence filled for a finding
    release: Optional[Release] = None
    machine: Optional[Machine] = None  # set with a release
    skip: str = ""  # set when nothing can be judged
    failed: Mapping[str, BaseException] = field(default_factory=dict)  # rule -> what stopped it


def _for_finding(item: Lint, cfg: ServeConfig, release: Release, origin: str = "") -> Lint:
    """The record with the evidence a finding shows: config, kind, release (and where its version came from
    when vLLM is not installed), and a fix for a suggestion."""
    ev = dict(item.evidence, config=cfg.path, kind=cfg.kind, vllm=release.requested)
    if origin:
        ev["vllm_from"] = origin
        item = records.replace(item, message=f"{item.message} ({origin})")
    if cfg.image:
        ev["image"] = cfg.image
    if cfg.name:
        ev["name"] = cfg.name
    if not release.exact:
        ev["facts_from_release"] = release.version
    if item.evidence.get("suggestion") and "fix" not in ev:
        ev["fix"] = (
            f"replace {item.evidence.get('value') or item.evidence.get('flag') or 'it'!s} with "
            f"{item.evidence['suggestion']} at {item.path}:{item.line}"
        )
    return records.replace(item, evidence=ev)


def check_memory(cfg: ServeConfig, release: Release, machine: Machine) -> list:
    """bwdoctor.serve.memory.check_memory, imported when a config is linted (it brings the capacity planner)."""
    from bwdoctor.serve.memory import check_memory as memory_rules

    return memory_rules(cfg, release, machine)


def lint_pass(serve_configs: Any, distributions: Any, targets: Any, gpus: Any) -> LintRun:
    """Lint every config once for the installed vLLM and this machine.

    Whether vLLM has sm_12x code is read (from cuda_binaries) by BW604 alone, so the pass lints as if it
    had; BW604 drops the workaround records where workarounds_cost_speed says they keep vLLM running."""
    if not isinstance(serve_configs, dict) or not serve_configs.get("configs"):
        return LintRun(skip="no vLLM serve config found (pass one with --config FILE)")
    from bwdoctor.serve.config import ServeConfig
    from bwdoctor.serve.lint import lint
    from bwdoctor.serve.releases import release_for

    installed = _vllm_version(serve_configs, distributions)
    machine = records.replace(_machine(targets, gpus), vllm_runs_natively=True)
    lints: list = []
    failed: dict = {}
    release = None
    for raw in serve_configs["configs"]:
        cfg = ServeConfig.from_json(raw)
        version, origin = version_for(raw, installed)
        release = release_for(version)
        found = lint(cfg, release, machine)
        try:
            found += check_memory(cfg, release, machine)
        except Exception as exc:  # the memory planner failing stops its two checks, not the others
            failed.update(dict.fromkeys(MEMORY_RULES, exc))
        lints += [_for_finding(item, cfg, release, origin) for item in found]
    return LintRun(tuple(lints), release, _machine(targets, gpus), failed=failed)


_RUNS: list = []  # [(fact objects, LintRun)], newest last
_RUNS_KEPT = 4
_RUNS_LOCK = threading.Lock()


def _same(a: Any, b: Any) -> bool:
    return a is b or (isinstance(a, Unavailable) and a == b)


def lint_all(serve_configs: Any, distributions: Any, targets: Any, gpus: Any) -> LintRun:
    """lint_pass, once per run: memoised on the identity of the fact objects (facts are not changed in a run)."""
    facts = (serve_configs, distributions, targets, gpus)
    with _RUNS_LOCK:
        for key, run in _RUNS:
            if len(key) == len(facts) and all(_same(a, b) for a, b in zip(key, facts, strict=True)):
                return run
    run = lint_pass(*facts)
    with _RUNS_LOCK:
        _RUNS.append((facts, run))  # the key holds its objects, so their ids are not reused while cached
        del _RUNS[:-_RUNS_KEPT]
    return run


@dataclass(frozen=True)
class RuleCheck:
    """One serve rule check: its id, name, severity and article, and the lint rules whose records it reports."""

    id: str
    name: str
    severity: str
    kb: str
    rules: tuple
    title: str
    gpu_count: bool = False  # skip when the GPU count is unknown
    binaries: bool = False  # reads cuda_binaries: drops workaround records where vLLM lacks sm_12x code


RULE_CHECKS = (
    RuleCheck(
        "BW601",
        "serve-flags-known",
        "error",
        "unknown-serve-option",
        ("unknown-flag", "unknown-quantization"),
        "Every vLLM serve flag and quantization name exists in the installed vLLM.",
    ),
    RuleCheck(
        "BW602",
        "serve-env-read",
        "warning",
        "unknown-serve-option",
        ("env-not-read", "env-deprecated"),
        "Every VLLM_* variable set for the server is read by the installed vLLM.",
    ),
    RuleCheck(
        "BW603",
        "serve-attention-backend",
        "error",
        "bad-attention-backend",
        ("bad-attention-backend",),
        "The attention backend named is valid for this vLLM and runs on the target GPU.",
    ),
    RuleCheck(
        "BW604",
        "serve-workaround-flags",
        "warning",
        "workaround-flags-slow",
        ("workaround-flags-slow", "awq-marlin"),
        "No pre-native-kernel workaround flags (Marlin disabled, eager mode, forced awq) slow the server.",
        binaries=True,
    ),
    RuleCheck(
        "BW605",
        "serve-sampler-warmup",
        "warning",
        "sampler-warmup-oom",
        ("sampler-warmup-oom",),
        "The sampler warm-up fits in the memory --gpu-memory-utilization leaves free.",
    ),
    RuleCheck(
        "BW606",
        "serve-kv-cache-fits",
        "error",
        "kv-cache-too-small",
        ("kv-cache-too-small",),
        "The KV cache left after weights holds at least one --max-model-len sequence.",
    ),
    RuleCheck(
        "BW607",
        "serve-bitsandbytes-sm120",
        "error",
        "bitsandbytes-sm120",
        ("bitsandbytes-sm120",),
        "No bitsandbytes quantization on sm_120, where it gives garbage output.",
    ),
    RuleCheck(
        "BW608",
        "serve-flashinfer-sm120",
        "warning",
        "flashinfer-sm120",
        ("flashinfer-sm120",),
        "No FLASHINFER attention on sm_120 with a vLLM where it crashes.",
    ),
    RuleCheck(
        "BW609",
        "serve-fa3-blackwell",
        "error",
        "fa3-blackwell",
        ("fa3-blackwell",),
        "FlashAttention 3 is not forced on a Blackwell GPU.",
    ),
    RuleCheck(
        "BW610",
        "serve-tp-fits-gpus",
        "error",
        "tp-exceeds-gpus",
        ("tp-exceeds-gpus",),
        "Tensor × pipeline parallel size is not larger than the GPUs present.",
        gpu_count=True,
    ),
    RuleCheck(
        "BW611",
        "serve-config-flag-used",
        "error",
        "config-flag-ignored",
        ("config-ignored",),
        "--config files are passed in the form vLLM reads, and their values are applied.",
    ),
    RuleCheck(
        "BW613",
        "serve-flag-values",
        "error",
        "bad-serve-flag-value",
        ("bad-flag-value",),
        "The values of common serve flags (--dtype, --gpu-memory-utilization, parallel sizes, --max-model-len) "
        "are ones vLLM accepts.",
    ),
)


def judge(
    rc: RuleCheck, serve_configs: Any, distributions: Any, targets: Any, gpus: Any, cuda_binaries: Any = None
) -> Any:
    """The findings of one rule check: its rules' records of the run's lint pass, each with its rule's article."""
    if rc.gpu_count and (isinstance(gpus, Unavailable) or not gpus):
        return Skip("GPU count unknown (no GPUs seen)")
    run = lint_all(serve_configs, distributions, targets, gpus)
    if run.skip:
        return Skip(run.skip)
    for rule in rc.rules:
        if rule in run.failed:
            raise run.failed[rule]
    keep_workarounds = True
    if rc.binaries and run.release is not None and run.machine is not None:
        from bwdoctor.serve.lint import workarounds_cost_speed

        natively = vllm_runs_natively(run.machine.targets, cuda_binaries)
        keep_workarounds = workarounds_cost_speed(run.release, natively)
    return [
        Problem(x.message, dict(x.evidence), Location(x.path, x.line, x.column), severity=x.severity, kb=x.slug)
        for x in run.lints
        if x.rule in rc.rules and (keep_workarounds or x.rule != WORKAROUND_RULE)
    ]


def _rule_check(rc: RuleCheck) -> Callable[..., Any]:
    """The registered check of one RuleCheck (its parameters name the facts it reads)."""
    func: Callable[..., Any]
    if rc.binaries:

        def with_binaries(serve_configs, distributions, targets, gpus, cuda_binaries):
            return judge(rc, serve_configs, distributions, targets, gpus, cuda_binaries)

        func = with_binaries
    else:

        def func_plain(serve_configs, distributions, targets, gpus):
            return judge(rc, serve_configs, distributions, targets, gpus)

        func = func_plain
    func.__name__ = func.__qualname__ = rc.name.replace("-", "_")
    func.__doc__ = rc.title
    optional = OPTIONAL + (("cuda_binaries",) if rc.binaries else ())
    return check(rc.id, rc.name, severity=rc.severity, kb=rc.kb, groups=("serve",), optional=optional)(func)


for _rc in RULE_CHECKS:  # serve_flags_known, serve_env_read, ...: module attributes, found by the registry
    globals()[_rc.name.replace("-", "_")] = _rule_check(_rc)
del _rc


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
