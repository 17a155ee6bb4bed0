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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refresh_releases import RangeFile  # noqa: E402  (one ranged-read view of a remote wheel for both tools)

INDEX = "https://pypi.org/simple/torch/"


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
