"""The seed failure modes nothing else caught (BW801-BW804): pure parsers on real strings, fact cases that pass and
fail, and real inputs (--root trees, serve configs, safetensors files) for each seed and its fixed form.

Seed 001 (/work/shared/seeds/001_*): PYTORCH_ALLOC_CONF "optimised" for fragmentation, CPU_AFFINITY=1-5,25-29 in
.env on a Threadripper 7960X with 2x RTX 5090. Seed 002: Salyut1/GLM-4.7-NVFP4 (ModelOpt NVFP4, 160 experts) on
4x RTX PRO 6000 (SM120) with vLLM 0.15.1, torch 2.9.1+cu128, flashinfer 0.6.1: KeyError
'layers.41.self_attn.qkv_proj.k_scale' and the FLASHINFER_CUTLASS MoE zeros bug (flashinfer #2577)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from conftest import compile_shared, run_cli

from bwdoctor.checks.startup import allocator_conf_valid, kv_cache_scales, numa_affinity, nvfp4_moe_backend_sm12x
from bwdoctor.context import Context
from bwdoctor.domain import allocconf, placement
from bwdoctor.domain.checkpoints import quant_summary, scale_forms
from bwdoctor.elf.libversion import read_rodata
from bwdoctor.model import Problem, Unavailable
from bwdoctor.probes import nvidia, servehost
from bwdoctor.serve.readers import read_config, read_process

FIX = Path(__file__).parent / "fixtures"
VENV_BOX = FIX / "roots" / "venv-box"
SITE = "opt/venv/lib/python3.12/site-packages"
STRINGS = json.loads((FIX / "seeds" / "torch-alloc-strings.json").read_text())
HOST_ENV = {"VIRTUAL_ENV": "", "CONDA_PREFIX": ""}


def alloc_fact(version: str) -> dict:
    """The torch_allocator fact of a real torch wheel (strings recorded by tools/gen_torch_alloc_strings.py)."""
    rec = STRINGS[version]
    return {"torch": version, "lib_dir": "/x/torch/lib", "libraries": rec["libraries"]}


def statuses(result) -> list:
    items = result if isinstance(result, list) else [result]
    return [type(r).__name__ for r in items]


def problems(result) -> list:
    return [r for r in (result if isinstance(result, list) else [result]) if isinstance(r, Problem)]


# -- the allocator setting: the parser on real strings ----------------------------------------------------------
@pytest.mark.parametrize(
    "text, keys, errors",
    [
        ("expandable_segments:True", [("expandable_segments", "True")], 0),
        ("expandable_segment:True", [("expandable_segment", "True")], 0),  # seed 001's typo shape
        (
            "max_split_size_mb:512, garbage_collection_threshold:0.6",
            [("max_split_size_mb", "512"), ("garbage_collection_threshold", "0.6")],
            0,
        ),
        (
            "roundup_power2_divisions:[256:1,512:2,1024:4,>:8],backend:native",
            [("roundup_power2_divisions", "[256:1,512:2,1024:4,>:8]"), ("backend", "native")],
            0,
        ),
        ("expandable_segments", [("expandable_segments", None)], 1),
        (
            "expandable_segments:True;max_split_size_mb:128",
            [("expandable_segments", "True;max_split_size_mb"), ("128", None)],
            2,
        ),
        ("roundup_power2_divisions:[256:1", [("roundup_power2_divisions", "[256:1]")], 1),
        ("", [], 0),
    ],
)
def test_parse_reads_the_setting_as_torch_tokenizes_it(text, keys, errors):
    res = allocconf.parse(text)
    assert [(o.key, o.value) for o in res.options] == keys
    assert len(res.errors) == errors


@pytest.mark.parametrize(
    "key, value, bad",
    [
        ("expandable_segments", "True", None),
        ("expandable_segments", "true", "True or False"),
        ("max_split_size_mb", "10", ">= 20"),
        ("max_split_size_mb", "128", None),
        ("garbage_collection_threshold", "1.5", "(0.0, 1.0)"),
        ("garbage_collection_threshold", "nan", "(0.0, 1.0)"),
        ("pinned_num_register_threads", "6", "power of 2"),
        ("pinned_num_register_threads", "256", "<= 128"),
        ("backend", "cudaMallocAsync", None),
        ("backend", "async", "native or cudaMallocAsync"),
        ("roundup_power2_divisions", "[256:1,512:3,>:8]", "not a power of 2"),
        ("roundup_power2_divisions", "4", None),
        ("per_process_memory_fraction", "0.5", None),
    ],
)
def test_value_rules_follow_torch_parsers(key, value, bad):
    got = allocconf.value_problem(key, value)
    assert (got is None) if bad is None else (bad in got)


def test_recorded_wheels_say_which_variable_the_cuda_allocator_reads():
    cuda = {v: STRINGS[v]["libraries"]["libc10_cuda.so"]["variables"] for v in STRINGS}
    assert cuda["2.7.1"] == cuda["2.8.0"] == cuda["2.9.1"] == ["PYTORCH_CUDA_ALLOC_CONF"]
    assert cuda["2.10.0"] == cuda["2.11.0"] == ["PYTORCH_ALLOC_CONF", "PYTORCH_CUDA_ALLOC_CONF"]
    assert STRINGS["2.9.1"]["libraries"]["libc10.so"]["deprecated"] == [
        "PYTORCH_CUDA_ALLOC_CONF",
        "PYTORCH_HIP_ALLOC_CONF",
    ]
    assert STRINGS["2.9.1"]["wheel_sha256"] == "d033ff0ac3f5400df862a51bdde9bad83561f3739ea0046e68f5401ebfa67c1b"
    ids = STRINGS["2.9.1"]["libraries"]["libc10_cuda.so"]["identifiers"]
    assert "release_expandable_segment" in ids  # a function name: never taken for the option
    assert not allocconf.accepts(ids, "expandable_segment") and allocconf.accepts(ids, "expandable_segments")
    assert allocconf.nearest("expandable_segment", ids) == "expandable_segments"


def test_library_strings_reads_a_real_elf_rodata(tmp_path):
    src = 'const char *const names[] = {"PYTORCH_CUDA_ALLOC_CONF", "expandable_segments", "backend", "native"};\n'
    so = compile_shared(tmp_path / "libc10_cuda.so", src)
    got = allocconf.library_strings(read_rodata(str(so)))
    assert got["variables"] == ["PYTORCH_CUDA_ALLOC_CONF"]
    assert "expandable_segments" in got["identifiers"] and "backend" in got["identifiers"]


# -- BW801 fact cases --------------------------------------------------------------------------------------------
def test_bw801_seed_new_name_on_torch_291_is_not_read_by_the_cuda_allocator():
    res = allocator_conf_valid(alloc_fact("2.9.1"), {"PYTORCH_ALLOC_CONF": "expandable_segments:True"}, None)
    (p,) = problems(res)
    assert p.severity == "warning" and "is not read by torch 2.9.1's CUDA allocator" in p.message
    assert "pytorch/pytorch#183387" in p.message and p.evidence["fix"] == "rename it to PYTORCH_CUDA_ALLOC_CONF"


def test_bw801_new_name_on_torch_28_is_ignored_and_its_typo_would_raise_later():
    res = allocator_conf_valid(alloc_fact("2.8.0"), {"PYTORCH_ALLOC_CONF": "expandable_segment:True"}, None)
    ignored, typo = problems(res)
    assert "is ignored: torch 2.8.0 reads PYTORCH_CUDA_ALLOC_CONF" in ignored.message
    assert typo.severity == "warning" and "it would raise once PYTORCH_ALLOC_CONF is read" in typo.message


def test_bw801_mistyped_key_fails_with_the_nearest_option():
    res = allocator_conf_valid(alloc_fact("2.9.1"), {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segment:True"}, None)
    (p,) = problems(res)
    assert p.severity == "error" and "'expandable_segment' is not one torch 2.9.1 knows" in p.message
    assert "did you mean 'expandable_segments'" in p.message


def test_bw801_option_from_a_later_torch_and_bad_value():
    res = allocator_conf_valid(
        alloc_fact("2.8.0"),
        {"PYTORCH_CUDA_ALLOC_CONF": "graph_capture_record_stream_reuse:True,expandable_segments:true"},
        None,
    )
    msgs = [p.message for p in problems(res)]
    assert any(
        "'graph_capture_record_stream_reuse' is not one torch 2.8.0 knows (it came in a later" in m for m in msgs
    )
    assert any("expandable_segments expects True or False" in m for m in msgs)


def test_bw801_passes_what_each_torch_reads():
    assert statuses(
        allocator_conf_valid(alloc_fact("2.9.1"), {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}, None)
    ) == ["Pass"]
    assert statuses(
        allocator_conf_valid(alloc_fact("2.11.0"), {"PYTORCH_ALLOC_CONF": "expandable_segments:True"}, None)
    ) == ["Pass"]
    assert statuses(allocator_conf_valid(alloc_fact("2.11.0"), {}, None)) == ["Pass"]


def test_bw801_both_names_with_different_values():
    env = {"PYTORCH_ALLOC_CONF": "expandable_segments:True", "PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:256"}
    (p,) = problems(allocator_conf_valid(alloc_fact("2.10.0"), env, None))
    assert p.severity == "warning" and "both set, to different values" in p.message


# -- BW801 real input: a --root tree holding torch 2.9.1 with libc10*.so built from the wheel's recorded strings --
def _c_strings(names) -> str:
    body = ", ".join(json.dumps(n) for n in names)
    return f"const char *const recorded[] = {{{body}}};\n"


@pytest.fixture
def torch_box(tmp_path) -> Path:
    root = tmp_path / "box"
    shutil.copytree(VENV_BOX, root, symlinks=True)
    lib = root / SITE / "torch" / "lib"
    for name, rec in STRINGS["2.9.1"]["libraries"].items():
        names = (
            rec["identifiers"]
            + rec["variables"]
            + [f"{d} is deprecated, use PYTORCH_ALLOC_CONF instead" for d in rec["deprecated"]]
        )
        compile_shared(lib / name, _c_strings(names))
    return root


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


SEED001_COMPOSE = """services:
  vllm:
    image: vllm/vllm-openai:latest
    cpuset: "${CPU_AFFINITY}"
    environment:
      - NCCL_DMABUF_ENABLE=1
      - NCCL_P2P_LEVEL=PCI
      - PYTORCH_ALLOC_CONF=${ALLOC_CONF}
    command: ["--model", "/model_dir", "--tensor-parallel-size", "2", "--disable-custom-all-reduce"]
"""


def _bw801(report: dict) -> list:
    return [f for f in report["findings"] if f["id"] == "BW801"]


def test_bw801_fires_on_the_seed_and_is_quiet_on_the_fixed_one(torch_box, tmp_path):
    proj = tmp_path / "proj"
    compose = _write(proj / "docker-compose.yml", SEED001_COMPOSE)
    _write(proj / ".env", "HF_TOKEN=hf_x\nMAX_JOBS=42\nCPU_AFFINITY=1-5,25-29\nALLOC_CONF=expandable_segment:True\n")
    args = ("check", "--root", str(torch_box), "--config", str(compose), "--select", "BW801", "--format", "json")
    res = run_cli(*args, env=HOST_ENV)
    found = _bw801(json.loads(res.stdout))
    assert res.returncode == 1, res.stderr
    msgs = sorted(f["message"] for f in found if f["status"] == "fail")
    assert len(msgs) == 2
    assert (
        "PYTORCH_ALLOC_CONF=expandable_segment:True is not read by torch 2.9.1's CUDA allocator (it reads "
        "PYTORCH_CUDA_ALLOC_CONF)" in msgs[1]
    )
    assert "option 'expandable_segment' is not one torch 2.9.1 knows" in msgs[0]
    assert found[0]["location"]["path"] == str(compose) and found[0]["location"]["line"] == 8

    compose.write_text(SEED001_COMPOSE.replace("PYTORCH_ALLOC_CONF", "PYTORCH_CUDA_ALLOC_CONF"))
    (proj / ".env").write_text("CPU_AFFINITY=1-5,25-29\nALLOC_CONF=expandable_segments:True\n")
    res = run_cli(*args, env=HOST_ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [f["status"] for f in _bw801(json.loads(res.stdout))] == ["pass"]


# -- NUMA: the pure parts ----------------------------------------------------------------------------------------
def test_cpulists_masks_and_wrappers():
    assert placement.parse_cpulist("0-3,8,10-11\n") == frozenset({0, 1, 2, 3, 8, 10, 11})
    assert placement.parse_cpulist("") == frozenset()
    assert placement.parse_mask("ff,00000000") == frozenset(range(32, 40))
    assert placement.format_cpus({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    for bad in ("0-", "3-1", "x", "0-99999999"):
        with pytest.raises(ValueError):
            placement.parse_cpulist(bad)
    nodes = {0: frozenset(range(0, 4)), 1: frozenset(range(4, 8))}
    assert placement.pinned_cpus(["numactl", "--cpunodebind=1", "--membind=1"], nodes)[0] == nodes[1]
    assert placement.pinned_cpus(["numactl", "-N", "0"], nodes)[0] == nodes[0]
    assert placement.pinned_cpus(["taskset", "-c", "1-2"], nodes)[0] == frozenset({1, 2})
    assert placement.pinned_cpus(["taskset", "0x30"], nodes)[0] == frozenset({4, 5})
    assert placement.pinned_cpus(["docker", "run", "--cpuset-cpus=4-7", "img"], nodes)[0] == nodes[1]
    assert placement.pinned_cpus(["/usr/bin/python3"], nodes) is None
    assert placement.affinity_setting("CPUAffinity", "0 1 2") == frozenset({0, 1, 2})
    assert placement.affinity_setting("NUMAPolicy", "bind") is None


# -- BW802 fact cases --------------------------------------------------------------------------------------------
TWO_NODES = {"0": "0-11,24-35", "1": "12-23,36-47"}
GPUS_NODE1 = [{"bus": "0000:81:00.0", "numa_node": 1}, {"bus": "0000:c1:00.0", "numa_node": 1}]


def _serve(cfg_text: str, path: str = "/srv/run.sh") -> dict:
    return {"configs": [c.to_json() for c in read_config(path, cfg_text.encode())]}


def test_bw802_cpus_away_from_the_gpus_node():
    topo = {"nodes": TWO_NODES, "gpus": GPUS_NODE1, "processes": {}}
    res = numa_affinity(topo, _serve("taskset -c 1-5,25-29 vllm serve /m --tensor-parallel-size 2\n"))
    (p,) = problems(res)
    assert "runs on CPUs 1-5,25-29 (node [0]" in p.message and "NUMA node [1]" in p.message
    assert p.location.line == 1 and p.location.column == 12  # the CPU list a person edits


def test_bw802_spanning_nodes_while_tp_gpus_share_one():
    topo = {"nodes": TWO_NODES, "gpus": GPUS_NODE1, "processes": {}}
    (p,) = problems(numa_affinity(topo, _serve("taskset -c 0-47 vllm serve /m -tp 2\n")))
    assert "NUMA nodes [0, 1] while all its tensor-parallel GPUs sit on node 1" in p.message


def test_bw802_running_process_from_proc_status():
    topo = {"nodes": TWO_NODES, "gpus": GPUS_NODE1, "processes": {"4242": "0-11"}}
    cfg = read_process(
        b"/usr/bin/python3\0-m\0vllm.entrypoints.openai.api_server\0--model\0/m\0",
        b"",
        "/proc/4242/cmdline",
        "/proc/4242/environ",
    )
    (p,) = problems(numa_affinity(topo, {"configs": [c.to_json() for c in cfg]}))
    assert "Cpus_allowed_list 0-11" in p.evidence["pinned_by"]


def test_bw802_quiet_when_local_single_node_or_unpinned():
    topo = {"nodes": TWO_NODES, "gpus": GPUS_NODE1, "processes": {}}
    assert statuses(numa_affinity(topo, _serve("numactl --cpunodebind=1 --membind=1 vllm serve /m\n"))) == ["Pass"]
    assert statuses(numa_affinity(topo, _serve("vllm serve /m\n"))) == ["Skip"]
    one = {"nodes": {"0": "0-47"}, "gpus": GPUS_NODE1, "processes": {}}
    assert statuses(numa_affinity(one, _serve("taskset -c 1-5,25-29 vllm serve /m\n"))) == ["Skip"]
    unknown = {"nodes": TWO_NODES, "gpus": [{"bus": "0000:00:06.0", "numa_node": -1}], "processes": {}}
    assert statuses(numa_affinity(unknown, _serve("taskset -c 1-5 vllm serve /m\n"))) == ["Skip"]


# -- BW802 real input: a 2-node box tree and seed 001's compose + .env --------------------------------------------
def _numa_box(root: Path, nodes: dict, gpu_node: str) -> Path:
    rtx5090 = {"vendor": "0x10de\n", "device": "0x2b85\n", "class": "0x030000\n", "numa_node": gpu_node + "\n"}
    files = {"sys/devices/system/cpu/online": "0-47\n"}
    for n, cpus in nodes.items():
        files[f"sys/devices/system/node/node{n}/cpulist"] = cpus + "\n"
        files[f"sys/devices/system/node/node{n}/cpumap"] = "ffff\n"
    for bdf in ("0000:81:00.0", "0000:c1:00.0"):
        for k, v in rtx5090.items():
            files[f"sys/bus/pci/devices/{bdf}/{k}"] = v
    for rel, text in files.items():
        _write(root / rel, text)
    return root


def test_bw802_fires_on_the_seed_on_a_two_node_box_and_is_quiet_on_the_fixed_one(tmp_path):
    root = _numa_box(tmp_path / "box", TWO_NODES, "1")
    proj = tmp_path / "proj"
    compose = _write(proj / "docker-compose.yml", SEED001_COMPOSE)
    _write(proj / ".env", "CPU_AFFINITY=1-5,25-29\nALLOC_CONF=expandable_segments:True\n")
    args = ("check", "--root", str(root), "--config", str(compose), "--select", "BW802", "--format", "json")
    res = run_cli(*args, env=HOST_ENV)
    (f,) = [f for f in json.loads(res.stdout)["findings"] if f["id"] == "BW802"]
    assert f["status"] == "fail" and f["severity"] == "warning", res.stdout
    assert "runs on CPUs 1-5,25-29 (node [0], cpuset: 1-5,25-29)" in f["message"]
    assert f["location"]["line"] == 4 and f["evidence"]["gpu_nodes"] == [1]

    (proj / ".env").write_text("CPU_AFFINITY=13-17,37-41\n")
    res = run_cli(*args, env=HOST_ENV)
    (f,) = [f for f in json.loads(res.stdout)["findings"] if f["id"] == "BW802"]
    assert f["status"] == "pass", f

    single = _numa_box(tmp_path / "tr7960x", {"0": "0-47"}, "0")  # the seed's own machine: one node (NPS1)
    (proj / ".env").write_text("CPU_AFFINITY=1-5,25-29\n")
    res = run_cli(
        "check", "--root", str(single), "--config", str(compose), "--select", "BW802", "--format", "json", env=HOST_ENV
    )
    (f,) = [f for f in json.loads(res.stdout)["findings"] if f["id"] == "BW802"]
    assert f["status"] == "skip" and "one NUMA node" in f["message"]


def test_numa_probe_on_the_captured_h100_vm(tmp_path):
    """The real capture: one GPU whose numa_node is -1 (a cloud VM's firmware does not say); nvidia-smi topo there
    printed CPU Affinity 0-15 on node 0, which is the node file added here."""
    root = tmp_path / "h100"
    shutil.copytree(FIX / "roots" / "h100-box", root)
    ctx = Context(root=root, env={})
    assert isinstance(servehost.numa_topology(ctx, nvidia.pci_gpus(ctx)), Unavailable)
    _write(root / "sys/devices/system/node/node0/cpulist", "0-15\n")
    topo = servehost.numa_topology(ctx, nvidia.pci_gpus(ctx))
    assert topo["nodes"] == {"0": "0-15"} and [g["numa_node"] for g in topo["gpus"]] == [-1]
    assert statuses(numa_affinity(topo, _serve("taskset -c 0-3 vllm serve /m\n"))) == ["Skip"]


# -- safetensors checkpoints: tiny real files with GLM-4.7-NVFP4's tensor names -------------------------------
DTYPE = {"BF16": 2, "F32": 4, "U8": 1, "F8_E4M3": 1}


def write_safetensors(path: Path, tensors: dict) -> None:
    """A real safetensors file: 8-byte little-endian header length, JSON header, zero-filled tensor data."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, (dtype, shape) in tensors.items():
        n = DTYPE[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(off))


def nvfp4_linear(prefix: str) -> dict:
    """A ModelOpt NVFP4 linear: packed FP4 weight, FP8 block scales, FP32 global and input scales."""
    return {
        f"{prefix}.weight": ("U8", [4, 8]),
        f"{prefix}.weight_scale": ("F8_E4M3", [4, 1]),
        f"{prefix}.weight_scale_2": ("F32", []),
        f"{prefix}.input_scale": ("F32", []),
    }


def glm47_layer(i: int, experts: int, kv_scales: bool) -> dict:
    p = f"model.layers.{i}"
    t: dict = {f"{p}.input_layernorm.weight": ("BF16", [16]), f"{p}.post_attention_layernorm.weight": ("BF16", [16])}
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        t.update(nvfp4_linear(f"{p}.self_attn.{proj}"))
    if kv_scales:
        t[f"{p}.self_attn.k_proj.k_scale"] = ("F32", [])
        t[f"{p}.self_attn.v_proj.v_scale"] = ("F32", [])
    t[f"{p}.mlp.gate.weight"] = ("BF16", [experts, 16])
    t[f"{p}.mlp.gate.e_score_correction_bias"] = ("F32", [experts])
    for e in range(experts):
        for proj in ("gate_proj", "up_proj", "down_proj"):
            t.update(nvfp4_linear(f"{p}.mlp.experts.{e}.{proj}"))
    for proj in ("gate_proj", "up_proj", "down_proj"):
        t.update(nvfp4_linear(f"{p}.mlp.shared_experts.{proj}"))
    return t


SERVE = FIX / "serve"  # the seeds' own serve configs and GLM-4.7's architecture values (see its README)
GLM47_CONFIG = json.loads((SERVE / "models" / "glm-4.7-nvfp4" / "config.json").read_text())
HF_QUANT = {
    "producer": {"name": "modelopt", "version": "0.37.0"},
    "quantization": {
        "quant_algo": "NVFP4",
        "kv_cache_quant_algo": "FP8",
        "group_size": 16,
        "exclude_modules": ["lm_head"],
    },
}
SNAPSHOT = (
    "home/alex/.cache/huggingface/hub/models--Salyut1--GLM-4.7-NVFP4/snapshots/531df318dbe2877b24881f6e15024c7f945e7048"
)


def glm47_checkpoint(d: Path, kv_scales: bool = True, index: bool = True) -> Path:
    """Two shards (layers 40 and 41 of the real 92, 2 experts each) + index, config.json, hf_quant_config.json."""
    shards = {
        "model-00020-of-00041.safetensors": glm47_layer(40, 2, kv_scales),
        "model-00021-of-00041.safetensors": glm47_layer(41, 2, kv_scales),
    }
    weight_map = {}
    for name, tensors in shards.items():
        write_safetensors(d / name, tensors)
        weight_map.update(dict.fromkeys(tensors, name))
    if index:
        _write(
            d / "model.safetensors.index.json", json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map})
        )
    _write(d / "config.json", json.dumps(GLM47_CONFIG))
    _write(d / "hf_quant_config.json", json.dumps(HF_QUANT))
    return d


def test_checkpoint_reader_uses_the_index_or_the_headers(tmp_path):
    root = tmp_path / "box"
    glm47_checkpoint(root / SNAPSHOT)
    ctx = Context(root=root, env={})
    m = servehost.read_model(ctx, "/" + SNAPSHOT)
    assert m["tensors_from"] == "model.safetensors.index.json" and m["num_experts"] == 160
    assert m["kv_scales"]["forms"]["proj"] == 4 and m["kv_scales"]["count"] == 4
    assert m["quant"] == {"method": "modelopt", "algo": "NVFP4", "kv_algo": "FP8"}
    (root / SNAPSHOT / "model.safetensors.index.json").unlink()
    m2 = servehost.read_model(ctx, "/" + SNAPSHOT)
    assert m2["tensors_from"] == "safetensors headers" and m2["kv_scales"] == m["kv_scales"] and not m2["errors"]
    (root / SNAPSHOT / "model-00021-of-00041.safetensors").write_bytes(struct.pack("<Q", 1 << 40))
    m3 = servehost.read_model(ctx, "/" + SNAPSHOT)
    assert "not plausible" in m3["errors"][0] and m3["kv_scales"]["count"] == 2


def test_scale_forms_and_quant_summary():
    names = [
        "model.layers.0.self_attn.k_proj.k_scale",
        "model.layers.0.self_attn.attn.v_scale",
        "model.layers.0.kv_scale",
    ]
    assert scale_forms(names) == {"proj": 1, "qkv_proj": 0, "attn": 1, "kv_scale": 1}
    assert quant_summary({"quantization_config": {"quant_method": "modelopt_fp4"}}, None)["method"] == "modelopt_fp4"
    assert quant_summary({}, None) == {"method": None, "algo": None, "kv_algo": None}


# -- BW803 / BW804 fact cases --------------------------------------------------------------------------------------
def _model(kv: int = 4, forms: dict | None = None, kv_algo: str | None = "FP8", experts: int | None = 160) -> dict:
    return {
        "config": "/srv/run.sh",
        "name": "",
        "model": "/m",
        "architectures": ["Glm4MoeForCausalLM"],
        "quant": {"method": "modelopt", "algo": "NVFP4", "kv_algo": kv_algo},
        "num_experts": experts,
        "kv_scales": {"count": kv, "forms": forms or {"proj": kv, "qkv_proj": 0, "attn": 0, "kv_scale": 0}},
    }


def _dists(vllm: str, fi: str | None = "0.6.1") -> list:
    out = [{"name": "vllm", "version": vllm}]
    return out + ([{"name": "flashinfer-python", "version": fi}] if fi else [])


def test_bw803_keyerror_on_releases_whose_loader_renames_first():
    serve = _serve("vllm serve /m\n")
    (p,) = problems(kv_cache_scales([_model()], serve, _dists("0.15.1")))
    assert "stops with KeyError (fixed in 0.21.0)" in p.message and p.severity is None
    assert statuses(kv_cache_scales([_model()], serve, _dists("0.21.0"))) == ["Pass"]
    assert statuses(kv_cache_scales([_model()], serve, _dists("0.13.0"))) == ["Pass"]  # not read: not judged


def test_bw803_fp8_kv_without_scales_warns():
    none = _model(kv=0, kv_algo=None)
    (p,) = problems(kv_cache_scales([none], _serve("vllm serve /m --kv-cache-dtype fp8_e4m3\n"), _dists("0.22.0")))
    assert p.severity == "warning" and "scale 1.0" in p.message and p.location.column == 32
    (p,) = problems(kv_cache_scales([_model(kv=0)], _serve("vllm serve /m\n"), _dists("0.22.0")))
    assert "from the checkpoint's kv_cache_quant_algo" in p.message
    assert statuses(kv_cache_scales([none], _serve("vllm serve /m\n"), _dists("0.22.0"))) == ["Pass"]


def test_bw804_flashinfer_cutlass_on_sm120():
    serve = _serve("vllm serve /m --quantization modelopt_fp4\n")
    (p,) = problems(nvfp4_moe_backend_sm12x([_model()], serve, _dists("0.15.1"), ["sm_120"], {}))
    assert "picks the FLASHINFER_CUTLASS MoE backend" in p.message
    assert "VLLM_USE_FLASHINFER_MOE_FP4=0" in p.evidence["fix"]
    (p,) = problems(nvfp4_moe_backend_sm12x([_model()], serve, _dists("0.33.0"), ["sm_121"], {}))
    assert "--moe-backend cutlass" in p.evidence["fix"]


@pytest.mark.parametrize(
    "script, dists, targets, env, want",
    [
        ("VLLM_USE_FLASHINFER_MOE_FP4=0 vllm serve /m\n", _dists("0.15.1"), ["sm_120"], {}, "Pass"),
        ("vllm serve /m\n", _dists("0.15.1"), ["sm_120"], {"VLLM_USE_FLASHINFER_MOE_FP4": "0"}, "Pass"),
        ("vllm serve /m --moe-backend cutlass\n", _dists("0.17.0"), ["sm_120"], {}, "Pass"),
        ("vllm serve /m\n", _dists("0.15.1", None), ["sm_120"], {}, "Pass"),
        ("vllm serve /m\n", _dists("0.15.1", "0.6.13"), ["sm_120"], {}, "Pass"),
        ("vllm serve /m\n", _dists("0.15.1"), ["sm_100"], {}, "Skip"),
        ("vllm serve /m\n", _dists("0.14.0"), ["sm_120"], {}, "Skip"),
        ("VLLM_USE_FLASHINFER_MOE_FP4=0 vllm serve /m\n", _dists("0.24.0"), ["sm_120"], {}, "Problem"),
    ],
)
def test_bw804_cases(script, dists, targets, env, want):
    assert statuses(nvfp4_moe_backend_sm12x([_model()], _serve(script), dists, targets, env)) == [want]


def test_bw804_dense_or_non_nvfp4_models_are_not_judged():
    dense = _model(experts=None)
    assert statuses(nvfp4_moe_backend_sm12x([dense], _serve("vllm serve /m\n"), _dists("0.15.1"), ["sm_120"], {})) == [
        "Skip"
    ]


# -- BW803 / BW804 real input: seed 002's serve script, HF cache snapshot and installed versions ------------------
SEED002_BEFORE = SERVE / "seed002" / "before" / "serve_glm47_nvfp4_vllm.sh"
SEED002_AFTER = SERVE / "seed002" / "after" / "serve_glm47_nvfp4_vllm.sh"


def _dist_info(site: Path, name: str, version: str) -> None:
    d = site / f"{name.replace('-', '_')}-{version}.dist-info"
    _write(d / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.fixture
def seed002_box(tmp_path) -> Path:
    root = tmp_path / "box"
    shutil.copytree(VENV_BOX, root, symlinks=True)
    _dist_info(root / SITE, "vllm", "0.15.1")
    _dist_info(root / SITE, "flashinfer-python", "0.6.1")
    glm47_checkpoint(root / SNAPSHOT)
    _write(root / "proc/1/environ", "HOME=/home/alex\0PATH=/usr/bin\0")  # the script's ${HOME}
    return root


def _findings(res, cid: str) -> list:
    return [f for f in json.loads(res.stdout)["findings"] if f["id"] == cid]


def test_seed002_fires_both_and_the_fixed_one_is_quiet(seed002_box, tmp_path):
    args = ("check", "--root", str(seed002_box), "--target", "sm_120", "--format", "json")
    res = run_cli(*args, "--config", str(SEED002_BEFORE), "--select", "BW803,BW804", env=HOST_ENV)
    assert res.returncode == 1, res.stderr
    (kv,) = _findings(res, "BW803")
    assert kv["status"] == "fail" and kv["severity"] == "error"
    assert "model.layers.40.self_attn.k_proj.k_scale" in kv["message"] and "stops with KeyError" in kv["message"]
    assert kv["location"]["line"] == 22  # --model "$MODEL_PATH"
    (moe,) = _findings(res, "BW804")
    assert moe["status"] == "fail" and "FLASHINFER_CUTLASS" in moe["message"] and "FlashInfer 0.6.1" in moe["message"]
    assert moe["location"]["path"] == str(SEED002_BEFORE)

    # fixed: the report's after-script with vLLM's own MoE kernel forced, and a vLLM whose GLM-4 MoE loader
    # remaps the scales (the report patched 0.15.1's loader instead)
    fixed = _write(
        tmp_path / "serve_glm47_nvfp4_vllm.sh",
        SEED002_AFTER.read_text().replace(
            "export HF_HUB_OFFLINE=1", "export HF_HUB_OFFLINE=1\nexport VLLM_USE_FLASHINFER_MOE_FP4=0"
        ),
    )
    res = run_cli(*args, "--config", str(fixed), "--select", "BW804", env=HOST_ENV)
    assert [f["status"] for f in _findings(res, "BW804")] == ["pass"], res.stdout
    res = run_cli(*args, "--config", str(fixed), "--select", "BW803", "--vllm-version", "0.21.0", env=HOST_ENV)
    assert [f["status"] for f in _findings(res, "BW803")] == ["pass"], res.stdout
    assert res.returncode == 0


def test_seed001_own_compose_on_torch_291(torch_box):
    """The report's compose files (before and after) both set PYTORCH_ALLOC_CONF: on torch 2.9.1 neither reaches
    the CUDA allocator."""
    for state in ("before", "after"):
        compose = SERVE / "seed001" / state / "docker-compose.yml"
        res = run_cli(
            "check",
            "--root",
            str(torch_box),
            "--config",
            str(compose),
            "--select",
            "BW801",
            "--format",
            "json",
            env=HOST_ENV,
        )
        (f,) = [f for f in json.loads(res.stdout)["findings"] if f["id"] == "BW801"]
        assert f["status"] == "fail" and f["severity"] == "warning" and res.returncode == 0, res.stdout
        assert "PYTORCH_ALLOC_CONF=expandable_segments:True is not read by torch 2.9.1's CUDA allocator" in f["message"]


def test_hostile_model_dirs_and_sysfs_give_messages_not_tracebacks(tmp_path):
    import os

    root = tmp_path / "box"
    d = root / "models" / "bad"
    d.mkdir(parents=True)
    os.mkfifo(d / "model.safetensors")  # never opened: only regular files are read
    (d / "config.json").write_text("[" * 100000 + "]" * 100000)
    (d / "hf_quant_config.json").write_bytes(b"\xff\xfe not json")
    _write(root / "sys/devices/system/node/node0/cpulist", "0-7\n")
    _write(root / "sys/devices/system/node/node1/cpulist", "\x00garbage\n")
    _write(root / "sys/devices/system/node/node2/cpulist", "0-99999999\n")
    ctx = Context(root=root, env={})
    m = servehost.read_model(ctx, "/models/bad")
    assert m["architectures"] == [] and "tensors" not in m
    assert any(e.startswith("config.json:") for e in m["errors"])
    assert any(e.startswith("hf_quant_config.json:") for e in m["errors"])
    topo = servehost.numa_topology(ctx, [])
    assert topo["nodes"] == {"0": "0-7"} and len(topo["errors"]) == 2


def test_readers_keep_the_words_and_settings_that_place_a_server():
    unit = (
        b"[Unit]\nDescription=vLLM\n[Service]\nCPUAffinity=12-23 36-47\nNUMAPolicy=bind\n"
        b"ExecStart=/usr/bin/numactl --cpunodebind=1 /opt/v/bin/python"
        b" -m vllm.entrypoints.openai.api_server --model /m\n"
    )
    (cfg,) = read_config("/etc/systemd/system/vllm.service", unit)
    assert [t.text for t in cfg.prefix] == ["/usr/bin/numactl", "--cpunodebind=1", "/opt/v/bin/python"]
    assert [(s.name, s.value, s.line) for s in cfg.settings] == [
        ("CPUAffinity", "12-23 36-47", 4),
        ("NUMAPolicy", "bind", 5),
    ]
    again = type(cfg).from_json(json.loads(json.dumps(cfg.to_json())))
    assert [t.text for t in again.prefix] == [t.text for t in cfg.prefix] and again.settings == cfg.settings
    topo = {"nodes": TWO_NODES, "gpus": GPUS_NODE1, "processes": {}}
    serve = {"configs": [cfg.to_json()]}
    assert statuses(numa_affinity(topo, serve)) == ["Pass", "Pass"]  # numactl node 1 and CPUAffinity on node 1
    (docker,) = read_config("/srv/run.sh", b"docker run --gpus all --cpuset-cpus 0-3 vllm/vllm-openai --model /m\n")
    assert [t.text for t in docker.prefix][-2:] == ["--cpuset-cpus", "0-3"]
    (p,) = problems(numa_affinity(topo, {"configs": [docker.to_json()]}))
    assert "--cpuset-cpus 0-3" in p.message


def test_secrets_in_the_words_before_the_launcher_are_masked():
    token = "hf_" + "abcdefghijklmnopqrstuvwxyz0123"
    text = f"docker run --gpus all -e HF_TOKEN={token} --cpuset-cpus 0-3 vllm/vllm-openai --model /m\n"
    (cfg,) = read_config("/srv/run.sh", text.encode())
    assert token not in json.dumps(cfg.to_json())
    assert [t.text for t in cfg.prefix][-2:] == ["--cpuset-cpus", "0-3"]
