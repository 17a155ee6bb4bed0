#!/usr/bin/env bash
# The acceptance scenarios of `bwdoctor recommend` (issue 15), each printed as a person sees it. No GPU needed:
# every input is an option, so the output depends only on the shipped release table.
#   bash benchmarks/recommend_scenarios.sh > tests/fixtures/recommend/scenarios.txt
set -u
run() { echo "\$ bwdoctor recommend $*"; bwdoctor recommend --python-version 3.12 --ram-gib 64 "$@"; echo "(exit $?)"; echo; }
run --target sm_120 --driver 570.153.02 --cpu-flags avx2 --platform linux_x86_64           # RTX 5090 + R570 + AVX2
run --target sm_120 --driver 575.57.08 --cpu-flags avx2 --platform linux_x86_64            # RTX PRO 6000 + R575
run --target sm_121 --driver 580.95.05 --platform linux_aarch64                            # GB10 (DGX Spark) + R580
run --target sm_103 --driver 575.57.08 --cpu-flags avx512f --platform linux_x86_64         # B300 + R575
run --target sm_90 --driver 580.159.04 --cpu-flags avx512f --platform linux_x86_64         # H100/H200 + R580
run --target sm_120 --driver 550.54.15 --platform linux_x86_64                             # sm_120 + R550: blocked
run --target sm_120 --driver 570.153.02 --platform linux_x86_64 --vllm 0.11.0              # pinned torch 2.8.0 kept
run --target sm_121 --driver 575.57.08 --platform linux_aarch64                            # GB10 + R575: PyTorch index
run --target sm_120 --driver 580.95.05 --platform linux_x86_64 --with bitsandbytes,xformers,flashinfer,flash-attn
