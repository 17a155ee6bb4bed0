"""Record what torch's allocator libraries hold (tests/fixtures/seeds/torch-alloc-strings.json).

For each torch version given, find the cp311 manylinux x86_64 wheel on PyPI (simple API, JSON), read ONLY the
torch/lib/libc10.so and libc10_cuda.so members with HTTP range requests (the wheels are 0.5-0.9 GB), and store
bwdoctor.domain.allocconf.library_strings of each .rodata with the wheel's and the member's sha256.

    python tools/gen_torch_alloc_strings.py 2.7.1 2.8.0 2.9.1 2.10.0 2.11.0 \
        > tests/fixtures/seeds/torch-alloc-strings.json
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import urllib.request
import zipfile

from bwdoctor.domain.allocconf import library_strings
from bwdoctor.elf.libversion import read_rodata

INDEX = "https://pypi.org/simple/torch/"


class RangeFile(io.RawIOBase):
    """A read-only seekable view of a remote file, fetched with Range requests."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size, self.pos = url, size, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = off if whence == 0 else self.pos + off if whence == 1 else self.size + off
        return self.pos

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = min(len(b), self.size - self.pos)
        if n <= 0:
            return 0
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{self.pos + n - 1}"})
        data = urllib.request.urlopen(req, timeout=120).read()
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)


def main(versions: list) -> None:
    req = urllib.request.Request(INDEX, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    files = json.load(urllib.request.urlopen(req, timeout=120))["files"]
    out = {}
    for v in versions:
        f = next(
            f
            for f in files
            if f["filename"].startswith(f"torch-{v}-cp311-cp311-manylinux") and f["filename"].endswith("x86_64.whl")
        )
        zf = zipfile.ZipFile(io.BufferedReader(RangeFile(f["url"], f["size"]), buffer_size=1 << 20))
        rec = {"wheel": f["filename"], "wheel_sha256": f["hashes"]["sha256"], "libraries": {}}
        for name in ("libc10.so", "libc10_cuda.so"):
            data = zf.read(f"torch/lib/{name}")
            with tempfile.NamedTemporaryFile(suffix=name) as tmp:
                tmp.write(data)
                tmp.flush()
                strings = library_strings(read_rodata(tmp.name))
            rec["libraries"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), **strings}
        out[v] = rec
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:] or os.environ.get("TORCH_VERSIONS", "2.9.1").split())
