"""`bwdoctor plan`: will a model fit on these GPUs, and how many KV-cache tokens will vLLM get."""
from __future__ import annotations

import json
import sys
import threading

from bwdoctor.capacity.budget import PlanInput
from bwdoctor.capacity.model import ModelError, load_model
from bwdoctor.capacity.planner import plan

NVML_TIMEOUT_S = 3.0


def nvml_gpus(timeout: float = NVML_TIMEOUT_S) -> tuple[list[float] | None, str]:
    """Give (per-GPU total memory in GiB, why not) from NVML, in a thread so a hung driver cannot hang us."""
    box: dict = {}

    def work():
        try:
            import pynvml  # nvidia-ml-py
            pynvml.nvmlInit()
            try:
                n = pynvml.nvmlDeviceGetCount()
                box["mem"] = [pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).total / 2**30
                              for i in range(n)]
            finally:
                pynvml.nvmlShutdown()
        except Exception as e:  # no driver, no library, no GPU: all mean "ask the user"
            box["err"] = f"{type(e).__name__}: {e}"

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return None, f"NVML did not answer within {timeout:.0f} s"
    if "err" in box:
        return None, box["err"]
    if not box.get("mem"):
        return None, "NVML sees no GPU"
    return box["mem"], ""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan", help="predict weights, KV-cache size and tokens vLLM will get; say if it fits",
        description="Reads config.json, the quantization config and safetensors headers (no weights) "
                    "and models vLLM's startup memory budget.")
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
    p.add_argument("--weights-gib", type=float, default=None,
                   help="weights per GPU, e.g. from a log's 'Model loading took X GiB'")
    p.add_argument("--vllm-version", default="0.15.1")
    p.add_argument("--log", metavar="FILE", help="a vLLM start-up log of this run: show logged figures beside the prediction")
    p.add_argument("--format", choices=("rich", "json"), default="rich")
    # -o/--output comes from the options the CLI adds to every subcommand.
    p.set_defaults(func=run)


def _text(r: dict) -> str:
    ok = "fits" if r["fits"] else "DOES NOT FIT"
    lines = [
        f"{r['model']}: {ok}",
        f"  weights per GPU   {r['weights_gib_per_gpu']:.2f} GiB ({r['weights_source']})",
        f"  requested         {r['requested_gib']:.2f} GiB (utilization × total)",
        f"  overhead          {r['overhead_gib']['total_gib']:.2f} GiB (activation/sampler peak, runtime, NCCL, graphs)",
        f"  KV cache          {r['kv_cache_gib']:.2f} GiB, {r['kv_bytes_per_token']:,} B/token ({r['kv_cache_dtype_reason']})",
        f"  KV tokens         {r['kv_tokens']:,}",
        f"  concurrency       {r['max_concurrency']:.2f}× at {r['max_model_len']:,} tokens",
    ]
    for f in r["findings"]:
        mark = {"error": "✗", "warning": "!", "info": "→"}.get(f["severity"], "-")
        lines.append(f"  {mark} [{f['slug']}] {f['message']}")
    return "\n".join(lines)


def run(args) -> int:
    mem, count = args.gpu_memory, args.gpu_count
    if mem is None or count is None:
        seen, why = nvml_gpus()
        if seen is None and mem is None:
            print(f"bwdoctor plan: cannot read GPU memory ({why}); pass --gpu-memory GIB "
                  "(and --gpu-count N)", file=sys.stderr)
            return 2
        if seen:
            mem = mem if mem is not None else min(seen)
            count = count if count is not None else len(seen)
    count = count or max(1, args.tp * args.pp)
    try:
        model = load_model(args.model)
    except ModelError as e:
        print(f"bwdoctor plan: {e}", file=sys.stderr)
        return 2
    for name, val, lo, hi in (("--gpu-memory-utilization", args.gpu_memory_utilization, 0.0, 1.0),
                              ("--gpu-memory", mem, 0.0, 1e5)):
        if not (lo < val <= hi):
            print(f"bwdoctor plan: {name} {val} is out of range ({lo}, {hi}]", file=sys.stderr)
            return 2
    p = PlanInput(gpu_memory_gib=mem, gpu_count=count, tp=args.tp, pp=args.pp,
                  utilization=args.gpu_memory_utilization, max_model_len=args.max_model_len,
                  max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens,
                  kv_cache_dtype=args.kv_cache_dtype, weights_gib=args.weights_gib,
                  vllm_version=args.vllm_version)
    result = plan(model, p)
    if getattr(args, "log", None):
        from ..capacity.logparse import compare, parse_startup_log

        try:
            with open(args.log, "rb") as fh:
                figures = parse_startup_log(fh.read(64 << 20).decode("utf-8", "replace"))
        except OSError as e:
            print(f"bwdoctor plan: --log {args.log}: {e.strerror or e}", file=sys.stderr)
            return 2
        result["log"] = compare(figures, result)
    out = json.dumps(result, indent=2) if args.format == "json" else _text(result)
    if args.format != "json" and result.get("log"):
        out += "\nbeside the log:\n" + "\n".join(
            f"  {k:<16} logged {r['logged']}  predicted {r['predicted']}"
            + (f"  ({r['rel_error'] * 100:+.1f}%)" if r.get("rel_error") is not None else "")
            for k, r in result["log"]["figures"].items()) + "".join(f"\n  note: {n}" for n in result["log"]["notes"])
    output = getattr(args, "output", None)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(out + "\n")
        except OSError as e:
            print(f"bwdoctor plan: cannot write {output}: {e.strerror or e}", file=sys.stderr)
            return 2
    else:
        print(out)
    return 0 if result["fits"] else 1
