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


TARGETS = {
    "walk_bytes": walk_bytes,
    "scan_mutated_elf": scan_mutated_elf,
    "proc_parsers": proc_parsers,
    "arch_lists": arch_lists,
    "facts_loader": facts_loader,
    "kb_article": kb_article,
}
