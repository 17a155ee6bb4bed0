"""`bwdoctor plan`: will a model fit on these GPUs, and how many KV-cache tokens will vLLM get."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from ..errors import UsageError
from ..model import Outcome, Unavailable
from ..render import add_format_option
from .common import context_from_args


def gpu_memory(args: Any) -> Tuple[Optional[List[float]], str]:
    """(per-GPU total memory in GiB, why not) from the `gpus` fact (NVML, guarded and budgeted by its probe)."""
    from .. import engine

    facts, _ = engine.gather_facts(["gpus"], engine.Source(context=context_from_args(args)))
    gpus = facts["gpus"]
    if isinstance(gpus, Unavailable):
        return None, gpus.reason
    mem = [g["mem_total"] / 2**30 for g in gpus if isinstance(g, dict) and isinstance(g.get("mem_total"), (int, float))]
    if not mem:
        return None, "the GPUs were found on the PCI bus only; their memory size is unknown without NVML"
    return mem, ""


def register(subparsers: Any, epilog: str = "") -> None:
    p = subparsers.add_parser(
        "plan",
        help="predict weights, KV-cache size and tokens vLLM will get; say if it fits",
        description="Reads config.json, the quantization config and safetensors headers (no weights) "
        "and models vLLM's startup memory budget. Exit 0 it fits; 1 it does not; 2 bad input "
        "(model directory, ranges) or no GPU memory known (pass --gpu-memory).",
    )
    p.add_argument("--model", required=True, help="local model directory (config.json, *.safetensors)")
    p.add_argument("--tp", "--tensor-parallel-size", dest="tp", type=int, default=1)
    p.add_argument("--pp", "--pipeline-parallel-size", dest="pp", type=int, default=1)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--max-num-seqs", type=int, default=None)
    p.add_argument("--max-num-batched-tokens", type=int, default=None)
    p.add_argument("--kv-cache-dtype", default="auto")
    p.add_argument("--quantization", default=None, help="as passed to vLLM (informational; the checkpoint decides)")
    p.add_argument("--gpu-memory", type=float, default=None, help="GiB per GPU (default: what NVML sees)")
    p.add_argument("--gpu-count", type=int, default=None, help="GPUs available (default: what NVML sees)")
    p.add_argument(
        "--weights-gib", type=float, default=None, help="weights per GPU, e.g. from a log's 'Model loading took X GiB'"
    )
    p.add_argument("--vllm-version", default="0.15.1")
    p.add_argument(
        "--log", metavar="FILE", help="a vLLM start-up log of this run: show logged figures beside the prediction"
    )
    add_format_option(p, "plan")
    p.set_defaults(func=run)


def run(args: Any) -> Outcome:
    """The bwdoctor.plan/1 document: exit 0 it fits, 1 it does not."""
    from ..capacity.budget import PlanInput
    from ..capacity.model import ModelError, load_model
    from ..capacity.planner import plan

    mem, count = args.gpu_memory, args.gpu_count
    if mem is None or count is None:
        seen, why = gpu_memory(args)
        if seen is None and mem is None:
            raise UsageError(f"plan: cannot read GPU memory ({why}); pass --gpu-memory GIB (and --gpu-count N)")
        if seen:
            mem = mem if mem is not None else min(seen)
            count = count if count is not None else len(seen)
    count = count or max(1, args.tp * args.pp)
    try:
        model = load_model(args.model)
    except ModelError as e:
        raise UsageError(f"plan: {e}") from None
    for name, val, lo, hi in (
        ("--gpu-memory-utilization", args.gpu_memory_utilization, 0.0, 1.0),
        ("--gpu-memory", mem, 0.0, 1e5),
    ):
        if not (lo < val <= hi):
            raise UsageError(f"plan: {name} {val} is out of range ({lo}, {hi}]")
    p = PlanInput(
        gpu_memory_gib=mem,
        gpu_count=count,
        tp=args.tp,
        pp=args.pp,
        utilization=args.gpu_memory_utilization,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        kv_cache_dtype=args.kv_cache_dtype,
        weights_gib=args.weights_gib,
        vllm_version=args.vllm_version,
    )
    result = plan(model, p)
    if getattr(args, "log", None):
        from ..capacity.logparse import compare, parse_startup_log
        from .explain import read_input

        text, _ = read_input(args.log, f"plan: --log {args.log}")  # read once, bounded; a FIFO cannot block
        figures = parse_startup_log(text)
        result["log"] = compare(figures, result)
    return Outcome(result, 0 if result["fits"] else 1)
