"""--root is a whole machine: its Python environments are found from files inside the tree, nothing of the tree
is run, and a tree without Python never borrows this machine's. The venv fixture holds the real METADATA of the
PyPI wheels torch 2.9.1 and torchvision 0.23.0 (see tests/fixtures/roots/README.md)."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import H100_ROOT, compile_shared, run_cli

from bwdoctor.context import Context
from bwdoctor.elf.rootpath import resolve_under
from bwdoctor.model import Unavailable
from bwdoctor.probes import live, pyenv, pystack, pystatic

VENV_BOX = Path(__file__).parent / "fixtures" / "roots" / "venv-box"
SITE = "/opt/venv/lib/python3.12/site-packages"
HOST_ENV = {"VIRTUAL_ENV": sys.prefix, "CONDA_PREFIX": sys.prefix}  # this machine's: never the tree's


@pytest.fixture
def venv_box(tmp_path) -> Path:
    """A copy of the venv fixture (its usr/bin/python3.12 leaves a marker beside itself if anything runs it)."""
    root = tmp_path / "venv-box"
    shutil.copytree(VENV_BOX, root, symlinks=True)
    return root


def write(root: Path, files: dict) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


def test_tree_without_python_lists_nothing_of_this_machine():
    res = run_cli("facts", "python_env", "distributions", "--root", str(H100_ROOT), "--format", "json", env=HOST_ENV)
    assert res.returncode == 0, res.stderr
    facts = json.loads(res.stdout)["facts"]
    assert facts["python_env"] == {"$unavailable": "no Python environment in this tree"}
    assert facts["distributions"] == {"$unavailable": "no Python environment in this tree"}
    assert sys.prefix not in res.stdout and "pyelftools" not in res.stdout


def test_check_finds_the_torchvision_mismatch_inside_the_tree_without_running_it(venv_box):
    res = run_cli("check", "--root", str(venv_box), "--format", "json", env=HOST_ENV)
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    bw507 = next(f for f in report["findings"] if f["id"] == "BW507")
    assert bw507["status"] == "fail"
    assert bw507["message"].startswith("torchvision 0.23.0 requires torch==2.8.0, but torch 2.9.1 is installed")
    py = report["facts"]["python_env"]
    assert py["executable"] == "/opt/venv/bin/python" and py["prefix"] == "/opt/venv" and py["source"] == "static"
    assert py["site_packages"] == [SITE] and py["version"] == "3.12.3" and py["chosen_by"] == "has torch installed"
    python_side = json.dumps([report["facts"][k] for k in ("python_env", "distributions", "torch_build")])
    assert str(venv_box) not in python_side and sys.prefix not in python_side
    assert not (venv_box / "usr/bin/python3.12-was-run").exists()  # the tree's interpreter never ran


def test_probes_start_no_process(venv_box, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError(f"a process was started: {a[:1]}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    ctx = Context(root=venv_box, env=HOST_ENV)
    env = pyenv.python_env(ctx)
    dists = pyenv.distributions(ctx, env)
    assert [(d["name"], d["version"], d["location"]) for d in dists] == [
        ("torch", "2.9.1", SITE),
        ("torchvision", "0.23.0", SITE),
    ]
    assert dists[1]["requires"][1] == "torch (==2.8.0)"  # as the real METADATA spells it
    tb = pystack.torch_build(ctx, dists)
    assert (tb["cuda"], tb["variant"]) == ("12.8", "cu128")
    assert tb["git_version"] == "5811a8d7da873dd699ff6687092c225caffcf1bb"
    drift = pystack.record_drift(ctx, dists)
    assert [(d["distribution"], d["checked"], d["modified"], d["missing"]) for d in drift] == [("torch", 1, [], [])]
    ctx.live = True
    assert "live machine only" in live.live_torch(ctx, env).reason


def test_python_names_a_path_inside_the_tree(venv_box):
    for given in ("/opt/venv/bin/python3.12", str(venv_box / "opt/venv/bin/python3.12")):
        res = run_cli("facts", "python_env", "--root", str(venv_box), "--python", given)
        py = json.loads(res.stdout)["facts"]["python_env"]
        assert (py["executable"], py["chosen_by"], py["prefix"]) == (
            "/opt/venv/bin/python3.12",
            "--python",
            "/opt/venv",
        )
    res = run_cli("facts", "python_env", "--root", str(venv_box), "--python", sys.executable)
    assert res.returncode == 2 and "no such file" in res.stderr  # this machine's interpreter is not in the tree
    assert not (venv_box / "usr/bin/python3.12-was-run").exists()


def test_system_python_of_a_python_image(tmp_path):
    """The layout of the python:3.12 images: /usr/local/bin/python3.12, site-packages under /usr/local."""
    root = write(
        tmp_path / "img",
        {
            "usr/local/bin/python3.12": "#!/bin/sh\nexit 1\n",
            "usr/local/lib/python3.12/os.py": "",
            "usr/local/lib/python3.12/lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so": "",
            "usr/local/include/python3.12/patchlevel.h": '#define PY_VERSION              "3.12.7"\n',
            "usr/local/lib/python3.12/site-packages/pip-24.2.dist-info/METADATA": "Name: pip\nVersion: 24.2\n",
        },
    )
    (root / "usr/local/bin/python3").symlink_to("python3.12")
    py = pyenv.python_env(Context(root=root))
    assert py["executable"] == "/usr/local/bin/python3.12" and py["version"] == "3.12.7"
    assert py["sys_path"] == [
        "/usr/local/lib/python312.zip",
        "/usr/local/lib/python3.12",
        "/usr/local/lib/python3.12/lib-dynload",
        "/usr/local/lib/python3.12/site-packages",
    ]
    assert (py["soabi"], py["platform"], py["chosen_by"]) == (
        "cpython-312-x86_64-linux-gnu",
        "linux-x86_64",
        "the first system Python",
    )


def test_debian_system_python_and_a_venv_that_sees_it(tmp_path):
    root = write(
        tmp_path / "deb",
        {
            "usr/bin/python3.12": "",
            "usr/lib/python3.12/os.py": "",
            "usr/lib/python3/dist-packages/numpy-1.26.4.dist-info/METADATA": "Name: numpy\nVersion: 1.26.4\n",
            "var/lib/dpkg/status": "Package: python3.12-minimal\nStatus: install ok installed\n"
            "Version: 3.12.3-1ubuntu0.8\n\n",
            "srv/app/.venv/pyvenv.cfg": "home = /usr/bin\ninclude-system-site-packages = true\n",
            "srv/app/.venv/lib/python3.12/site-packages/vllm-0.11.0.dist-info/METADATA": (
                "Name: vllm\nVersion: 0.11.0\n"
            ),
        },
    )
    py = pyenv.python_env(Context(root=root))
    assert (py["prefix"], py["chosen_by"], py["version"], py["version_from"]) == (
        "/srv/app/.venv",
        "has vllm installed",
        "3.12.3",
        "dpkg status",
    )
    assert py["site_packages"] == [
        "/srv/app/.venv/lib/python3.12/site-packages",
        "/usr/local/lib/python3.12/dist-packages",
        "/usr/lib/python3/dist-packages",
        "/usr/lib/python3.12/dist-packages",
    ]  # as site.getsitepackages() lists them
    assert py["sys_path"][-2:] == ["/srv/app/.venv/lib/python3.12/site-packages", "/usr/lib/python3/dist-packages"]
    assert [o["prefix"] for o in py["others"]] == ["/usr"]
    names = [d["name"] for d in pyenv.distributions(Context(root=root), py)]
    assert names == ["numpy", "vllm"]


def test_conda_envs_and_the_trees_own_virtual_env(tmp_path):
    root = write(
        tmp_path / "conda",
        {
            "opt/conda/conda-meta/python-3.11.9-h955ad1f_0.json": "{}",
            "opt/conda/lib/python3.11/os.py": "",
            "opt/conda/envs/serve/conda-meta/python-3.12.4-h5148396_1.json": "{}",
            "opt/conda/envs/serve/lib/python3.12/site-packages/torch-2.8.0.dist-info/METADATA": (
                "Name: torch\nVersion: 2.8.0\n"
            ),
            "root/.venv/pyvenv.cfg": "home = /opt/conda/bin\nversion_info = 3.11.9.final.0\n",
            "root/.venv/lib/python3.11/site-packages/__editable__.demo.pth": "/root/src\nimport os\n",
            "root/src/demo.egg-info/PKG-INFO": "Name: demo\nVersion: 0.1\n",
        },
    )
    py = pyenv.python_env(Context(root=root))
    assert (py["prefix"], py["version"], py["kind"]) == ("/opt/conda/envs/serve", "3.12.4", "conda")
    assert sorted(o["prefix"] for o in py["others"]) == ["/opt/conda", "/root/.venv"]
    ctx = Context(root=root, options={"tree_env": {"VIRTUAL_ENV": "/root/.venv"}})
    py = pyenv.python_env(ctx)
    assert (py["prefix"], py["chosen_by"], py["version"], py["base_prefix"]) == (
        "/root/.venv",
        "$VIRTUAL_ENV of the tree",
        "3.11.9",
        "/opt/conda",
    )
    assert py["sys_path"][-2:] == ["/root/.venv/lib/python3.11/site-packages", "/root/src"]  # the .pth line
    assert [d["name"] for d in pyenv.distributions(ctx, py)] == ["demo"]
    write(root, {"proc/1/environ": b"PATH=/usr/bin\0CONDA_PREFIX=/opt/conda\0"})
    assert pyenv.python_env(Context(root=root))["chosen_by"] == "$CONDA_PREFIX of the tree"


def test_symlinks_are_followed_inside_the_tree(tmp_path):
    root = tmp_path / "t"
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib/up").symlink_to("../../../../..")
    (root / "usr/lib/hosts").symlink_to("/etc/hostname")  # absolute: the tree's /etc, never this machine's
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("/a")
    assert resolve_under(str(root), "/lib/x.so") == "/usr/lib/x.so"
    assert resolve_under(str(root), "/lib/up/etc") == "/etc"
    assert resolve_under(str(root), "/usr/lib/hosts") == "/etc/hostname"
    with pytest.raises(OSError) as exc:
        resolve_under(str(root), "/a/METADATA")
    assert exc.value.errno == errno.ELOOP
    ctx = Context(root=root)
    assert not ctx.exists("/usr/lib/hosts") and ctx.machine_path(str(root / "usr/lib")) == "/usr/lib"
    with pytest.raises(FileNotFoundError):
        ctx.read_text("/usr/lib/hosts")


def test_hostile_tree_neither_hangs_nor_fails(tmp_path):
    root = write(
        tmp_path / "hostile",
        {
            "opt/venv/pyvenv.cfg": "home = /usr/bin\nversion = 3.12.3\n",
            "opt/venv/lib/python3.12/site-packages/latin-1.0.dist-info/METADATA": b"Name: caf\xe9\nVersion: 1.0\n",
            "opt/venv/lib/python3.12/site-packages/torch-2.9.1.dist-info/METADATA": "Name: torch\nVersion: 2.9.1\n",
            "opt/venv/lib/python3.12/site-packages/torch-2.9.1.dist-info/RECORD": "torch/\0nul.py,sha256=x,1\n"
            "../../../../../../etc/passwd,,\n",
            "opt/venv/lib/python3.12/site-packages/torch/version.py": "",
            "opt/venv/lib/python3.12/site-packages/loop.pth": "/opt/venv/lib/python3.12/site-packages/loop\n",
        },
    )
    site = root / "opt/venv/lib/python3.12/site-packages"
    (site / "loop").symlink_to(".")
    (site / "cycle-1.dist-info").symlink_to("cycle2")
    (site / "cycle2").symlink_to("cycle-1.dist-info")
    (site / "torch/lib").symlink_to("/opt/venv/lib/python3.12/site-packages/torch/lib")
    (site / "fifo-1.0.dist-info").mkdir()
    os.mkfifo(site / "fifo-1.0.dist-info" / "METADATA")
    (root / "opt/venv/bin").mkdir()
    (root / "opt/venv/bin/python").symlink_to("/usr/bin/python3")  # this machine has one; the tree has not
    (root / "opt/bad/pyvenv.cfg").mkdir(parents=True)  # a directory where a file belongs
    (root / "home/u/deep").mkdir(parents=True)
    (root / "home/u/deep/again").symlink_to("/home/u")
    res = run_cli("facts", "--root", str(root), "--format", "json", timeout=60)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    facts = json.loads(res.stdout)["facts"]
    py = facts["python_env"]
    assert py["prefix"] == "/opt/venv" and py["others"] == []
    assert py["notes"] == [
        "/opt/venv/bin/python points to /usr/bin/python3, which is not in the tree",
        "the standard library /usr/lib/python3.12 is not in the tree",
    ]
    assert [(d["name"], d["version"]) for d in facts["distributions"]] == [("caf\ufffd", "1.0"), ("torch", "2.9.1")]
    assert facts["torch_build"]["has_libtorch_cuda"] is False
    assert facts["record_drift"][0]["checked"] == 0  # a NUL byte in a RECORD path is skipped, not a traceback
    res = run_cli("check", "--root", str(root), "--format", "json", timeout=60)
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr
    assert not [f for f in json.loads(res.stdout)["findings"] if f["status"] == "error"]


def test_door_reads_regular_files_only(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    ctx = Context(root=tmp_path)
    with pytest.raises(OSError) as exc:
        ctx.read_bytes("/fifo")
    assert exc.value.errno == errno.EINVAL
    assert "not a regular file" in ctx.read_or_unavailable("/fifo").reason
    live_ctx = Context()
    with pytest.raises(OSError):
        live_ctx.read_bytes(str(tmp_path / "fifo"))  # the live machine too: a FIFO never blocks a probe
    assert isinstance(ctx.read_or_unavailable("/missing"), Unavailable)


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")
def test_extension_links_reads_the_trees_files_from_machine_paths(venv_box, tmp_path):
    """The facts name machine paths; the loader model opens the extension and its libraries in the tree."""
    from bwdoctor.probes import links

    libdir = venv_box / "usr/lib/x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    compile_shared(libdir / "libdep.so.1", "int dep(void){return 1;}\n", "-Wl,-soname,libdep.so.1")
    site = venv_box / SITE.lstrip("/")
    compile_shared(
        site / "torchvision/_C.so", "int dep(void); int f(void){return dep();}\n", str(libdir / "libdep.so.1")
    )
    with open(site / "torchvision-0.23.0.dist-info/RECORD", "a") as fh:
        fh.write("torchvision/_C.so,,\n")
    os.remove(libdir / "libdep.so.1")
    ctx = Context(root=venv_box, env={})
    env = pyenv.python_env(ctx)
    dists = pyenv.distributions(ctx, env)
    fact = links.extension_links(ctx, env, dists, pystack.torch_build(ctx, dists))
    tv = next(e for e in fact["extensions"] if e["distribution"] != "torch")  # torch's own row comes first
    assert (tv["distribution"], tv["checked"]) == ("torchvision", 1)
    assert tv["files"][0]["path"] == f"{SITE}/torchvision/_C.so"
    assert tv["files"][0]["missing_libraries"][0]["name"] == "libdep.so.1"
    assert not (venv_box / "usr/bin/python3.12-was-run").exists()


def _interpreters(tmp_path):
    import venv

    yield sys.executable  # a venv when the suite runs in one
    for name, system_site in (("plain", False), ("with-system", True)):
        venv.create(tmp_path / name, with_pip=False, system_site_packages=system_site, symlinks=True)
        yield str(tmp_path / name / "bin" / "python")
    for path in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(path):
            yield path


def test_static_reading_agrees_with_the_interpreter(tmp_path):
    """Read from files, an environment of THIS machine comes out as its interpreter reports it (asked in a
    subprocess with the user site off, as a tree has no user)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    keys = (
        "executable",
        "version",
        "sys_path",
        "site_packages",
        "prefix",
        "base_prefix",
        "platform",
        "soabi",
        "libdir",
        "ldlibrary",
        "shared",
        "include",
    )
    compared = 0
    for exe in _interpreters(tmp_path):
        res = subprocess.run([exe, "-c", pyenv._SCRIPT], capture_output=True, text=True, timeout=30, env=env)
        asked = json.loads(res.stdout)
        asked["site_packages"] = [p for p in dict.fromkeys(asked["site_packages"]) if p]
        read = pystatic.static_python_env(Context(python=exe, env=env), {})
        assert {k: read[k] for k in keys} == {k: asked[k] for k in keys}, exe
        compared += 1
    assert compared >= 3


def test_sysconfigdata_is_parsed_never_run(tmp_path):
    from bwdoctor.probes import pystatic

    marker = tmp_path / "ran"
    write(
        tmp_path,
        {
            "lib/_sysconfigdata__a.py": "build_time_vars = " + "[" * 100000 + "\n",
            "lib/_sysconfigdata__b.py": f"open({str(marker)!r}, 'w')\nbuild_time_vars = dict(SOABI=open('x'))\n",
            "lib/_sysconfigdata__c.py": "build_time_vars = {'SOABI': 'cpython-312-aarch64-linux-gnu', "
            "'LIBDIR': '/usr/lib', 'LDLIBRARY': 'libpython3.12.so', 'Py_ENABLE_SHARED': 1, 'MULTIARCH': 'x'}\n",
        },
    )
    conf = pystatic.sysconfigdata(Context(root=tmp_path), "/lib")
    assert conf["SOABI"] == "cpython-312-aarch64-linux-gnu" and conf["Py_ENABLE_SHARED"] == 1
    assert not marker.exists()


def test_python_in_a_prefix_of_its_own(tmp_path):
    """uv's managed Pythons and manylinux's /opt/python/cp312-cp312 are neither venvs nor /usr."""
    uv = "root/.local/share/uv/python/cpython-3.12.11-linux-x86_64-gnu"
    root = write(
        tmp_path / "uv",
        {
            f"{uv}/bin/python3.12": "",
            f"{uv}/lib/python3.12/os.py": "",
            f"{uv}/lib/python3.12/site-packages/vllm-0.11.0.dist-info/METADATA": "Name: vllm\nVersion: 0.11.0\n",
            "opt/python/cp312-cp312/bin/python3.12": "",
            "opt/python/cp312-cp312/lib/python3.12/os.py": "",
            "opt/tools/bin/tool": "",  # bin and lib, but no Python
            "opt/tools/lib/libtool.so": "",
        },
    )
    py = pyenv.python_env(Context(root=root))
    assert (py["prefix"], py["executable"]) == (f"/{uv}", f"/{uv}/bin/python3.12")
    assert py["chosen_by"] == "has vllm installed"
    assert py["site_packages"] == [f"/{uv}/lib/python3.12/site-packages"]
    assert [o["prefix"] for o in py["others"]] == ["/opt/python/cp312-cp312"]


def test_tree_environment_is_the_trees_not_the_shells(tmp_path):
    """Under --root the environment fact is what the tree recorded (/proc/1/environ), never this shell's."""
    res = run_cli(
        "facts",
        "environment",
        "--root",
        str(H100_ROOT),
        "--format",
        "json",
        env={"CUDA_VISIBLE_DEVICES": "-1", "VLLM_ATTENTION_BACKEND": "FLASHINFER"},
    )
    env = json.loads(res.stdout)["facts"]["environment"]
    assert "CUDA_VISIBLE_DEVICES" not in json.dumps(env) and "FLASHINFER" not in json.dumps(env)
    tree = tmp_path / "box"
    shutil.copytree(H100_ROOT, tree, symlinks=True)
    (tree / "proc" / "1").mkdir(parents=True, exist_ok=True)
    (tree / "proc" / "1" / "environ").write_bytes(b"VLLM_ATTENTION_BACKEND=XFORMERS\0CUDA_VISIBLE_DEVICES=0,1\0")
    env = json.loads(run_cli("facts", "environment", "--root", str(tree), "--format", "json").stdout)["facts"]
    assert env["environment"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert env["environment"]["VLLM_ATTENTION_BACKEND"] == "XFORMERS"


def test_built_for_reads_the_trees_files_not_the_hosts(tmp_path):
    """What a distribution wrote down about its torch (direct_url.json) is read inside the tree: the fact names
    machine paths, and the same path on this host must not be what answers."""
    from bwdoctor.probes.links import built_for

    info = tmp_path / "opt/venv/lib/python3.12/site-packages/flash_attn-2.8.3.dist-info"
    info.mkdir(parents=True)
    url = "https://example.invalid/flash_attn-2.8.3+cu12torch2.7cxx11abiTRUE-cp312-cp312-linux_x86_64.whl"
    (info / "direct_url.json").write_text(json.dumps({"url": url}))
    d = {
        "name": "flash-attn",
        "version": "2.8.3",
        "location": "/opt/venv/lib/python3.12/site-packages",
        "dist_info": "/opt/venv/lib/python3.12/site-packages/flash_attn-2.8.3.dist-info",
        "requires": [],
    }
    in_tree = built_for(Context(root=tmp_path), d)
    on_host = built_for(Context(), d)
    assert in_tree and in_tree.get("torch", "").startswith("2.7"), in_tree
    assert on_host != in_tree


def test_tree_environment_secrets_never_leave(tmp_path):
    """Secrets the tree's /proc/1/environ records are masked in every format; a FIFO there never blocks."""
    tree = tmp_path / "box"
    shutil.copytree(H100_ROOT, tree, symlinks=True)
    (tree / "proc" / "1").mkdir(parents=True, exist_ok=True)
    secret, key = "hf_" + "q" * 24, "planted-api-key-value-7731"
    (tree / "proc" / "1" / "environ").write_bytes(f"HF_TOKEN={secret}\0VLLM_API_KEY={key}\0".encode())
    for argv in (["facts", "environment"], ["check", "-v"]):
        for fmt in ("json", "text"):
            res = run_cli(*argv, "--root", str(tree), "--format", fmt)
            assert res.returncode in (0, 1) and secret not in res.stdout + res.stderr and key not in res.stdout
    os.remove(tree / "proc" / "1" / "environ")
    os.mkfifo(tree / "proc" / "1" / "environ")
    res = run_cli("facts", "environment", "--root", str(tree), "--format", "json", timeout=20)
    assert res.returncode == 0 and json.loads(res.stdout)["facts"]["environment"] == {}
