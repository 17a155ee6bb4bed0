#!/usr/bin/env python3
"""Time reading + linting a 1,000-line serve script (target: <= 50 ms) and the seed fixtures."""

import time
from pathlib import Path

from bwdoctor.serve.lint import Machine, lint
from bwdoctor.serve.readers import read_config
from bwdoctor.serve.releases import release_for, table

SEED = Path(__file__).resolve().parents[1] / "tests/fixtures/serve/seed002/before/serve_glm47_nvfp4_vllm.sh"


def big_script(lines: int = 1000) -> bytes:
    """A script of `lines` lines: variables, functions, echo noise, and a vLLM launch every 50 lines."""
    out = ["#!/usr/bin/env bash", "set -euo pipefail"]
    i = 0
    while len(out) < lines:
        i += 1
        out += [
            f"VAR_{i}=${{VAR_{i}:-value_{i}}}  # default {i}",
            'export VLLM_LOGGING_LEVEL="INFO"',
            f'echo "step {i}: $VAR_{i}"',
            f'if [ -n "$VAR_{i}" ]; then',
            f"  run_{i}() {{ true; }}",
            "fi",
        ]
        if i % 8 == 0:
            out += [
                'exec "$PY" -m vllm.entrypoints.openai.api_server \\',
                f"  --model /m/{i} \\",
                "  --attention-backend triton \\",
                "  --gpu-memory-utilization 0.9 \\",
                "  --max-num-seqs 256 --max-model-lenn 4096 \\",
                "  --tensor-parallel-size 2",
            ]
    return ("\n".join(out[:lines]) + "\n").encode()


def best_of(fn, n=20):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), sorted(times)[len(times) // 2]


def main():
    data = big_script()
    t = time.perf_counter()
    table()
    load_ms = (time.perf_counter() - t) * 1000
    release, machine = release_for("0.15.1"), Machine(("sm_120",), 4, 97887 * 2**20)

    def run():
        return [x for c in read_config("big.sh", data) for x in lint(c, release, machine)]

    t = time.perf_counter()
    found = run()
    cold_ms = (time.perf_counter() - t) * 1000
    best, median = best_of(run)
    seed = SEED.read_bytes()
    sbest, _ = best_of(lambda: [x for c in read_config(str(SEED), seed) for x in lint(c, release, machine)])
    print(f"release table load (once per process): {load_ms:.1f} ms")
    print(
        f"1,000-line script ({len(data)} bytes, {len(read_config('big.sh', data))} launches, {len(found)} findings): "
        f"best {best * 1000:.1f} ms, median {median * 1000:.1f} ms (target <= 50 ms: ratio {median * 1000 / 50:.2f})"
    )
    print(f"first (cold) lint of it: {cold_ms:.1f} ms")
    print(f"seed 002 serve script: best {sbest * 1000:.2f} ms")


if __name__ == "__main__":
    main()
