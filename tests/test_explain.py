"""The explain matcher: corpus accuracy, look-alike separation, details, logs, redaction, bad input."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from bwdoctor import explain
from bwdoctor.explain import demangle, extract_details, match_log, match_text
from bwdoctor.knowledge import load_all, parse_article

ROOT = Path(__file__).resolve().parents[1]
CORPUS = [
    json.loads(line)
    for line in (ROOT / "tests" / "corpus" / "errors.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
ARTS = load_all()


def by_source(part: str) -> dict:
    hits = [i for i in CORPUS if part in i["source"]]
    assert hits, part
    return hits[0]


def top(text: str):
    res = match_text(text, ARTS)
    return res[0]["slug"] if res else None


# ------------------------------------------------------------------ corpus


def test_corpus_is_real_and_broad():
    assert len(CORPUS) >= 60
    per = collections.Counter(i["slug"] for i in CORPUS)
    assert set(per) <= set(ARTS)
    for i in CORPUS:
        assert i["source"].startswith(("https://github.com/", "seed:shared/seeds/")), i["source"]
        assert i["text"].strip()
    assert sum(1 for n in per.values() if n >= 2) >= 35


def test_top1_accuracy_over_corpus():
    correct = sum(1 for i in CORPUS if top(i["text"]) == i["slug"])
    acc = correct / len(CORPUS)
    print(f"top-1 accuracy {correct}/{len(CORPUS)} = {acc:.3f}")
    assert acc >= 0.9


# ------------------------------------------------------------------ look-alikes

LOOKALIKES = [
    ("flash-attention/issues/723", "undefined-symbol"),  # c10 symbol: torch version
    ("vllm-project/vllm/issues/28199", "sm12x-missing-kernel-symbol"),  # cutlass_*_sm100
    ("vllm-project/vllm/issues/11623", "driver-too-old"),  # cuTensorMapEncodeTiled
    ("flash-attention/issues/1691", "cxx11-abi-mismatch"),  # c10 symbol with __cxx11
    ("pytorch/pytorch/issues/149845", "no-kernel-image"),
    ("pytorch/pytorch/issues/172629", "sm121-torch-warning-benign"),
    ("xformers/issues/1251", "fa3-blackwell"),
    ("flash-attention/issues/1612", "undefined-symbol"),  # generic FlashAttention import error
    ("vllm-project/vllm/issues/19186", "startup-oom"),
    ("vllm-project/vllm/issues/14452", "sampler-warmup-oom"),
    ("vllm-project/vllm/issues/34076", "kv-cache-too-small"),
]


@pytest.mark.parametrize("source,slug", LOOKALIKES)
def test_lookalikes_separate(source, slug):
    assert top(by_source(source)["text"]) == slug


def test_specific_symbol_family_outranks_generic_undefined_symbol():
    text = by_source("flash-attention/issues/1691")["text"]
    res = {m["slug"]: m["score"] for m in match_text(text, ARTS)}
    assert res["cxx11-abi-mismatch"] > res.get("undefined-symbol", 0) * 2


def test_benign_gb10_warning_yields_to_a_real_kernel_error():
    warn = by_source("eugr/spark-vllm-docker/issues/15")["text"]
    err = by_source("pytorch/pytorch/issues/149845")["text"]
    assert top(warn) == "sm121-torch-warning-benign"
    assert top(warn + "\n" + err) == "no-kernel-image"


def test_sampler_oom_beats_generic_startup_oom_in_the_same_text():
    seed_like = (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.74 GiB. GPU 3 has a total capacity "
        "of 94.97 GiB of which 1.69 GiB is free.\n" + by_source("llm-d/llm-d/issues/787")["text"]
    )
    res = match_text(seed_like, ARTS)
    assert res[0]["slug"] == "sampler-warmup-oom"
    assert res[0]["details"]["sizes"]["tried_to_allocate_gib"] == 1.74
    assert res[0]["details"]["sizes"]["free_gib"] == 1.69


# ------------------------------------------------------------------ output shape and details


def test_output_contract(capsys):
    from bwdoctor.cli import main

    text = "foo\nImportError: /x/flash_attn_2_cuda.so: undefined symbol: _ZN3c104cuda9SetDeviceEi\n"
    assert main(["explain", "--no-machine", "--format", "json", text]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "bwdoctor.explain/1"
    m = doc["matches"][0]
    # tier and evidence were added with the tiered ranking (exact signature vs likely by evidence)
    assert set(m) == {"slug", "score", "line", "excerpt", "details", "tier", "evidence"}
    assert m["tier"] == "exact" and doc["verdict"] == "exact"
    assert 0.0 < m["score"] <= 1.0 and m["line"] == 2
    assert m["excerpt"].startswith("ImportError")
    assert m["details"]["symbol"] == "_ZN3c104cuda9SetDeviceEi"
    assert m["details"]["library"] == "/x/flash_attn_2_cuda.so"
    json.dumps(doc)


def test_no_match_is_empty_list():
    assert match_text("everything is fine\nINFO started server", ARTS) == []
    assert match_text("", ARTS) == []


def test_details_versions_gpu_arch():
    text = (
        "| NVIDIA-SMI 580.105.08   Driver Version: 580.105.08   CUDA Version: 13.0 |\n"
        "PyTorch version: 2.9.1+cu128\nvLLM API server version 0.15.1\nNCCL version 2.25.1+cuda12.8\n"
        "NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch installation.\n"
    )
    d = extract_details(text)
    assert d["versions"]["driver"] == "580.105.08"
    assert d["versions"]["cuda"] == "13.0"
    assert d["versions"]["torch"] == "2.9.1+cu128"
    assert d["versions"]["vllm"] == "0.15.1"
    assert d["versions"]["nccl"] == "2.25.1"
    assert d["gpu"] == "NVIDIA GeForce RTX 5090"
    assert "sm_120" in d["arch"]


def test_driver_cuda_version_decoded_from_torch_message():
    d = match_text(by_source("lllyasviel/Fooocus/issues/1313")["text"], ARTS)[0]["details"]
    assert d["versions"]["driver_cuda"] == "11.4"


def test_demangle_hook():
    out = demangle("_ZN3c104cuda9SetDeviceEi")
    if out is None:
        pytest.skip("no demangler on this machine")
    assert out == "c10::cuda::SetDevice(int)"
    assert demangle("cuTensorMapEncodeTiled") is None


def test_secrets_are_redacted_in_excerpt_and_details():
    text = (
        "HF_TOKEN=hf_abcdefghijklmnopqrstuvwx ImportError: https://u:pw123456@h/x/lib.so: "
        "undefined symbol: _ZN3c104cuda9SetDeviceEi"
    )
    m = match_text(text, ARTS)[0]
    blob = json.dumps(m)
    assert "hf_abcdefghijklmnopqrstuvwx" not in blob and "pw123456" not in blob


# ------------------------------------------------------------------ scoring rules


def _art(slug, sigs, excludes=None):
    head = (
        f'slug = "{slug}"\ntitle = "t"\naliases = []\nsignatures = {json.dumps(sigs)}\nchecks = []\n'
        f"applies_to = {{}}\nreferences = []\n"
    )
    if excludes:
        head += f"excludes = {json.dumps(excludes)}\n"
    body = "## Symptom\nx\n## Why it happens\nx\n## Fix\nx\n## Verify\nx\n"
    art = parse_article("+++\n" + head + "+++\n" + body, slug + ".md")
    if excludes:
        art.excludes = excludes  # knowledge.Article has no field yet; the matcher reads it when present
    return art


def test_weight_comment_and_excludes_change_ranking():
    arts = {"a": _art("a", ["disk full on device"]), "b": _art("b", ["(?#w=0.5)disk full on device"])}
    res = match_text("error: disk full on device sda", arts)
    assert [m["slug"] for m in res] == ["a", "b"] and res[0]["score"] > res[1]["score"]
    arts["a"] = _art("a", ["disk full on device"], excludes=["sda"])
    res = match_text("error: disk full on device sda", arts)
    assert res[0]["slug"] == "b"


def test_every_signature_has_a_search_anchor():
    for r in explain._rules(ARTS):
        for p in r.signatures + r.excludes:
            assert p.anchor and len(p.anchor) >= 4, (r.slug, p.source)


# ------------------------------------------------------------------ logs


def _write_log(path: Path, n: int, error_at: int, error: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(1, n + 1):
            if i == error_at:
                fh.write(error + "\n")
            else:
                fh.write(
                    f"(APIServer pid=1) INFO 02-20 10:00:{i % 60:02d} [loggers.py:236] Avg prompt throughput: {i}.0 "
                    "tokens/s\n"
                )


def test_match_log_finds_error_line(tmp_path):
    p = tmp_path / "serve.log"
    err = "RuntimeError: CUDA out of memory occurred when warming up sampler with 1024 dummy requests."
    _write_log(p, 5000, 4321, err)
    res = match_log(p, ARTS)
    assert res[0]["slug"] == "sampler-warmup-oom" and res[0]["line"] == 4321
    with open(p, encoding="utf-8") as fh:
        assert match_log(fh, ARTS)[0]["line"] == 4321
    assert match_log(str(p), ARTS) == res


def test_match_log_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(explain, "CHUNK_BYTES", 4096)
    p = tmp_path / "dmesg.log"
    nvrm = (
        "NVRM: The NVIDIA GPU 0000:02:00.0 (PCI ID: 10de:1b82)\nNVRM: installed in this system is not supported by "
        "open\nNVRM: nvidia.ko because it does not include the required GPU\nNVRM: System Processor (GSP)."
    )
    _write_log(p, 3000, 1500, nvrm)
    res = match_log(p, ARTS)
    assert res[0]["slug"] == "open-kernel-module" and res[0]["line"] == 1501
    lines = p.read_text().splitlines()
    assert match_log(iter(lines), ARTS)[0]["line"] == 1501


def test_log_with_repeated_template_but_different_numbers(tmp_path):
    # the fast path folds digits; a matching variant later in the log must still be found
    p = tmp_path / "w.log"
    with open(p, "w") as fh:
        for _ in range(200):
            fh.write("Found GPU0 NVIDIA GB10 which is of cuda capability 11.0.\n")
        fh.write("Found GPU0 NVIDIA GB10 which is of cuda capability 12.1.\n")
    res = match_log(p, ARTS)
    assert res and res[0]["slug"] == "sm121-torch-warning-benign" and res[0]["line"] == 201


def test_bad_input_does_not_raise(tmp_path):
    p = tmp_path / "bin.log"
    p.write_bytes(bytes(range(256)) * 100 + b"\nundefined symbol: cuTensorMapEncodeTiled\n")
    assert match_log(p, ARTS)[0]["slug"] == "driver-too-old"
    assert match_text(None, ARTS) == []  # type: ignore[arg-type]
    with pytest.raises(OSError):
        match_log(tmp_path / "missing.log", ARTS)


def test_heldout_accuracy():
    """Excerpts collected after the signatures were written; a guard against overfitting the main corpus."""
    held = [
        json.loads(line)
        for line in (ROOT / "tests" / "corpus" / "heldout.jsonl").read_text().splitlines()
        if line.strip()
    ]
    assert len(held) >= 10
    acc = sum(1 for i in held if top(i["text"]) == i["slug"]) / len(held)
    assert acc >= 0.8
