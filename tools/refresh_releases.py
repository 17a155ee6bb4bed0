#!/usr/bin/env python3
"""Refresh bwdoctor/data/releases.jsonl: which GPU code each published wheel really holds, and its pins.

For every selected wheel on PyPI (linux x86_64 / aarch64, one Python tag per release) the tool opens the
wheel over HTTP Range requests (the zip central directory first, then each shared-object member, streamed and
inflated into a temporary file that is deleted right after), reads the fatbin entry headers of every .so with
bwdoctor's own reader (bwdoctor.elf.fatbin; nothing is decompressed inside the fatbin, nothing is imported or
run) and reads METADATA (version with its local tag, Requires-Dist pins). Only the .so members travel; the
Python sources and data files of a wheel are never downloaded. Rows are written one per line, sorted by
(package, version, platform), so a refresh is a reviewable diff. Rows of declared truth (the PyTorch index's
per-CUDA variants and flash-attn's GitHub wheels, which PyPI does not carry) live in
bwdoctor/data/releases_declared.jsonl, written by hand from the cited upstream build files; this tool keeps
them and only rewrites scanned rows.

Network is used by this tool only; bwdoctor never touches the network at run time.

  python tools/refresh_releases.py                         # the default subset (below), rewrites the table
  python tools/refresh_releases.py --package torch --versions 2.11.0 --print
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional
from urllib.parse import urljoin

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bwdoctor.domain.isa import ORDER  # noqa: E402
from bwdoctor.elf.fatbin import read_fatbins  # noqa: E402
from bwdoctor.probes.cpuisa import isa_needed  # noqa: E402

OUT = REPO / "bwdoctor" / "data" / "releases.jsonl"
PYPI = "https://pypi.org/pypi/{name}/json"
PLATFORMS = {"x86_64": "linux_x86_64", "aarch64": "linux_aarch64"}
CHUNK = 16 << 20
TIMEOUT = 120

# The default subset: the torch releases vLLM pins (bwdoctor/data/vllm_releases.json) that the acceptance
# scenarios need, the vLLM releases around them, and the latest release of each CUDA companion.
DEFAULT: Dict[str, List[str]] = {
    "torch": ["2.8.0", "2.9.1", "2.10.0", "2.11.0", "2.13.0", "2.14.0"],
    "vllm": ["0.11.0", "0.15.1", "0.19.1", "0.20.0", "0.32.0", "0.33.0"],
    "xformers": ["latest"],
    "bitsandbytes": ["latest"],
    "flashinfer-python": ["latest"],
    "sgl-kernel": ["latest"],
}
# Requires-Dist names whose pins matter to a plan.
PINNED = re.compile(r"^(torch|torchvision|torchaudio|xformers|flashinfer-python|triton|cuda-toolkit|nvidia-[a-z-]+)\b")


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file: reads become HTTP Range requests (read-ahead CHUNK)."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size, self.pos = url, size, 0
        self.buf_start, self.buf = 0, b""
        self.fetched = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def _get(self, start: int, end: int) -> bytes:
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={start}-{end - 1}"})
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            if resp.status != 206:
                raise OSError(f"{self.url}: no Range support (HTTP {resp.status})")
            data: bytes = resp.read()
        self.fetched += len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, max(0, self.size - self.pos))
        out = b""
        while len(out) < n:
            lo, hi = self.buf_start, self.buf_start + len(self.buf)
            if not lo <= self.pos < hi:  # a miss: fetch from here on (what the buffer held is never fetched twice)
                self.buf_start = self.pos
                self.buf = self._get(self.pos, min(self.size, self.pos + max(n - len(out), CHUNK)))
                if not self.buf:
                    break
            off = self.pos - self.buf_start
            piece = self.buf[off : off + n - len(out)]
            out += piece
            self.pos += len(piece)
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def pypi_files(name: str) -> Dict[str, Any]:
    url = PYPI.format(name=name)
    with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
        doc: Dict[str, Any] = json.load(resp)
    for files in doc["releases"].values():
        for f in files:
            f["url"] = urljoin(url, f["url"])
    return doc


def pick_wheels(files: Iterable[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """One Linux wheel per platform: cp312 first, then abi3 / py3-none (the GPU code is the same per tag)."""
    best: Dict[str, tuple] = {}
    for f in files:
        fn = f["filename"]
        if not fn.endswith(".whl"):
            continue
        if fn.endswith("-none-any.whl"):  # a pure wheel: the same file for every platform
            plats = list(PLATFORMS.values())
        elif "linux" in fn:
            plats = [p for m, p in PLATFORMS.items() if fn.endswith(f"_{m}.whl")]
        else:
            continue
        rank = 0 if "-cp312-" in fn else 1 if "abi3" in fn or "-py3-none-" in fn else 2
        for plat in plats:
            if plat not in best or rank < best[plat][0]:
                best[plat] = (rank, f)
    return {p: v[1] for p, v in best.items()}


def python_tags(files: Iterable[Dict[str, Any]], platform: str) -> List[str]:
    """The Python tags (cp312, cp38-abi3 as cp38.abi3...) of a release's wheels for one platform."""
    machine = platform.split("_", 1)[1]
    tags = set()
    for f in files:
        parts = f["filename"][:-4].split("-") if f["filename"].endswith(".whl") else []
        if len(parts) >= 5 and (parts[-1] == "any" or parts[-1].endswith(machine) and "linux" in parts[-1]):
            tags.add(parts[-3] if parts[-2] != "abi3" else f"{parts[-3]}-abi3")
    return sorted(tags)


def applies(requirement: str, machine: str) -> bool:
    """Whether a Requires-Dist line's environment marker holds on Linux on this machine (x86_64 / aarch64)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False
    env = {"platform_system": "Linux", "sys_platform": "linux", "platform_machine": machine, "extra": ""}
    return req.marker is None or bool(req.marker.evaluate(env))


def cuda_of(version: str, requires: List[str], machine: str = "x86_64") -> Optional[str]:
    """The CUDA release a wheel was built for: its +cuXYZ tag, else the CUDA runtime it requires."""
    m = re.search(r"\+cu(\d+)(\d)$", version)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    for r in requires:
        m = re.match(r"^(?:nvidia-cuda-runtime(?:-cu\d+)?|cuda-toolkit(?:\[[^\]]*\])?)\s*==\s*(\d+)\.(\d+)", r)
        if m and applies(r, machine):
            return f"{m.group(1)}.{m.group(2)}"
    return None


def scan_wheel(package: str, version: str, platform: str, f: Dict[str, Any], tmpdir: Path) -> Dict[str, Any]:
    t0 = time.monotonic()
    rf = RangeFile(f["url"], int(f["size"]))
    zf = zipfile.ZipFile(rf)  # type: ignore[arg-type]
    requires: List[str] = []
    meta_version = version
    requires_python: Optional[str] = None
    files: List[Dict[str, Any]] = []
    elf_files = 0
    isa: Optional[str] = None  # the highest x86-64 level a library's GNU property note declares
    isa_file: Optional[str] = None
    for info in zf.infolist():
        name = info.filename
        if name.endswith(".dist-info/METADATA"):
            text = zf.read(info).decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith("Version: "):
                    meta_version = line[9:].strip()
                if line.startswith("Requires-Python: "):
                    requires_python = line[17:].strip()
                if line.startswith("Requires-Dist: "):
                    req = line[15:].strip()
                    if PINNED.match(req) and "extra ==" not in req:
                        requires.append(req)
            continue
        base = name.rsplit("/", 1)[-1]
        if not (base.endswith(".so") or ".so." in base) or info.file_size == 0:
            continue
        tmp = tmpdir / "member.so"
        with zf.open(info) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
        scan = read_fatbins(tmp)
        level = isa_needed(str(tmp))
        tmp.unlink()
        if level in ORDER and (isa is None or ORDER.index(level) > ORDER.index(isa)):
            isa, isa_file = level, name
        if scan.error == "not an ELF file":
            continue
        elf_files += 1
        item = scan.to_json()
        if item["entries"] or item["error"]:
            files.append(
                {"path": name, "fatbin": item["fatbin"], "relfatbin": item["relfatbin"], "error": item["error"]}
            )
    files.sort(key=lambda i: i["path"])
    return {
        "package": package,
        "version": meta_version,
        "platform": platform,
        "cuda": cuda_of(meta_version, requires, platform.split("_", 1)[1]) if files else None,
        "index_url": None,
        "kind": "scanned",
        "source": f"https://pypi.org/project/{package}/{version}/#files",
        "wheel": {"filename": f["filename"], "sha256": f["digests"]["sha256"], "size": int(f["size"])},
        "requires": sorted(requires),
        "requires_python": requires_python,
        "elf_files": elf_files,
        "isa": {"level": isa, "file": isa_file} if isa else None,
        "files": files,
        "scan": {"seconds": round(time.monotonic() - t0, 1), "bytes_fetched": rf.fetched},
    }


def key(row: Dict[str, Any]) -> tuple:
    from packaging.version import InvalidVersion, Version

    try:
        v: Any = Version(row["version"])
    except InvalidVersion:
        v = Version("0")
    return (row["package"], v, row["platform"], row.get("cuda") or "")


def write(rows: List[Dict[str, Any]], path: Path) -> None:
    rows = sorted(rows, key=key)
    path.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", action="append", help="only these packages (default: the default subset)")
    ap.add_argument("--versions", nargs="*", help="versions of --package (or 'latest')")
    ap.add_argument("--print", action="store_true", help="print the rows; do not write the table")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    wanted = {p: (args.versions or DEFAULT.get(p, ["latest"])) for p in (args.package or DEFAULT)}
    out = Path(args.out)
    old = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    new: List[Dict[str, Any]] = []
    t0 = time.monotonic()
    fetched = 0
    with tempfile.TemporaryDirectory(prefix="bwdoctor-refresh-") as td:
        for package, versions in wanted.items():
            doc = pypi_files(package)
            for v in versions:
                version = doc["info"]["version"] if v == "latest" else v
                wheels = pick_wheels(doc["releases"].get(version, []))
                if not wheels:
                    print(f"{package} {version}: no Linux wheel on PyPI", file=sys.stderr)
                for platform, f in sorted(wheels.items()):
                    row = scan_wheel(package, version, platform, f, Path(td))
                    row["python_tags"] = python_tags(doc["releases"].get(version, []), platform)
                    fetched += row["scan"]["bytes_fetched"]
                    print(
                        f"{package} {row['version']} {platform}: {len(row['files'])} of {row['elf_files']} ELF files "
                        f"with GPU code, {row['scan']['bytes_fetched'] >> 20} of {f['size'] >> 20} MiB fetched, "
                        f"{row['scan']['seconds']} s",
                        file=sys.stderr,
                    )
                    new.append(row)
    if args.print:
        for r in new:
            print(json.dumps(r, sort_keys=True))
        return 0
    replaced = {(r["package"], r["version"], r["platform"]) for r in new}
    keep = [r for r in old if (r["package"], r["version"], r["platform"]) not in replaced]
    write(keep + new, out)
    print(
        f"{len(new)} wheels scanned, {len(keep) + len(new)} rows written to {out.relative_to(REPO)}, "
        f"{fetched >> 20} MiB fetched, {time.monotonic() - t0:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
