"""Redaction stays linear on hostile text: time for 2 MB over time for 1 MB (about 2 is linear, 4 quadratic).

Run: python benchmarks/redact_scaling.py
"""

from __future__ import annotations

import time

from bwdoctor.redact import redact

SHAPES = {
    "a=a=": "a=",
    "a: a: ": "a: ",
    "--a=--a=": "--a=",
    "--api-key x ": "--api-key x ",
    "HF_TOKEN=": "HF_TOKEN=",
    "url-ish https://a:a:": "https://a:a:",
    "plain log line": "INFO 11-29 [engine.py:1] Avg throughput: 32.4 tokens/s, max_num_batched_tokens=8192\n",
}


def seconds(text: str) -> float:
    start = time.perf_counter()
    redact(text)
    return time.perf_counter() - start


def main() -> None:
    print(f"{'input':<24} {'1 MB s':>8} {'2 MB s':>8} {'ratio':>6}")
    for label, unit in SHAPES.items():
        one = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
        t1, t2 = seconds(one), seconds(one + one)
        print(f"{label:<24} {t1:8.2f} {t2:8.2f} {t2 / t1:6.2f}")


if __name__ == "__main__":
    main()
