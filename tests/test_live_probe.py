"""The live probe runs torch in a subprocess: a torch that raises, crashes or hangs becomes a fact."""

import sys

import pytest

from bwdoctor.context import Context
from bwdoctor.probes import live

TORCHES = {
    "raises": "raise RuntimeError('CUDA driver initialization failed')\n",
    "segfaults": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    "hangs": "import time\ntime.sleep(60)\n",
    "no-gpu": (
        "__version__ = '2.13.0+cpu'\nclass version:\n    cuda = None\nclass cuda:\n"
        "    get_arch_list = staticmethod(lambda: [])\n    is_available = staticmethod(lambda: False)\n"
        "    device_count = staticmethod(lambda: 0)\n"
    ),
}


@pytest.mark.parametrize(
    "kind,status", [("raises", "import-failed"), ("segfaults", "crashed"), ("hangs", "timeout"), ("no-gpu", "ok")]
)
def test_live_probe_faults(tmp_path, monkeypatch, kind, status):
    pkg = tmp_path / "torch"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(TORCHES[kind])
    # the hanging torch only has to outlast the limit; the others must finish well inside theirs
    monkeypatch.setattr(live, "TIMEOUT", 1.0 if kind == "hangs" else 3.0)
    ctx = Context(env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, live=True)
    fact = live.live_torch(ctx, {"executable": sys.executable})
    assert fact["status"] == status, fact
    if kind == "raises":
        assert "CUDA driver initialization failed" in fact["error"]
    if kind == "no-gpu":
        assert fact["device_count"] == 0 and fact["devices"] == []


def test_live_probe_off_by_default():
    fact = live.live_torch(Context(), {"executable": sys.executable})
    assert "bwdoctor check --live" in fact.reason
