"""Fuzz targets: each takes bytes and must return without an unexpected exception.

Used by the coverage-guided campaign (benchmarks/fuzz.py, atheris) and the CI smoke test
(tests/test_fuzz_smoke.py, hypothesis). Expected errors (the parser's own error type, or a
value reported in its result) are fine; anything else is a crasher.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

from bwdoctor import archlist, factsfile, knowledge
from bwdoctor.domain import versions
from bwdoctor.elf import fatbin
from bwdoctor.probes import parse, pystack, toolkit

HERE = Path(__file__).resolve().parent
SEED_SO = sorted((HERE / "fixtures" / "cuda").glob("*.so"))
_TMP = tempfile.mkdtemp(prefix="bwfuzz-")


def walk_bytes(data: bytes) -> None:
    """The container/entry walker on arbitrary section bytes."""
    out = []
    try:
        fatbin.walk_section(data, ".nv_fatbin", 0, len(data), out)  # mmap slices are bytes too
    except fatbin.FatbinFormatError:
        pass


def _mutate_file(data: bytes) -> str:
    """A real fixture with `data` spliced in at an offset the data chooses (hits ELF and fatbin headers)."""
    if not data:
        data = b"\0"
    seed = SEED_SO[data[0] % len(SEED_SO)].read_bytes()
    off = struct.unpack("<I", (data[1:5] + b"\0\0\0\0")[:4])[0] % max(1, len(seed))
    blob = seed[:off] + data[5:] + seed[off + len(data[5:]) :]
    if data[0] & 0x80:
        blob = blob[: off + 1]  # also truncated
    path = os.path.join(_TMP, "f.so")
    with open(path, "wb") as fh:
        fh.write(blob)
    return path


def scan_mutated_elf(data: bytes) -> None:
    """The whole file scanner (pyelftools section lookup + fatbin walk) on a mutated real .so."""
    item = fatbin.scan_file(_mutate_file(data))
    assert isinstance(item, dict) and ("error" in item)


def proc_parsers(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    parse.parse_proc_modules(text)
    parse.parse_driver_version(text)
    parse.parse_gpu_information(text)
    parse.parse_os_release(text)
    parse.parse_cpuinfo(text)
    parse.parse_meminfo(text)
    versions.kernel_version_tuple(text)
    versions.driver_version_tuple(text)
    toolkit.parse_release(text)
    toolkit.parse_gpu_arch_list(text)
    toolkit.parse_ptxas_help(text)
    pystack.parse_torch_version_py(text)


def arch_lists(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for fn in (archlist.parse_torch_arch_list, archlist.parse_cmake_architectures):
        try:
            entries = fn(text)
        except archlist.ArchListError:
            continue
        for t in ("sm_120", "sm_90", "sm_121"):
            archlist.covers(entries or [], t)


def facts_loader(data: bytes) -> None:
    path = os.path.join(_TMP, "facts.json")
    if data[:1] == b"{":
        body = data
    else:
        try:
            body = json.dumps(
                {"schema": "bwdoctor.facts/1", "facts": json.loads(data.decode("utf-8", "replace"))}
            ).encode()
        except (ValueError, RecursionError):
            body = data
    with open(path, "wb") as fh:
        fh.write(body)
    try:
        factsfile.load(path)
    except factsfile.FactsFileError:
        pass


def kb_article(data: bytes) -> None:
    try:
        knowledge.parse_article(data.decode("utf-8", "replace"))
    except knowledge.ArticleError:
        pass


def _hostile_json(data: bytes, seed: dict, key: str) -> bytes:
    """`seed` with `key` replaced by a value the data picks: NaN, Infinity, 1e30, a huge int, a string, a list,
    deep nesting, or the data itself as JSON when it parses."""
    pick = data[0] % 9 if data else 0
    rest = data[1:].decode("utf-8", "replace")
    values = ["NaN", "Infinity", "-Infinity", "1e30", str(10**60), json.dumps(rest), "[" * 2000 + "]" * 2000, "null"]
    if pick < len(values):
        value = values[pick]
    else:
        value = rest
    body = json.dumps(seed)
    return body.replace(json.dumps(seed[key]), value, 1).encode() if key in seed else body.encode()


def facts_hostile(data: bytes) -> None:
    """A real-shaped facts file with NaN/Infinity/deep nesting/garbage in one fact: a clear error or facts."""
    seed = {"schema": "bwdoctor.facts/1", "facts": {"kernel_release": "6.8.0", "gpus": [{"cc": [12, 0]}]}}
    path = os.path.join(_TMP, "facts-hostile.json")
    raw = _hostile_json(data, seed, "facts")
    with open(path, "wb") as fh:
        fh.write(raw)
    try:
        facts = factsfile.load(path)
    except factsfile.FactsFileError:
        return
    json.dumps(facts, allow_nan=False, default=str)  # what was accepted can be written back as strict JSON


MODEL_SEED = HERE / "fixtures" / "capacity" / "qwen3-14b" / "config.json"


def model_config(data: bytes) -> None:
    """A model directory whose config.json is hostile (NaN, 1e30, strings, nesting, garbage): ModelError or
    facts, never another exception; reading is bounded."""
    from bwdoctor.capacity.model import ModelError, load_model

    seed = json.loads(MODEL_SEED.read_text())
    keys = sorted(seed)
    key = keys[data[1] % len(keys)] if len(data) > 1 else "num_hidden_layers"
    d = os.path.join(_TMP, "model")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "wb") as fh:
        fh.write(data[2:] if data[:1] == b"{" else _hostile_json(data, seed, key))
    try:
        load_model(d)
    except ModelError:
        pass


def serve_config(data: bytes) -> None:
    """Every serve-config reader on arbitrary bytes: a list of configs (errors inside), never an exception."""
    from bwdoctor.serve.readers import read_config

    for name, kind in (
        ("docker-compose.yaml", "compose"),
        ("vllm.service", "systemd"),
        ("run.sh", "shell"),
        (".env", "dotenv"),
        ("k8s.yaml", "k8s"),
        ("serve.yaml", "vllm-yaml"),
    ):
        got = read_config(name, data, kind=kind)
        assert isinstance(got, list)


def input_reader(data: bytes) -> None:
    """The one reader of logs and pasted text, through a regular file and a pipe (a writer thread): bounded by
    its limit, read once, a note when cut."""
    import threading

    from bwdoctor import fileio

    limit = 64 + (data[0] if data else 0)
    path = os.path.join(_TMP, "input.log")
    with open(path, "wb") as fh:
        fh.write(data)
    got = fileio.read_input(path, limit)
    assert len(got.data) <= limit + 1 and (got.note is None) == (len(data) <= limit)
    r, w = os.pipe()

    def write() -> None:
        try:
            os.write(w, data)
        finally:
            os.close(w)

    t = threading.Thread(target=write)
    t.start()
    try:
        got = fileio.read_input(f"/proc/self/fd/{r}", limit, wait=5)
    except fileio.NoData:
        assert not data
    else:
        assert len(got.data) <= limit + 1
    finally:
        t.join()
        os.close(r)


def wheel_reader(data: bytes) -> None:
    """A wheel whose bytes are a real wheel with `data` spliced in (damaged zips, lying sizes), or whose one
    member is `data`: its members or one of the wheel errors, never another exception."""
    import io
    import zipfile

    from bwdoctor.probes import artifacts

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/lib.so", SEED_SO[0].read_bytes()[:64] + data)
        zf.writestr("pkg/other.so", data)
    blob = buf.getvalue()
    if data[:1] and data[0] & 1:  # damage the zip itself at an offset the data chooses
        off = (data[1] if len(data) > 1 else 0) * 7 % max(1, len(blob))
        blob = blob[:off] + data[2:] + blob[off + len(data[2:]) :]
    path = Path(_TMP) / "x-1.0-py3-none-any.whl"
    path.write_bytes(blob)
    try:
        out = artifacts._wheel(path)
    except artifacts.WHEEL_ERRORS:
        return
    assert all("error" in f for f in out["files"])


TARGETS = {
    "walk_bytes": walk_bytes,
    "scan_mutated_elf": scan_mutated_elf,
    "proc_parsers": proc_parsers,
    "arch_lists": arch_lists,
    "facts_loader": facts_loader,
    "kb_article": kb_article,
    "facts_hostile": facts_hostile,
    "serve_config": serve_config,
    "input_reader": input_reader,
    "wheel_reader": wheel_reader,
}

# Targets that find crashes someone is fixing now: run them with `benchmarks/fuzz.py --only NAME`; each moves into
# TARGETS (and so into the CI smoke) once its fix lands. model_config: a config.json whose "architectures" is a
# number, or whose sizes are NaN/1e30, raises TypeError or loops in bwdoctor/capacity/model.py (issue 19 point 5).
PENDING = {
    "model_config": model_config,
}
