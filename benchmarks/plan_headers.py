"""Time planning a 100-shard model from safetensors headers only (target: <= 200 ms).

Builds shards in a temp dir with real headers (~300 tensors each, 8-byte tensors so the files stay
small), then times load_model + plan. Prints the time and the ratio to the 200 ms budget.
"""

import json
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bwdoctor.capacity.budget import PlanInput  # noqa: E402
from bwdoctor.capacity.model import load_model  # noqa: E402
from bwdoctor.capacity.planner import plan  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "capacity"


def build(d: Path, shards: int = 100, tensors: int = 300) -> None:
    (d / "config.json").write_text((FIX / "qwen2.5-72b-instruct-awq" / "config.json").read_text())
    for s in range(shards):
        header, off = {}, 0
        for t in range(tensors):
            header[f"model.layers.{s}.t{t}.weight"] = {"dtype": "BF16", "shape": [2, 2], "data_offsets": [off, off + 8]}
            off += 8
        raw = json.dumps(header).encode()
        (d / f"model-{s:05d}-of-{shards:05d}.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * off)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        build(d)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            m = load_model(d)
            plan(m, PlanInput(gpu_memory_gib=95.59, utilization=0.85, max_model_len=32768))
            best = min(best, time.perf_counter() - t0)
        print(f"100 shards x 300 tensors: best of 5 = {best * 1000:.1f} ms; ratio to 200 ms budget = {best / 0.2:.3f}")


if __name__ == "__main__":
    main()
