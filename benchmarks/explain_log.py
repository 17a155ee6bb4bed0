"""Time `match_log` on a 100,000-line vLLM server log with a real startup failure near its end.

The filler lines follow the shape of vLLM 0.15 serve logs (engine args, model loading, periodic metrics,
HTTP access lines); the failure is the sampler warm-up OOM from a real field report (RTX PRO 6000, TP=4).
Usage: python benchmarks/explain_log.py [--lines 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bwdoctor.explain import match_log  # noqa: E402
from bwdoctor.knowledge import load_all  # noqa: E402

BUDGET_S = 0.5

HEADER = """(APIServer pid=4121) INFO 02-20 10:01:02 [api_server.py:1885] vLLM API server version 0.15.1
(APIServer pid=4121) INFO 02-20 10:01:02 [utils.py:287] non-default args: {'model': '/models/GLM-4.7-NVFP4', 'trust_remote_code': True, 'dtype': 'bfloat16', 'quantization': 'modelopt_fp4', 'tensor_parallel_size': 4, 'gpu_memory_utilization': 0.9}
(APIServer pid=4121) INFO 02-20 10:01:09 [model.py:547] Resolved architecture: Glm4MoeForCausalLM
(EngineCore_DP0 pid=4199) INFO 02-20 10:01:15 [core.py:93] Initializing a V1 LLM engine (v0.15.1) with config: model='/models/GLM-4.7-NVFP4', dtype=torch.bfloat16, max_seq_len=131072, tensor_parallel_size=4, quantization=modelopt_fp4, enforce_eager=False, kv_cache_dtype=auto
(Worker_TP0 pid=4301) INFO 02-20 10:01:31 [parallel_state.py:1208] rank 0 in world size 4 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0
(Worker_TP0 pid=4301) INFO 02-20 10:01:31 [pynccl.py:111] vLLM is using nccl==2.27.5
(Worker_TP0 pid=4301) INFO 02-20 10:01:40 [cuda.py:366] Using AttentionBackendEnum.TRITON_ATTN backend.
(Worker_TP0 pid=4301) INFO 02-20 10:01:41 [modelopt.py:921] Using 'VLLM_CUTLASS' NvFp4 MoE backend out of potential backends: ['FLASHINFER_TRTLLM', 'FLASHINFER_CUTEDSL', 'FLASHINFER_CUTLASS', 'VLLM_CUTLASS', 'MARLIN']
"""

FILLER = [
    "(Worker_TP{r} pid={p}) INFO 02-20 10:{m:02d}:{s:02d} [default_loader.py:291] Loading weights took {f:.2f} seconds",
    "(APIServer pid=4121) INFO 02-20 10:{m:02d}:{s:02d} [loggers.py:236] Engine 000: Avg prompt throughput: {f:.1f} tokens/s, Avg generation throughput: {g:.1f} tokens/s, Running: {r} reqs, Waiting: 0 reqs, GPU KV cache usage: {u:.1f}%, Prefix cache hit rate: {h:.1f}%",
    '(APIServer pid=4121) INFO:     10.0.0.{r}:{p} - "POST /v1/chat/completions HTTP/1.1" 200 OK',
    "(APIServer pid=4121) INFO 02-20 10:{m:02d}:{s:02d} [logger.py:49] Received request chatcmpl-{x}: params: SamplingParams(n=1, temperature=0.7, top_p=0.8, max_tokens={p}), prompt_token_ids: None, lora_request: None.",
    "(APIServer pid=4121) INFO 02-20 10:{m:02d}:{s:02d} [async_llm.py:329] Added request chatcmpl-{x}.",
    "(Worker_TP{r} pid={p}) INFO 02-20 10:{m:02d}:{s:02d} [backends.py:609] Compiling a graph for compile range (1, 8192) takes {f:.2f} s",
    "Loading safetensors checkpoint shards:  {h:.0f}% Completed | {r}/41 [00:{s:02d}<00:{m:02d},  {g:.2f}it/s]",
    "(Worker_TP{r} pid={p}) WARNING 02-20 10:{m:02d}:{s:02d} [kv_cache.py:151] Checkpoint does not provide a q scaling factor. Setting it to k_scale.",
    "(APIServer pid=4121) INFO 02-20 10:{m:02d}:{s:02d} [chat_utils.py:560] Detected the chat template content format to be 'openai'. You can set `--chat-template-content-format` to override this.",
]

FAILURE = """(Worker_TP3 pid=4304) INFO 02-20 10:07:58 [gpu_worker.py:456] Available KV cache memory: 31.99 GiB
(EngineCore_DP0 pid=4199) INFO 02-20 10:07:58 [kv_cache_utils.py:1314] GPU KV cache size: 729,248 tokens
(Worker_TP3 pid=4304) ERROR 02-20 10:08:40 [multiproc_executor.py:743] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.74 GiB. GPU 3 has a total capacity of 94.97 GiB of which 1.69 GiB is free. Including non-PyTorch memory, this process has 93.26 GiB memory in use.
(Worker_TP3 pid=4304) ERROR 02-20 10:08:40 [multiproc_executor.py:743] The above exception was the direct cause of the following exception:
(Worker_TP3 pid=4304) ERROR 02-20 10:08:40 [multiproc_executor.py:743] Traceback (most recent call last):
(Worker_TP3 pid=4304) ERROR 02-20 10:08:40 [multiproc_executor.py:743]   File "/home/alex/.local/share/uv/tools/vllm/lib/python3.12/site-packages/vllm/v1/worker/gpu_model_runner.py", line 4105, in _dummy_sampler_run
(Worker_TP3 pid=4304) ERROR 02-20 10:08:40 [multiproc_executor.py:743]     raise RuntimeError(
(Worker_TP3 pid=4304) ERROR 02-20 10:08:40 [multiproc_executor.py:743] RuntimeError: CUDA out of memory occurred when warming up sampler with 1024 dummy requests. Please try lowering `max_num_seqs` or `gpu_memory_utilization` when initializing the engine.
"""


def build_log(path: Path, n_lines: int) -> int:
    """Write the log; returns the 1-based line of the RuntimeError line."""
    rnd = random.Random(1234)
    head = HEADER.splitlines()
    fail = FAILURE.splitlines()
    body_n = n_lines - len(head) - len(fail) - 200
    with open(path, "w", encoding="utf-8") as fh:
        for ln in head:
            fh.write(ln + "\n")
        for _ in range(body_n):
            fh.write(
                rnd.choice(FILLER).format(
                    r=rnd.randint(0, 3),
                    p=rnd.randint(4000, 4400),
                    m=rnd.randint(0, 59),
                    s=rnd.randint(0, 59),
                    f=rnd.random() * 900,
                    g=rnd.random() * 90,
                    u=rnd.random() * 100,
                    h=rnd.random() * 100,
                    x="%032x" % rnd.getrandbits(128),
                )
                + "\n"
            )
        for ln in fail:
            fh.write(ln + "\n")
        for _ in range(200):
            fh.write(
                "(APIServer pid=4121) INFO 02-20 10:08:41 [core_client.py:596] Engine core proc EngineCore_DP0 died unexpectedly, shutting down client.\n"
            )
    return len(head) + body_n + len(fail)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    arts = load_all()
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "vllm-serve.log"
        err_line = build_log(path, args.lines)
        size_mb = os.path.getsize(path) / 1e6
        match_log(path, arts)  # warm the compiled-rule cache
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = match_log(path, arts)
            times.append(time.perf_counter() - t0)
        with open(path, encoding="utf-8") as fh:
            t0 = time.perf_counter()
            res_lines = match_log(fh, arts)
            t_lines = time.perf_counter() - t0
    top = res[0] if res else None
    med = statistics.median(times)
    print(f"log: {args.lines} lines, {size_mb:.1f} MB, {len(arts)} articles")
    print(f"match_log(path): median {med:.3f} s over {args.repeat} runs (min {min(times):.3f}, max {max(times):.3f})")
    print(f"match_log(file object lines): {t_lines:.3f} s")
    print(f"budget {BUDGET_S:.2f} s -> ratio {med / BUDGET_S:.2f} of budget")
    print(
        f"top match: {top['slug'] if top else None} line {top['line'] if top else None} (expected sampler-warmup-oom line {err_line})"
    )
    print(f"all matches: {[(m['slug'], m['score']) for m in res]}")
    ok = (
        bool(top)
        and top["slug"] == "sampler-warmup-oom"
        and top["line"] == err_line
        and res_lines[0]["slug"] == top["slug"]
    )
    print("result correct:", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
