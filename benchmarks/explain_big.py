"""Time and peak memory of `bwdoctor explain -` on 50 MB of pasted text, in five hostile shapes.

Shapes: a vLLM server log (worker prefixes, request ids, long junk lines) with one real error near the end;
one 50 MB line with no line break; 50 MB of lines that are all different and all contain an error word
(the worst case for the template folding and the tier-2 line collection); error lines made of the words that
open many signatures (the worst case for the anchor-guided signature search); two-letter lines that each
continue the one before (the worst case for joining wrapped lines, and for the per-line memory). Each is piped to
`bwdoctor explain - --no-machine --format json` under /usr/bin/time -v (when present) and the wall time,
peak RSS and verdict are printed, with the ratio of time to input size.

Usage: python benchmarks/explain_big.py [--mb 50] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ERROR = (
    "(VllmWorker rank=2 pid=1002) ERROR 02-20 10:00:01 [core.py:12] RuntimeError: CUDA error: no kernel image is "
    "available for execution on the device\n"
)


def server_log(path: Path, size: int) -> None:
    rng = random.Random(1)
    with open(path, "w", encoding="utf-8") as out:
        n = i = 0
        while n < size:
            i += 1
            r = rng.random()
            if r < 0.6:
                ln = (
                    f"(APIServer pid=1) INFO 02-20 10:{i % 60:02d}:{i % 60:02d} [loggers.py:236] "
                    f"Avg prompt throughput: {i % 997}.0 tokens/s, request id cmpl-{rng.getrandbits(64):016x}\n"
                )
            elif r < 0.8:
                tag = f"(VllmWorker rank={i % 4} pid={1000 + i % 4})"
                ln = f"{tag} WARNING 02-20 10:00:00 [utils.py:12] step {i} failed\n"
            elif r < 0.9:
                ln = "x" * rng.randint(1, 5000) + "\n"
            else:
                ln = f'INFO:     10.0.0.{i % 255}:{i % 65535} - "POST /v1/chat/completions HTTP/1.1" 200 OK\n'
            out.write(ln)
            n += len(ln)
        out.write(ERROR)


def one_line(path: Path, size: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(ERROR.strip() + " ")
        block = "undefined symbol: (((((((((( sm_120 " * 1000
        n = 0
        while n < size:
            out.write(block)
            n += len(block)


def distinct_errors(path: Path, size: int) -> None:
    rng = random.Random(2)
    with open(path, "w", encoding="utf-8") as out:
        n = 0
        while n < size:
            word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12))
            ln = f"> > vllm-1  | [rank0]: RuntimeError: error in {word} failed: cannot open {word}.so sm_{word}\n"
            out.write(ln)
            n += len(ln)
        out.write(ERROR)


def dense_anchors(path: Path, size: int) -> None:
    """Every line an error holding the words that open many signatures and evidence patterns (fp8, requires,
    driver, no, or higher, g++, sm_120), in random order: the worst case for the anchor-guided signature search."""
    rng = random.Random(3)
    words = ["no", "fp8", "or higher", "requires", "g++", "driver", "kernel", "cutlass", "resume", "sm_120"]
    with open(path, "w", encoding="utf-8") as out:
        n = 0
        while n < size:
            ln = f"ERROR {n}: " + " ".join(rng.choice(words) for _ in range(30)) + "\n"
            out.write(ln)
            n += len(ln)
        out.write(ERROR)


def tiny_lines(path: Path, size: int) -> None:
    """Two-letter lines, each a continuation of the one before: the worst case for joining wrapped lines."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(ERROR)
        block = "no\n" * 10000
        n = 0
        while n < size:
            out.write(block)
            n += len(block)


def run(path: Path) -> dict:
    exe = [sys.executable, "-m", "bwdoctor", "explain", "-", "--no-machine", "--format", "json"]
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    cmd = ([timer, "-v"] if timer else []) + exe
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        # run beside the input, not in the source tree: there `python -m bwdoctor` would import the tree's package
        # instead of an installed one (whose checks/ is installed as bwdoctor.checks)
        res = subprocess.run(cmd, stdin=fh, capture_output=True, timeout=600, cwd=path.parent)
    wall = time.perf_counter() - t0
    rss = re.search(rb"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    try:
        doc = json.loads(res.stdout)
        verdict = f"{doc.get('verdict')} {[m['slug'] for m in doc['matches']][:3]}"
    except ValueError:
        verdict = f"no JSON (rc {res.returncode}): {res.stderr[-300:]!r}"
    return {"rc": res.returncode, "wall": wall, "rss_mb": int(rss.group(1)) / 1024 if rss else None, "verdict": verdict}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--keep", help="write the inputs here and keep them")
    args = ap.parse_args()
    size = args.mb << 20
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bwd-explain-big-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        for name, make in (
            ("server-log", server_log),
            ("one-line", one_line),
            ("distinct-errors", distinct_errors),
            ("dense-anchors", dense_anchors),
            ("tiny-lines", tiny_lines),
        ):
            p = tmp / f"{name}.log"
            make(p, size)
            mb = p.stat().st_size / (1 << 20)
            r = run(p)
            rss = f"{r['rss_mb']:.0f} MB" if r["rss_mb"] else "n/a"
            print(
                f"{name:16} {mb:6.1f} MB  rc {r['rc']}  wall {r['wall']:6.2f} s ({r['wall'] / mb * 1000:.0f} ms/MB)  "
                f"peak RSS {rss}  -> {r['verdict']}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
