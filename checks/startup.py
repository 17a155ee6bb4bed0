"""What a vLLM server starts with beyond its flags (BW80x): the torch allocator setting, the CPUs it runs on against
its GPUs' NUMA nodes, the FP8 KV-cache scales of its checkpoint, and the NVFP4 MoE backend vLLM picks on sm_12x.
Ids BW801-BW804, family "startup" (the hundreds digit 8 is otherwise capacity)."""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from bwdoctor.domain import allocconf, placement
from bwdoctor.domain.checkpoints import (
    FLASHINFER_BAD_UNTIL,
    KEYERROR_LOADERS,
    NVFP4_SELECTION,
    in_range,
    is_nvfp4,
)
from bwdoctor.domain.versions import compare, parse_version
from bwdoctor.model import Location, Pass, Problem, Skip
from bwdoctor.registry import check
from bwdoctor.serve.config import EnvVar, ServeConfig, Token


def _canonical(text: str) -> Any:
    from bwdoctor.serve.lint import canonical  # the linter, imported when a config holds a flag

    return canonical(text)


def _configs(serve_configs: Any) -> List[ServeConfig]:
    if not isinstance(serve_configs, dict):
        return []
    out = []
    for raw in serve_configs.get("configs") or []:
        try:
            out.append(ServeConfig.from_json(raw))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _flag(cfg: ServeConfig, *names: str) -> Optional[Token]:
    """The value token of the last --flag / -f of these names in a launch (or a --config YAML it includes)."""
    found = None
    for c in [cfg, *cfg.includes]:
        argv = c.argv
        for i, tok in enumerate(argv):
            if not tok.text.startswith("-"):
                continue
            name, _, inline = _canonical(tok.text) if tok.text.startswith("--") else (tok.text.split("=")[0], "", None)
            if name not in names:
                continue
            if inline is not None:
                found = Token(inline, tok.path, tok.line, tok.column + len(tok.text) - len(inline), tok.origin)
            elif "=" in tok.text:
                found = Token(tok.text.split("=", 1)[1], tok.path, tok.line, tok.column, tok.origin)
            elif i + 1 < len(argv):
                found = argv[i + 1]
    return found


def _env(cfg: ServeConfig) -> Dict[str, EnvVar]:
    env = {}
    for c in [*cfg.includes, cfg]:
        env.update(c.env_map())
    return env


def _loc(where: Any) -> Optional[Location]:
    if isinstance(where, (EnvVar, Token)):
        return Location(where.path, where.line, where.column)
    return None


def _model_at(cfg: Optional[ServeConfig]) -> Optional[Location]:
    """Where a launch names its model (--model's value), else its launcher."""
    if cfg is None:
        return None
    return _loc(_flag(cfg, "--model") or cfg.launcher_token)


def _version_of(distributions: Any, *names: str) -> Optional[str]:
    if isinstance(distributions, list):
        for d in distributions:
            if isinstance(d, dict) and d.get("name") in names and d.get("version"):
                return str(d["version"])
    return None


def _vllm(serve_configs: Any, distributions: Any) -> Optional[str]:
    override = serve_configs.get("vllm_version") if isinstance(serve_configs, dict) else None
    return str(override) if override else _version_of(distributions, "vllm")


# -- BW801: the allocator setting -------------------------------------------------------------------------------
def _alloc_settings(environment: Any, serve_configs: Any) -> List[Tuple[str, Dict[str, Tuple[str, Any]]]]:
    """[(where, {variable: (value, EnvVar or None)})] for the shell environment and every serve config."""
    out = []
    found: Dict[str, Tuple[str, Any]]
    if isinstance(environment, dict):
        found = {v: (str(environment[v]), None) for v in allocconf.VARIABLES if v in environment}
        if found:
            out.append(("the environment of this shell", found))
    for cfg in _configs(serve_configs):
        env = _env(cfg)
        found = {v: (env[v].value, env[v]) for v in allocconf.VARIABLES if v in env}
        if found:
            out.append((cfg.path + (f" ({cfg.name})" if cfg.name else ""), found))
    return out


@check(
    "BW801",
    "allocator-conf-valid",
    severity="error",
    kb="allocator-conf",
    family="startup",
    groups=("runtime", "serve"),
    optional=("environment", "serve_configs"),
)
def allocator_conf_valid(torch_allocator, environment, serve_configs):
    """PYTORCH_CUDA_ALLOC_CONF / PYTORCH_ALLOC_CONF use a variable, options and values the installed torch reads."""
    libs = torch_allocator.get("libraries") or {}
    cuda = libs.get("libc10_cuda.so") or {}
    if cuda.get("error"):
        return Skip(f"libc10_cuda.so could not be read: {cuda['error']}")
    idents = sorted({i for lib in libs.values() for i in lib.get("identifiers", [])})
    reads = [v for v in allocconf.VARIABLES if v in cuda.get("variables", [])]
    generic = [v for v in allocconf.VARIABLES if v in (libs.get("libc10.so") or {}).get("variables", [])]
    torch = torch_allocator.get("torch") or "?"
    settings = _alloc_settings(environment, serve_configs)
    if not settings:
        return Pass(f"no allocator setting is set; torch {torch} uses its defaults", {"reads": reads})
    out: List[Any] = []
    for where, found in settings:
        for var, (value, at) in found.items():
            ev = {"where": where, "variable": var, "value": value, "torch": torch, "cuda_allocator_reads": reads}
            if var not in reads:
                fix = f"rename it to {reads[0]}" if reads else "set the variable this torch reads"
                if var in generic:
                    msg = (
                        f"{where}: {var}={value} is not read by torch {torch}'s CUDA allocator (it reads "
                        f"{' and '.join(reads) or 'neither name'}); libc10 takes it for device-generic options only, "
                        "and expandable_segments set there stays off for CUDA (pytorch/pytorch#183387)"
                    )
                else:
                    msg = (
                        f"{where}: {var}={value} is ignored: torch {torch} reads "
                        f"{' and '.join(reads) or 'neither name'}"
                    )
                out.append(Problem(msg, dict(ev, fix=fix), _loc(at), severity="warning"))
            read = var in reads or var in generic
            stops = "the first CUDA allocation raises RuntimeError" if read else f"it would raise once {var} is read"
            parsed = allocconf.parse(value)
            for offset, msg in parsed.errors:
                out.append(
                    Problem(
                        f"{where}: {var}={value}: {msg}",
                        dict(ev, offset=offset),
                        _loc(at),
                        severity="error" if read else "warning",
                    )
                )
            for opt in parsed.options:
                if not allocconf.accepts(idents, opt.key):
                    guess = allocconf.nearest(opt.key, idents)
                    later = " (it came in a later torch)" if opt.key in allocconf.KNOWN else ""
                    out.append(
                        Problem(
                            f"{where}: {var} option {opt.key!r} is not one torch {torch} knows{later}: {stops} "
                            "(Unrecognized ... option)" + (f"; did you mean {guess!r}?" if guess else ""),
                            dict(ev, option=opt.key, fix=f"replace {opt.key} with {guess}" if guess else "remove it"),
                            _loc(at),
                            severity="error" if read else "warning",
                        )
                    )
                    continue
                bad = allocconf.value_problem(opt.key, opt.value)
                if bad:
                    out.append(
                        Problem(
                            f"{where}: {var} option {opt.key} {bad}: {stops}",
                            dict(ev, option=opt.key),
                            _loc(at),
                            severity="error" if read else "warning",
                        )
                    )
        if len(found) == 2 and len({v for v, _ in found.values()}) == 2 and len(reads) == 2:
            vals = {k: v for k, (v, _) in found.items()}
            out.append(
                Problem(
                    f"{where}: PYTORCH_CUDA_ALLOC_CONF and PYTORCH_ALLOC_CONF are both set, to different values; "
                    f"torch {torch} takes one of them (which one changed between releases): set one",
                    {"where": where, "values": vals, "torch": torch},
                    _loc(found["PYTORCH_ALLOC_CONF"][1]),
                    severity="warning",
                )
            )
    return out or Pass(f"allocator settings are ones torch {torch} reads and accepts", {"reads": reads})


# -- BW802: NUMA affinity ----------------------------------------------------------------------------------------
def _nodes(numa_topology: dict) -> Dict[int, FrozenSet[int]]:
    out = {}
    for k, v in (numa_topology.get("nodes") or {}).items():
        try:
            cpus = placement.parse_cpulist(str(v))
        except ValueError:
            continue
        if cpus and str(k).isdigit():
            out[int(k)] = cpus
    return out


def _used_gpus(gpus: List[dict], cfg: Optional[ServeConfig]) -> Tuple[List[dict], str]:
    """The GPUs a launch uses: CUDA_VISIBLE_DEVICES indices (PCI bus order), the first tensor-parallel ones."""
    ordered = sorted(gpus, key=lambda g: str(g.get("bus") or ""))
    how = "every GPU"
    if cfg is not None:
        vis = _env(cfg).get("CUDA_VISIBLE_DEVICES")
        if vis is not None and all(p.strip().isdigit() for p in vis.value.split(",") if p.strip()):
            idx = [int(p) for p in vis.value.split(",") if p.strip()]
            ordered = [ordered[i] for i in idx if i < len(ordered)]
            how = f"CUDA_VISIBLE_DEVICES={vis.value} (PCI bus order)"
        tp = _flag(cfg, "--tensor-parallel-size", "-tp")
        if tp is not None and tp.text.isdigit() and 0 < int(tp.text) <= len(ordered):
            ordered = ordered[: int(tp.text)]
            how += f", tensor-parallel-size {tp.text}"
    return ordered, how


def _placements(cfg: ServeConfig, nodes: Dict[int, FrozenSet[int]], processes: Dict[str, str]) -> List[tuple]:
    """[(CPUs, explicit, how, location)] a launch pins itself to."""
    out = []
    if cfg.kind == "process":
        pid = cfg.path.split("/")[2] if cfg.path.startswith("/proc/") else ""
        if pid in processes:
            try:
                cpus = placement.parse_cpulist(processes[pid])
            except ValueError:
                cpus = frozenset()
            everything = frozenset(c for n in nodes.values() for c in n)
            if cpus:
                out.append((cpus, cpus != everything, f"/proc/{pid}/status Cpus_allowed_list {processes[pid]}", None))
    words = [t.text for t in cfg.prefix]
    try:
        got = placement.pinned_cpus(words, nodes)
    except ValueError:
        got = None
    if got:
        out.append((got[0], True, got[2], cfg.prefix[got[1]]))
    for s in cfg.settings:
        try:
            pinned = placement.affinity_setting(s.name, s.value)
        except ValueError:
            continue
        if pinned:
            out.append((pinned, True, f"{s.name}: {s.value}", s))
    return out


@check(
    "BW802",
    "numa-affinity",
    severity="warning",
    kb="numa-affinity",
    family="startup",
    groups=("runtime", "serve"),
    optional=("serve_configs",),
)
def numa_affinity(numa_topology, serve_configs):
    """A vLLM server's CPUs include its GPUs' NUMA node, and stay on it when its GPUs share one node."""
    nodes = _nodes(numa_topology)
    if len(nodes) < 2:
        return Skip("one NUMA node with CPUs: every CPU is local to every GPU")
    gpus = [g for g in numa_topology.get("gpus") or [] if isinstance(g, dict)]
    if not gpus:
        return Skip("no NVIDIA GPU on the PCI bus")
    processes = numa_topology.get("processes") or {}
    out: List[Any] = []
    for cfg in _configs(serve_configs):
        used, how_gpus = _used_gpus(gpus, cfg)
        gpu_nodes = sorted({g["numa_node"] for g in used if isinstance(g.get("numa_node"), int)})
        if not used or any(not isinstance(g.get("numa_node"), int) or g["numa_node"] < 0 for g in used):
            continue  # the firmware does not say which node a GPU hangs off
        local = frozenset(c for n in gpu_nodes for c in nodes.get(n, frozenset()))
        for cpus, explicit, how, at in _placements(cfg, nodes, processes):
            ev = {
                "config": cfg.path,
                "cpus": placement.format_cpus(cpus),
                "pinned_by": how,
                "cpu_nodes": placement.node_of(cpus, nodes),
                "gpus": [g.get("bus") for g in used],
                "gpu_nodes": gpu_nodes,
                "gpus_from": how_gpus,
                "local_cpus": placement.format_cpus(local),
            }
            if not cpus & local:
                out.append(
                    Problem(
                        f"{cfg.path}: the server runs on CPUs {ev['cpus']} (node {ev['cpu_nodes']}, {how}) but its "
                        f"GPUs {ev['gpus']} hang off NUMA node {gpu_nodes}: every host-device copy and kernel launch "
                        "crosses the socket interconnect",
                        dict(
                            ev,
                            fix=f"pin it to node {gpu_nodes[0]}: numactl --cpunodebind={gpu_nodes[0]} "
                            f"--membind={gpu_nodes[0]} (or CPUs {ev['local_cpus']})",
                        ),
                        _loc(at),
                    )
                )
            elif explicit and len(ev["cpu_nodes"]) > 1 and len(gpu_nodes) == 1:
                out.append(
                    Problem(
                        f"{cfg.path}: the server is pinned ({how}) to CPUs on NUMA nodes {ev['cpu_nodes']} while all "
                        f"its tensor-parallel GPUs sit on node {gpu_nodes[0]}: workers scheduled on the far node "
                        "cross the interconnect",
                        dict(ev, fix=f"keep it on node {gpu_nodes[0]}: CPUs {ev['local_cpus']}"),
                        _loc(at),
                    )
                )
            else:
                out.append(Pass(f"{cfg.path}: CPUs {ev['cpus']} include the GPUs' NUMA node {gpu_nodes}", ev))
    return out or Skip("no serve config or running server pins its CPUs")


# -- BW803: FP8 KV-cache scales ----------------------------------------------------------------------------------
def _models(serve_models: Any, serve_configs: Any) -> List[Tuple[dict, Optional[ServeConfig]]]:
    cfgs = {(c.path, c.name): c for c in _configs(serve_configs)}
    out = []
    for m in serve_models if isinstance(serve_models, list) else []:
        if isinstance(m, dict):
            out.append((m, cfgs.get((str(m.get("config")), str(m.get("name") or "")))))
    return out


@check(
    "BW803",
    "kv-cache-scales",
    severity="error",
    kb="missing-kv-scales",
    family="startup",
    groups=("serve",),
    optional=("distributions", "serve_configs"),
)
def kv_cache_scales(serve_models, serve_configs, distributions):
    """The checkpoint's FP8 KV-cache scales are ones this vLLM loads, and present when the KV cache is FP8."""
    version = _vllm(serve_configs, distributions)
    out: List[Any] = []
    for m, cfg in _models(serve_models, serve_configs):
        scales = m.get("kv_scales")
        if not isinstance(scales, dict):
            continue
        forms = scales.get("forms") or {}
        quant = m.get("quant") or {}
        ev = {
            "config": m.get("config"),
            "model": m.get("model"),
            "dir": m.get("dir"),
            "vllm": version,
            "kv_scales": scales.get("count"),
            "forms": forms,
            "examples": scales.get("examples"),
            "tensors_from": m.get("tensors_from"),
            "kv_cache_quant_algo": quant.get("kv_algo"),
        }
        arch = next((a for a in m.get("architectures") or [] if a in KEYERROR_LOADERS), None)
        if arch and forms.get("proj") and version:
            row = KEYERROR_LOADERS[arch]
            if in_range(version, row["first"], before=row["fixed"]):
                out.append(
                    Problem(
                        f"{m.get('model')}: the checkpoint stores {forms['proj']} KV scales on the projections "
                        f"({(scales.get('examples') or ['self_attn.k_proj.k_scale'])[0]}); vLLM {version}'s "
                        f"{arch} loader renames them to self_attn.qkv_proj.k_scale and stops with KeyError "
                        f"(fixed in {row['fixed']})",
                        dict(
                            ev,
                            loader=row["file"],
                            fix=f"pip install 'vllm>={row['fixed']}', or skip the "
                            "k_scale/v_scale names the model does not register in load_weights",
                        ),
                        _model_at(cfg),
                    )
                )
                continue
        kv = _flag(cfg, "--kv-cache-dtype") if cfg else None
        kv_text = kv.text.lower() if kv else "auto"
        fp8 = kv_text.startswith("fp8") or (kv_text == "auto" and (quant.get("kv_algo") or "").startswith("FP8"))
        if fp8 and not scales.get("count"):
            why = f"--kv-cache-dtype {kv.text}" if kv else "auto, from the checkpoint's kv_cache_quant_algo"
            out.append(
                Problem(
                    f"{m.get('model')}: the KV cache is FP8 ({why}) but the checkpoint has no k_scale/v_scale "
                    "tensors: vLLM uses scale 1.0, which can cost accuracy",
                    dict(ev, kv_cache_dtype=kv_text, fix="use a checkpoint with KV scales, or --kv-cache-dtype auto"),
                    _loc(kv) if kv else _model_at(cfg),
                    severity="warning",
                )
            )
            continue
        kv_said = f"{kv_text} (fp8 from the checkpoint)" if fp8 and kv_text == "auto" else kv_text
        out.append(Pass(f"{m.get('model')}: {scales.get('count', 0)} KV-scale tensors, KV cache {kv_said}", ev))
    return out or Skip("no serve config names a local model with readable tensor names")


# -- BW804: NVFP4 MoE on sm_12x ------------------------------------------------------------------------------------
@check(
    "BW804",
    "nvfp4-moe-backend-sm12x",
    severity="error",
    kb="flashinfer-nvfp4-moe-sm120",
    family="startup",
    groups=("serve",),
    optional=("distributions", "serve_configs", "environment"),
)
def nvfp4_moe_backend_sm12x(serve_models, serve_configs, distributions, targets, environment):
    """On sm_12x, an NVFP4 MoE model does not get vLLM's FLASHINFER_CUTLASS MoE backend (zeros, flashinfer #2577)."""
    sm12 = [t for t in targets or [] if str(t).startswith("sm_12")]
    if not sm12:
        return Skip("no sm_12x GPU targeted")
    version = _vllm(serve_configs, distributions)
    fi = _version_of(distributions, "flashinfer-python", "flashinfer")
    sel = NVFP4_SELECTION
    out: List[Any] = []
    for m, cfg in _models(serve_models, serve_configs):
        quant = m.get("quant") or {}
        if not is_nvfp4(quant) or not m.get("num_experts"):
            continue
        ev = {
            "config": m.get("config"),
            "model": m.get("model"),
            "num_experts": m.get("num_experts"),
            "vllm": version,
            "flashinfer": fi,
            "targets": sm12,
        }
        if not version or parse_version(version) is None:
            out.append(Skip("vLLM's version is unknown"))
            continue
        if not in_range(version, sel["first"], last=sel["last_read"]):
            out.append(Skip(f"vLLM {version}: NVFP4 MoE backend choice read for {sel['first']}..{sel['last_read']}"))
            continue
        env = {
            k: EnvVar(k, str(v), "environment", 1, 1)
            for k, v in (environment.items() if isinstance(environment, dict) else ())
            if k.startswith("VLLM_")
        }
        env.update(_env(cfg) if cfg else {})
        flag = _flag(cfg, "--moe-backend") if cfg else None
        use_fi = env.get("VLLM_USE_FLASHINFER_MOE_FP4")
        fi_backend = env.get("VLLM_FLASHINFER_MOE_BACKEND")
        env_read = compare(version, sel["env_until"]) <= 0
        if flag is not None and compare(version, sel["flag_from"]) >= 0 and flag.text != "auto":
            forced = flag.text != "flashinfer_cutlass"
            how = f"--moe-backend {flag.text}"
        elif env_read and use_fi is not None and use_fi.value.strip() in ("0", "false", "False"):
            forced, how = True, f"VLLM_USE_FLASHINFER_MOE_FP4={use_fi.value}"
        elif env_read and use_fi is not None and fi_backend is not None and fi_backend.value != "throughput":
            forced, how = True, f"VLLM_FLASHINFER_MOE_BACKEND={fi_backend.value}"
        else:
            forced, how = False, "vLLM's default order"
        ev["chosen_by"] = how
        if forced:
            out.append(Pass(f"{m.get('model')}: the NVFP4 MoE backend is set by {how}", ev))
            continue
        if fi is None:
            out.append(Pass(f"{m.get('model')}: FlashInfer is not installed, so vLLM {version} uses VLLM_CUTLASS", ev))
            continue
        if compare(fi, FLASHINFER_BAD_UNTIL) > 0:
            out.append(Pass(f"{m.get('model')}: FlashInfer {fi} is past the SM120 grouped-GEMM bug range", ev))
            continue
        fix = (
            "--moe-backend cutlass"
            if compare(version, sel["flag_from"]) >= 0
            else "VLLM_USE_FLASHINFER_MOE_FP4=0 in the server's environment"
        )
        out.append(
            Problem(
                f"{m.get('model')}: NVFP4 MoE ({m.get('num_experts')} experts) on {', '.join(sm12)}: vLLM {version} "
                f"picks the FLASHINFER_CUTLASS MoE backend ({how}), whose grouped GEMM returns zeros or garbage on "
                f"SM120 with FlashInfer {fi} (flashinfer #2577)",
                dict(ev, fix=f"force vLLM's own kernel: {fix} (log: Using 'VLLM_CUTLASS' NvFp4 MoE backend)"),
                _loc(flag) if flag else _model_at(cfg),
            )
        )
    return out or Skip("no serve config names a local NVFP4 MoE model")
