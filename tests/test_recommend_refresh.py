"""The refresh tool reads a real wheel over HTTP Range requests: the central directory, then each .so member,
with bwdoctor's fatbin reader. The wheel is built here from nvcc-made fixtures (tests/fixtures/cuda) and served
from localhost by a server that honours Range, as PyPI's file host does."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import os
import threading
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CUDA = REPO / "tests" / "fixtures" / "cuda"


def _tool():
    spec = importlib.util.spec_from_file_location("refresh_releases", REPO / "tools" / "refresh_releases.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.server.root) / self.path.lstrip("/")
        data = path.read_bytes()
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        if not rng:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        lo, hi = rng.split("=", 1)[1].split("-")
        lo, hi = int(lo), min(int(hi), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {lo}-{hi}/{len(data)}")
        self.send_header("Content-Length", str(hi - lo + 1))
        self.end_headers()
        self.wfile.write(data[lo : hi + 1])


@pytest.fixture()
def served(tmp_path):
    whl = tmp_path / "demo-1.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(CUDA / "sm120.so", "demo/lib/libdemo_cuda.so")
        zf.write(CUDA / "ptx80.so", "demo/_ops.abi3.so")
        zf.writestr("demo/data.bin", os.urandom(300_000))  # never fetched: not a shared object
        zf.writestr(
            "demo-1.0+cu128.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: demo\nVersion: 1.0+cu128\nRequires-Dist: torch==2.9.1\n"
            "Requires-Dist: nvidia-cuda-runtime-cu12==12.8.90; platform_system == 'Linux'\n"
            "Requires-Dist: pytest; extra == 'test'\n",
        )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    server.root = str(tmp_path)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    _RangeHandler.requests = []
    yield whl, f"http://127.0.0.1:{server.server_address[1]}/{whl.name}"
    server.shutdown()


def test_scan_wheel_over_range_requests(served, tmp_path):
    whl, url = served
    tool = _tool()
    tool.CHUNK = 64 << 10  # small read-ahead so the skipped member is visibly not fetched
    data = whl.read_bytes()
    f = {"url": url, "size": len(data), "filename": whl.name, "digests": {"sha256": hashlib.sha256(data).hexdigest()}}
    work = tmp_path / "work"
    work.mkdir()
    row = tool.scan_wheel("demo", "1.0", "linux_x86_64", f, work)
    assert row["version"] == "1.0+cu128"
    assert row["cuda"] == "12.8"  # the +cu128 local tag
    assert row["requires"] == ["nvidia-cuda-runtime-cu12==12.8.90; platform_system == 'Linux'", "torch==2.9.1"]
    files = {i["path"]: i for i in row["files"]}
    assert files["demo/lib/libdemo_cuda.so"]["fatbin"]["elf"] == ["sm_120"]
    assert files["demo/_ops.abi3.so"]["fatbin"]["ptx"] == ["compute_80"]
    assert row["elf_files"] == 2
    assert row["wheel"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert all(r and r.startswith("bytes=") for r in _RangeHandler.requests)  # every read was a Range request
    assert row["scan"]["bytes_fetched"] < len(data)  # the 300 kB Python source was not downloaded
    assert list(work.iterdir()) == []  # the temporary member is deleted


def test_cuda_of_reads_the_runtime_pin_and_the_local_tag():
    tool = _tool()
    assert tool.cuda_of("2.9.1", ["nvidia-cuda-runtime-cu12==12.8.90; platform_system == 'Linux'"]) == "12.8"
    assert tool.cuda_of("2.15.0", ['cuda-toolkit[cublas,cudart]==13.2.2; platform_system == "Linux"']) == "13.2"
    assert tool.cuda_of("0.5.1+cu130", []) == "13.0"
    assert tool.cuda_of("0.11.0", ["torch==2.8.0"]) is None


def test_pick_wheels_prefers_cp312_then_abi3():
    tool = _tool()
    files = [
        {"filename": "x-1-cp311-cp311-manylinux_2_28_x86_64.whl"},
        {"filename": "x-1-cp312-cp312-manylinux_2_28_x86_64.whl"},
        {"filename": "x-1-cp38-abi3-manylinux_2_28_aarch64.whl"},
        {"filename": "x-1-cp312-cp312-win_amd64.whl"},
    ]
    picked = tool.pick_wheels(files)
    assert picked["linux_x86_64"]["filename"].startswith("x-1-cp312")
    assert picked["linux_aarch64"]["filename"].endswith("aarch64.whl")
    assert set(picked) == {"linux_x86_64", "linux_aarch64"}
