"""The fault matrix: prepared broken environments the real CLI must survive.

Each case gives CLI arguments and environment; the runner asserts the requested format is valid, no
traceback reaches stderr, the exit code is one of the documented ones, and the run ends in time.
Used by tests/test_fault_matrix.py and printed as a table by benchmarks/fault_matrix.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
H100 = HERE / "fixtures" / "roots" / "h100-box"
FAKE_NVML = r"""
#include <stdlib.h>
#include <unistd.h>
int nvmlInit_v2(void) { if (getenv("FAKE_NVML_HANG")) sleep(600); return 9; }
int nvmlInit(void) { return nvmlInit_v2(); }
int nvmlInitWithFlags(unsigned int f) { (void)f; return nvmlInit_v2(); }
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int r) { (void)r; return "Driver Not Loaded"; }
"""


def fake_nvml(work: Path):
    """Build a libnvidia-ml.so.1 whose nvmlInit fails (or hangs with FAKE_NVML_HANG=1); None without gcc."""
    d = work / "fake-nvml"
    if (d / "libnvidia-ml.so.1").exists():
        return d
    if not shutil.which("gcc"):
        return None
    d.mkdir(parents=True, exist_ok=True)
    (d / "fake_nvml.c").write_text(FAKE_NVML)
    res = subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(d / "libnvidia-ml.so.1"), str(d / "fake_nvml.c")],
        capture_output=True,
        timeout=60,
    )
    return d if res.returncode == 0 else None


def hanging_tool(work: Path, name: str) -> Path:
    d = work / f"hang-{name}"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text("#!/bin/sh\nexec sleep 600\n")  # exec: the kill at the timeout ends the sleep too
    (d / name).chmod(0o755)
    return d


def broken_site(work: Path) -> Path:
    """A site-packages whose torch RECORD lists a FIFO, a symlink loop, an unreadable file, a 0-byte
    file and a truncated ELF where .so files should be, next to a torch/version.py that is garbage."""
    site = work / "broken-site"
    lib = site / "torch" / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    di = site / "torch-2.9.1.dist-info"
    di.mkdir(exist_ok=True)
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.9.1\n")
    if not (lib / "libfifo.so").exists():
        os.mkfifo(lib / "libfifo.so")
    for a, b in (("libloop_a.so", "libloop_b.so"), ("libloop_b.so", "libloop_a.so")):
        if not os.path.lexists(lib / a):
            os.symlink(lib / b, lib / a)
    (lib / "libempty.so").write_bytes(b"")
    (lib / "libtrunc.so").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 20)
    (lib / "libsecret.so").write_bytes(b"\x7fELF" + b"\0" * 100)
    (lib / "libsecret.so").chmod(0)
    (site / "torch" / "version.py").write_bytes(b"\xff\xfe__version__ = \x00\x00")
    names = ["libfifo.so", "libloop_a.so", "libloop_b.so", "libempty.so", "libtrunc.so", "libsecret.so"]
    (di / "RECORD").write_text("".join(f"torch/lib/{n},,\n" for n in names) + "torch/version.py,,\n")
    return site


def venv_python(work: Path, site: Path) -> Path:
    """An interpreter whose sys.path includes `site` (a venv with a .pth file)."""
    v = work / "venv"
    if not (v / "bin" / "python").exists():
        import venv

        venv.create(v, with_pip=False)
    sp = next((v / "lib").glob("python3*/site-packages"))
    (sp / "broken.pth").write_text(str(site) + "\n")
    return v / "bin" / "python"


def facts_files(work: Path) -> dict:
    d = work / "facts"
    d.mkdir(exist_ok=True)
    files = {
        "not-json": "{oops",
        "wrong-schema": '{"schema": "x/1", "facts": {}}',
        "wrong-types": json.dumps(
            {
                "schema": "bwdoctor.facts/1",
                "facts": {
                    "gpus": [{"cc": "twelve"}, 7],
                    "kernel_modules": [None, 3],
                    "environment": {"CUDA_VISIBLE_DEVICES": 5},
                    "targets": ["sm_120"],
                    "nvidia_driver": {"version": None, "flavour": 1},
                },
            }
        ),
    }
    out = {}
    for name, text in files.items():
        (d / f"{name}.json").write_text(text)
        out[name] = d / f"{name}.json"
    huge = d / "huge.json"
    with open(huge, "wb") as fh:  # 1 GB, sparse: the size check must refuse it before reading
        fh.truncate(1 << 30)
    out["huge"] = huge
    return out


def tree_with_environ(work: Path, name: str, env: dict) -> Path:
    """A copy of the H100 tree whose first process recorded this environment (/proc/1/environ, NUL-separated):
    under --root, the inspected machine's environment is the tree's, never the shell's."""
    import shutil

    tree = work / name
    if not tree.exists():
        shutil.copytree(H100, tree, symlinks=True)
        (tree / "proc" / "1").mkdir(parents=True, exist_ok=True)
        (tree / "proc" / "1" / "environ").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items()))
    return tree


def cases(work: Path) -> list:
    """(name, argv, extra env, expected exit codes, time budget s, format)."""
    nvml = fake_nvml(work)
    site = broken_site(work)
    py = venv_python(work, site)
    ff = facts_files(work)
    out = [
        ("no NVIDIA driver (this machine)", ["check"], {}, {0, 1}, 15, "json"),
        (
            "CUDA_VISIBLE_DEVICES=-1 on the H100 tree",
            ["check", "--root", str(tree_with_environ(work, "cvd-minus-1", {"CUDA_VISIBLE_DEVICES": "-1"}))],
            {},
            {1},
            15,
            "json",
        ),
        (
            "CUDA_VISIBLE_DEVICES='' on the H100 tree",
            ["check", "--root", str(tree_with_environ(work, "cvd-empty", {"CUDA_VISIBLE_DEVICES": ""}))],
            {},
            {1},
            15,
            "json",
        ),
        (
            "nvcc on PATH hangs",
            ["check", "--select", "stack", "--target", "sm_120"],
            {"PATH": f"{hanging_tool(work, 'nvcc')}:/usr/bin:/bin", "BWDOCTOR_NVCC_SEARCH": "path"},
            {0, 1},
            25,
            "json",
        ),
        (
            "nvidia-smi on PATH hangs",
            ["check"],
            {"PATH": f"{hanging_tool(work, 'nvidia-smi')}:/usr/bin:/bin"},
            {0, 1},
            15,
            "json",
        ),
        (
            "FIFO, symlink loop, unreadable, 0-byte, truncated .so; garbage version.py",
            ["check", "--python", str(py), "--target", "sm_120"],
            {},
            {0, 1},
            20,
            "json",
        ),
        ("cubins on the broken files", ["cubins", str(site / "torch" / "lib")], {}, {0, 1}, 15, "json"),
        ("facts file not JSON", ["check", "--facts", str(ff["not-json"])], {}, {2}, 10, "stderr"),
        ("facts file of another schema", ["check", "--facts", str(ff["wrong-schema"])], {}, {2}, 10, "stderr"),
        ("facts file with wrong types", ["check", "--facts", str(ff["wrong-types"])], {}, {0, 1, 3}, 10, "json"),
        ("facts file of 1 GB", ["check", "--facts", str(ff["huge"])], {}, {2}, 10, "stderr"),
        (
            "--live with a torch whose import hangs",
            ["check", "--live", "--select", "live-kernel-launch"],
            {"PYTHONPATH": str(_fake_torch(work, "hangs")), "BWDOCTOR_LIVE_TIMEOUT": "3"},
            {1},
            20,
            "json",
        ),
        (
            "--live with a torch that segfaults",
            ["check", "--live", "--select", "live-kernel-launch"],
            {"PYTHONPATH": str(_fake_torch(work, "segv"))},
            {1},
            20,
            "json",
        ),
    ]
    out += hostile_input_cases(work)
    if nvml:
        out += [
            ("NVML present but failing", ["check"], {"LD_LIBRARY_PATH": str(nvml)}, {0, 1}, 15, "json"),
            # a hung NVML is a probe that timed out: its checks could not run, so never exit 0
            ("NVML init hangs", ["check"], {"LD_LIBRARY_PATH": str(nvml), "FAKE_NVML_HANG": "1"}, {1, 3}, 20, "json"),
        ]
    return out


def _fake_torch(work: Path, kind: str) -> Path:
    d = work / f"torch-{kind}"
    (d / "torch").mkdir(parents=True, exist_ok=True)
    body = {
        "hangs": "import time\ntime.sleep(600)\n",
        "segv": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    }[kind]
    (d / "torch" / "__init__.py").write_text(body)
    return d


def run_case(case, as_user=None):
    """Run one case; returns a dict with rc, seconds, problems (empty = the case holds)."""
    name, argv, env, codes, budget, fmt = case
    e = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES",)}
    e.update({"NO_COLOR": "1", "BWDOCTOR_PLUGINS": ""}, **env)
    if "PYTHONPATH" in env and os.environ.get("PYTHONPATH"):  # keep bwdoctor importable where it is on PYTHONPATH
        e["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + os.environ["PYTHONPATH"]
    full = [sys.executable, "-m", "bwdoctor", *argv]
    if fmt == "json" and argv[0] in ("check", "cubins"):
        full += ["--format", "json"]
    if as_user is not None:
        full = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", *full]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(full, capture_output=True, text=True, timeout=budget + 30, env=e, cwd="/")
        rc, out, err = res.returncode, res.stdout, res.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = "hang", "", ""
    secs = time.perf_counter() - t0
    problems = []
    if rc not in codes:
        problems.append(f"exit {rc}, expected {sorted(codes)}")
    if secs > budget:
        problems.append(f"took {secs:.1f} s > {budget} s")
    if "Traceback" in err:
        problems.append("traceback on stderr")
    first = ""
    if fmt == "json" and rc != "hang":
        try:
            doc = json.loads(out)
            bad = [f for f in doc.get("findings", []) if f.get("status") in ("fail", "error")]
            first = f"{bad[0]['id']} {bad[0]['status']}" if bad else "no failure"
        except ValueError:
            problems.append("stdout is not JSON")
    else:
        first = (err.strip().splitlines() or [""])[-1][:70]
    return {"name": name, "rc": rc, "seconds": round(secs, 2), "first": first, "problems": problems}


def _own_venv(work: Path, name: str, site: Path) -> Path:
    """An interpreter of its own (not the shared `venv`) whose sys.path includes `site`."""
    v = work / name
    if not (v / "bin" / "python").exists():
        import venv

        venv.create(v, with_pip=False)
    sp = next((v / "lib").glob("python3*/site-packages"))
    (sp / "hostile.pth").write_text(str(site) + "\n")
    return v / "bin" / "python"


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(path):
        os.mkfifo(path)
    return path


def hostile_input_cases(work: Path) -> list:
    """FIFOs (nobody writes to them) in every kind of path, NaN and nesting in facts, a 1 GiB log, a zip-bomb
    wheel, an --output FIFO nobody reads: each ends quickly with a clear message (issue 19, points 3 and 10)."""
    import zipfile

    d = work / "hostile"
    d.mkdir(exist_ok=True)
    fifo = _fifo(d / "fifo")
    model = d / "model"
    _fifo(model / "config.json")
    site = d / "fifo-record-site"
    info = site / "fakecuda-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakecuda\nVersion: 1.0\n")
    _fifo(info / "RECORD")
    py = _own_venv(work, "venv-fifo-record", site)
    nan = d / "nan.json"
    nan.write_text('{"schema": "bwdoctor.facts/1", "facts": {"gpus": [{"cc": [12, 0], "memory_gib": NaN}]}}')
    deep = d / "deep.json"
    deep.write_text('{"schema": "bwdoctor.facts/1", "facts": {"x": ' + "[" * 100000 + "]" * 100000 + "}}")
    log = d / "huge.log"
    with open(log, "wb") as fh:  # 1 GiB, sparse: read as its first and last 4 MiB
        fh.truncate(1 << 30)
    whl = d / "bomb-1.0-cp311-cp311-linux_x86_64.whl"
    if not whl.exists():
        elf = HERE / "fixtures" / "cuda" / "sm120.so"
        with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
            with zf.open("bomb/_C.so", "w", force_zip64=True) as out:
                out.write(elf.read_bytes()[:64])
                for _ in range(256):
                    out.write(b"\0" * (1 << 20))
            zf.write(elf, "bomb/real.so")
    plan = ["plan", "--gpu-memory", "80", "--gpu-count", "1"]
    return [
        ("FIFO as --facts", ["check", "--facts", str(fifo)], {}, {2}, 8, "stderr"),
        ("FIFO as explain --log (no writer)", ["explain", "--no-machine", "--log", str(fifo)], {}, {2}, 8, "stderr"),
        ("FIFO as a cubins path", ["cubins", str(fifo)], {}, {2}, 8, "json"),
        ("FIFO as verify-build PATH", ["verify-build", "--target", "sm_120", str(fifo)], {}, {2}, 8, "stderr"),
        ("FIFO as fleet --facts", ["fleet", "--facts", str(fifo)], {}, {1, 2, 3}, 8, "stderr"),
        (
            "FIFO as --config",
            ["check", "--select", "serve", "--config", str(fifo)],
            {},
            {2},
            8,
            "stderr",
        ),  # a named config that cannot be read: exit 2
        ("FIFO as a model's config.json", [*plan, "--model", str(model)], {}, {2}, 8, "stderr"),
        (
            "FIFO as plan --log",
            [*plan, "--model", str(HERE / "fixtures" / "capacity" / "qwen3-14b"), "--log", str(fifo)],
            {},
            {2},
            8,
            "stderr",
        ),
        ("FIFO as -o (no reader)", ["facts", "kernel_release", "-o", str(fifo)], {}, {2}, 8, "stderr"),
        (
            "FIFO as a RECORD in the inspected environment",
            ["check", "--python", str(py), "--target", "sm_120"],
            {},
            {0, 1},
            20,
            "json",
        ),
        ("facts file with NaN", ["check", "--facts", str(nan)], {}, {2}, 8, "stderr"),
        ("facts file nested 100,000 deep", ["check", "--facts", str(deep)], {}, {2}, 8, "stderr"),
        ("explain --log of 1 GiB", ["explain", "--no-machine", "--log", str(log)], {}, {3}, 10, "stderr"),
        (
            "verify-build of a zip-bomb wheel",
            ["verify-build", "--target", "sm_120", str(whl)],
            {},
            {3},  # the bomb member is not extracted: that library is not verified, no green verdict
            10,
            "stderr",
        ),
    ]
