#!/usr/bin/env bash
# Does `bwdoctor recommend` agree with the stack that works on a real GPU box?
#
# Run on the H200 box (driver 580.x, open kernel module; torch 2.11.0+cu130 installed in the active venv):
#   bash benchmarks/recommend_gpu_box.sh [PYTHON]
#
# What proves it (expected output, in this order):
#   1. "bwdoctor recommend" reads the box: "for sm_90 (Hopper); driver 580.x (CUDA <= 13.0), open module";
#      PLAN 1 (wheels): the newest vLLM in the table with its pinned torch, CUDA 13.0, "sm_90 native" for torch
#      (via sm_90a in torch/lib/libtorch_cuda.so) and vLLM's core ops; no BLOCKED section.
#   2. "--vllm 0.20.0" (the release that pins torch 2.11.0) plans exactly the installed torch: torch 2.11.0,
#      CUDA 13.0, sm_90 native.
#   3. The installed torch: version 2.11.0+cu130, CUDA 13.0, a kernel runs on the GPU ("kernel ran: True"), and
#      `bwdoctor cubins` finds sm_90 code in the installed libtorch_cuda.so (native verdict).
#   4. The last line: "AGREE: plan torch 2.11.0 / CUDA 13.0 / sm_90 native == installed 2.11.0+cu130 / 13.0 / native".
#      Anything else ("DISAGREE: ...") names the field that differs.
set -euo pipefail
PY="${1:-python}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

echo "== 1. bwdoctor recommend (this machine)"
bwdoctor recommend
bwdoctor recommend --format json -o "$OUT/latest.json" || true

echo "== 2. bwdoctor recommend --vllm 0.20.0 (pins torch 2.11.0)"
bwdoctor recommend --vllm 0.20.0
bwdoctor recommend --vllm 0.20.0 --format json -o "$OUT/v020.json" || true

echo "== 3. the installed stack"
"$PY" - <<'PY' | tee "$OUT/installed.txt"
import torch
x = torch.ones(1024, device="cuda")
print("torch", torch.__version__, "cuda", torch.version.cuda, "arch_list", torch.cuda.get_arch_list())
print("device", torch.cuda.get_device_name(0), "cc", torch.cuda.get_device_capability(0))
print("kernel ran:", bool((x * 2).sum().item() == 2048))
PY
bwdoctor cubins torch --target sm_90 --format json -o "$OUT/cubins.json" || true
bwdoctor cubins torch --target sm_90 | tail -4

echo "== 4. agreement"
"$PY" - "$OUT" <<'PY'
import json, re, sys
out = sys.argv[1]
plan = json.load(open(f"{out}/v020.json"))["plans"][0]
torch = next(p for p in plan["packages"] if p["name"] == "torch")
inst = open(f"{out}/installed.txt").read()
ver = re.search(r"torch (\S+) cuda (\S+)", inst)
cub = json.load(open(f"{out}/cubins.json"))
lib = [f for f in cub["files"] if f["path"].endswith("libtorch_cuda.so")]
native = lib and lib[0]["verdicts"]["sm_90"]["status"]
want = (torch["version"], torch["cuda"], torch["code_for_target"].get("sm_90"))
have = (ver.group(1).split("+")[0], ver.group(2), native)
ok = want == have and "kernel ran: True" in inst
print(("AGREE" if ok else "DISAGREE") + f": plan torch {want[0]} / CUDA {want[1]} / sm_90 {want[2]} == installed "
      f"{ver.group(1)} / {have[1]} / {have[2]}")
PY
