"""The release table: one row per published wheel (package, version, platform, CUDA variant) with the GPU code
its libraries hold. Rows are `"kind": "scanned"` (read from the wheel by tools/refresh_releases.py with
bwdoctor's fatbin reader) or `"kind": "declared"` (taken from the upstream build file a row cites, for wheels
that are not on PyPI: the PyTorch index's per-CUDA variants)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Dict, Iterable, List, Optional

from ..domain.versions import version_key
from ..records import dataclass, field

TABLE_FILES = ("releases.jsonl", "releases_declared.jsonl")
Row = Dict[str, Any]


def _read_rows(text: str) -> List[Row]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            row = json.loads(line)
            if isinstance(row, dict) and isinstance(row.get("package"), str):
                out.append(_expand_declared(row))
    return out


@dataclass
class ReleaseTable:
    """Rows of the table, and the torch pin of each vLLM release (bwdoctor/data/vllm_releases.json)."""

    rows: List[Row] = field(default_factory=list)
    vllm_pins: Dict[str, str] = field(default_factory=dict)

    def find(self, package: str, version: Optional[str] = None, platform: Optional[str] = None) -> List[Row]:
        """Rows of a package (and version, platform), newest version first, scanned before declared."""
        hits = [
            r
            for r in self.rows
            if r["package"] == package
            and (version is None or _public(r["version"]) == version)
            and (platform is None or r.get("platform") == platform)
        ]
        return sorted(hits, key=lambda r: (version_key(r["version"]), r.get("kind") == "scanned"), reverse=True)

    def versions(self, package: str) -> List[str]:
        """Public versions of a package found in the table, newest first."""
        return sorted({_public(r["version"]) for r in self.rows if r["package"] == package}, key=version_key)[::-1]

    def vllm_versions(self) -> List[str]:
        """Every vLLM release the table or the pins know, newest first."""
        return sorted(set(self.versions("vllm")) | set(self.vllm_pins), key=version_key)[::-1]

    def torch_pin(self, vllm_version: str, platform: Optional[str] = None) -> Optional[str]:
        """The torch==X a vLLM release pins: its scanned Requires-Dist, else vllm_releases.json."""
        for r in self.find("vllm", vllm_version, platform):
            for req in r.get("requires") or []:
                if req.replace(" ", "").startswith("torch=="):
                    return req.replace(" ", "")[len("torch==") :].split(";")[0]
        return self.vllm_pins.get(vllm_version)

    def counts(self) -> Dict[str, int]:
        return {
            "rows": len(self.rows),
            "scanned": sum(r.get("kind") == "scanned" for r in self.rows),
            "declared": sum(r.get("kind") == "declared" for r in self.rows),
        }


def _expand_declared(row: Row) -> Row:
    """A declared row's arch list as the `files` its wheel would hold (cubins per X.Y, PTX for +PTX), so that
    declared and scanned rows go through the same verdict (domain.compat)."""
    if row.get("files") is not None or not isinstance(row.get("arch_list"), str):
        return row
    from ..archlist import ArchListError, parse_torch_arch_list

    try:
        entries = parse_torch_arch_list(row["arch_list"])
    except ArchListError:
        return dict(row, files=[])
    if entries is None:  # "native": resolved only on the build machine, nothing declared here
        return dict(row, files=[])
    elf = [e["arch"] for e in entries if e["sass"]]
    ptx = [e["arch"].replace("sm_", "compute_") for e in entries if e["ptx"]]
    item: Dict[str, Any] = {
        "path": f"{row.get('library') or row['package']} (declared)",
        "fatbin": {"elf": elf, "ptx": ptx},
        "relfatbin": {"elf": [], "ptx": []},
        "error": None,
    }
    return dict(row, files=[item])


def _public(version: str) -> str:
    return version.split("+", 1)[0]


def load_table(extra_rows: Iterable[Row] = ()) -> ReleaseTable:
    """The table shipped with bwdoctor (bwdoctor/data), plus any extra rows (tests)."""
    data = resources.files("bwdoctor.data")
    rows: List[Row] = []
    for name in TABLE_FILES:
        f = data.joinpath(name)
        if f.is_file():
            rows += _read_rows(f.read_text(encoding="utf-8"))
    rows += list(extra_rows)
    pins: Dict[str, str] = {}
    vf = data.joinpath("vllm_releases.json")
    if vf.is_file():
        for rel in json.loads(vf.read_text(encoding="utf-8")).get("releases", []):
            if isinstance(rel, dict) and rel.get("version") and rel.get("torch"):
                pins[str(rel["version"])] = str(rel["torch"])
    return ReleaseTable(rows, pins)
