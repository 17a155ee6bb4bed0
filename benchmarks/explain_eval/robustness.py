"""How `bwdoctor explain` holds up when the same real error is pasted in another shape.

Each development row that the rules answer rightly as pasted (the corpus model switched off, so that the shapes
test the normalization and the signatures, not a fit) is pasted again in each shape: quoted as a reply, under a
log prefix (docker compose, a vLLM worker tag, kubectl, pm2, srun, journald, Ray, torch.distributed, a timestamp),
with terminal colours, CRLF, HTML escapes, no-break spaces, zero-width characters, typographic quotes, docker's
JSON log records, a Markdown list of inline code, indented, or word-wrapped at 80 columns. A row is lost when
its answer is no longer right. The script prints, per shape, the rows lost and the first few of them.

A lost row is a shape the normalization does not undo. Some are not undoable: a word wrap that breaks a line
exactly at the width, with nothing else in the paste to say whether the break fell in a word or at a space.

Usage: python benchmarks/explain_eval/robustness.py [--every N] [--shape NAME ...]
  --every N   read every Nth row only (default 1: all rows; 5 is a quick look)
  --shape     only these shapes (default all; names as printed)
Exit status 0; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import textwrap
from pathlib import Path
from typing import Callable, Dict, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bwdoctor import explain_model  # noqa: E402
from bwdoctor.explain import analyse_text  # noqa: E402
from bwdoctor.knowledge import load_all  # noqa: E402


def _each(prefix: Callable[[int], str]) -> Callable[[str], str]:
    return lambda t: "\n".join(prefix(i) + ln for i, ln in enumerate(t.split("\n")))


def _wrap(t: str) -> str:
    return "\n".join(x for ln in t.split("\n") for x in (textwrap.wrap(ln, 80, break_on_hyphens=False) or [""]))


SHAPES: Dict[str, Callable[[str], str]] = {
    "quote": _each(lambda i: "> "),
    "compose": _each(lambda i: "vllm-openai-1  | "),
    "worker-tag": _each(lambda i: "(EngineCore_DP0 pid=4242) "),
    "vllm-record": _each(lambda i: f"ERROR 11-30 05:00:{i % 60:02d} "),
    "kubectl": _each(lambda i: "[pod/vllm-7d9c5-x2k4p/vllm] "),
    "pm2": _each(lambda i: "0|vllm     | "),
    "srun": _each(lambda i: "3: "),
    "journald": _each(lambda i: "Nov 30 05:00:00 gpu-host-01 python3[4242]: "),
    "ray": _each(lambda i: "(RayWorkerWrapper pid=4242, ip=10.0.0.2) "),
    "rank": _each(lambda i: "[rank3]: "),
    "timestamp": _each(lambda i: f"2026-11-30T05:00:{i % 60:02d}.123456Z "),
    "indent": _each(lambda i: "\t    "),
    "ansi": lambda t: "\n".join("\x1b[31m" + ln + "\x1b[0m" for ln in t.split("\n")),
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "html-escaped": lambda t: html.escape(t, quote=True),
    "nbsp": lambda t: t.replace(" ", "\u00a0"),
    "zero-width": lambda t: t.replace("_", "_\u200b"),
    "smart-quotes": lambda t: t.replace("'", "\u2019").replace('"', "\u201c"),
    "docker-json": lambda t: "\n".join(json.dumps({"log": ln + "\n", "stream": "stderr"}) for ln in t.split("\n")),
    "md-inline-code": lambda t: "\n".join(f"- `{ln}`" if ln.strip() else ln for ln in t.split("\n")),
    "word-wrap-80": _wrap,
}


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every", type=int, default=1, help="read every Nth row (default 1)")
    ap.add_argument("--shape", action="append", choices=sorted(SHAPES), help="only this shape (repeatable)")
    args = ap.parse_args(argv)
    if args.every < 1:
        ap.error("--every must be at least 1")
    explain_model._MODEL["m"] = None  # the rules alone
    articles = load_all()
    rows = [json.loads(ln) for f in sorted(HERE.glob("*.jsonl")) for ln in f.open(encoding="utf-8") if ln.strip()]
    rows = rows[:: args.every]

    def top(text: str):
        m = analyse_text(text, articles)["matches"]
        return m[0]["slug"] if m else None

    def right(row: dict, slug) -> bool:
        if row["label"] is None:
            return slug is None or slug in row["also"]
        return slug in {row["label"], *row["also"]}

    kept = [r for r in rows if right(r, top(r["excerpt"]))]
    print(f"rows {len(rows)}, answered rightly as pasted {len(kept)}")
    for name in args.shape or list(SHAPES):
        lost = []
        for r in kept:
            got = top(SHAPES[name](r["excerpt"]))
            if not right(r, got):
                lost.append((r["id"], got))
        print(f"{name:15s} lost {len(lost):4d} of {len(kept)}  {lost[:5]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
