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


# (option, attribute, smallest, largest, whole number): every number plan takes, with the range vLLM accepts or
# that any machine has. NaN and infinity fail every range.
RANGES = (
    ("--tp", "tp", 1, 4096, True),
    ("--pp", "pp", 1, 4096, True),
    ("--gpu-memory-utilization", "gpu_memory_utilization", 0.0, 1.0, False),
    ("--max-model-len", "max_model_len", 1, 1 << 40, True),
    ("--max-num-seqs", "max_num_seqs", 1, 1 << 20, True),
    ("--max-num-batched-tokens", "max_num_batched_tokens", 1, 1 << 40, True),
    ("--gpu-count", "gpu_count", 1, 4096, True),
    ("--weights-gib", "weights_gib", 0.0, 1e5, False),
)


def check_arguments(args: Any, mem: Optional[float], count: Optional[int]) -> None:
    """Raise UsageError for a plan argument out of range (exclusive lower bound for fractions and sizes)."""
    import math

    values = {a: getattr(args, a, None) for _o, a, *_ in RANGES}
    values["gpu_count"] = count
    checks = [(o, values[a], lo, hi, whole) for o, a, lo, hi, whole in RANGES]
    checks.append(("--gpu-memory", mem, 0.0, 1e5, False))
    for name, val, lo, hi, whole in checks:
        if val is None:
            continue
        ok = isinstance(val, (int, float)) and math.isfinite(val) and (lo <= val if whole else lo < val) and val <= hi
        if not ok:
            low = f"[{lo}" if whole else f"({lo}"
            raise UsageError(
                f"plan: {name} {val} is out of range {low}, {hi:,}]"
                if whole
                else f"plan: {name} {val} is out of range {low}, {hi:g}]"
            )


def register(subparsers: Any, epilog: str = "") -> None:
    p = subparsers.add_parser(
        "plan",
        help="predict weights, KV-cache size and tokens vLLM will get; say if it fits",
        description="Reads config.json, the quantization config and safetensors headers (no weights) "
        "and models vLLM's startup memory budget (V0 and V1 engines; per-release defaults of "
        "max_num_batched_tokens and max_num_seqs from bwdoctor/data/vllm_plan.json).",
    )
    p.add_argument("--model", required=True, help="local model directory (config.json, *.safetensors)")
    p.add_argument(
        "--tp", "-tp", "--tensor-parallel-size", dest="tp", type=int, default=1, help="must divide the attention heads"
    )
    p.add_argument("--pp", "-pp", "--pipeline-parallel-size", dest="pp", type=int, default=1, help="pipeline stages")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="in (0, 1]")
    p.add_argument("--max-model-len", type=int, default=None, help="(default: the model's max_position_embeddings)")
    p.add_argument("--max-num-seqs", type=int, default=None, help="(default: the release's default for the GPU size)")
    p.add_argument(
        "--max-num-batched-tokens",
        type=int,
        default=None,
        help="(default: the release's default for the GPU size and length)",
    )
    p.add_argument("--kv-cache-dtype", default="auto", help="auto, bfloat16, float16, fp8, fp8_e4m3, fp8_e5m2, ...")
    p.add_argument("--quantization", default=None, help="as passed to vLLM (informational; the checkpoint decides)")
    p.add_argument("--gpu-memory", type=float, default=None, help="GiB per GPU (default: what NVML sees)")
    p.add_argument("--gpu-count", type=int, default=None, help="GPUs available (default: what NVML sees)")
    p.add_argument(
        "--weights-gib", type=float, default=None, help="weights per GPU, e.g. from a log's 'Model loading took X GiB'"
    )
    p.add_argument("--vllm-version", default="0.15.1", help="the release to model")
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
    from ..capacity.vllmdata import PlanInputError, check_tensor_parallel, check_version, kv_dtype_bytes

    mem, count = args.gpu_memory, args.gpu_count
    if mem is None or count is None:
        seen, why = gpu_memory(args)
        if seen is None and mem is None:
            raise UsageError(f"plan: cannot read GPU memory ({why}); pass --gpu-memory GIB (and --gpu-count N)")
        if seen:
            mem = mem if mem is not None else min(seen)
            count = count if count is not None else len(seen)
    check_arguments(args, mem, count)
    count = count or max(1, args.tp * args.pp)
    try:
        model = load_model(args.model)
        check_tensor_parallel(args.tp, model.num_heads, model.num_kv_heads, model.is_mla)
        kv_dtype_bytes(args.kv_cache_dtype)
        check_version(args.vllm_version)
    except (ModelError, PlanInputError) as e:
        raise UsageError(f"plan: {e}") from None
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
