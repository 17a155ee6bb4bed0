"""The cache of per-file results: findings are identical cold, warm and with --no-cache on real environments, and
an entry that is corrupt, truncated, foreign, planted or badly owned is never trusted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest
from conftest import H100_ROOT, compile_shared, run_cli

from bwdoctor import cache
from bwdoctor.context import Context

VENV_BOX = Path(__file__).parent / "fixtures" / "roots" / "venv-box"
HOST_ENV = {"VIRTUAL_ENV": sys.prefix, "CONDA_PREFIX": sys.prefix}
OLD = time.time() - 3600


def _age(root: Path) -> None:
    """Set every file's mtime an hour back: as installed files are, and so that they may be cached."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.utime(p, (OLD, OLD))


def _findings(res: subprocess.CompletedProcess) -> list:
    assert res.returncode in (0, 1, 3), res.stderr
    doc = json.loads(res.stdout)
    return doc["findings"]


def _three_runs(tmp_path: Path, *args: str, env: dict) -> tuple:
    cdir = tmp_path / "c"
    e = dict(env, BWDOCTOR_CACHE_DIR=str(cdir))
    cold = _findings(run_cli("check", *args, "--format", "json", env=e, timeout=120))
    written = sorted(p.name[: -len(".json")] for p in cdir.glob("*.json"))
    warm = _findings(run_cli("check", *args, "--format", "json", env=e, timeout=120))
    off = _findings(run_cli("check", *args, "--format", "json", "--no-cache", env=e, timeout=120))
    off_env = _findings(run_cli("check", *args, "--format", "json", env=dict(e, BWDOCTOR_NO_CACHE="1"), timeout=120))
    return cold, warm, off, off_env, written


def _site(v: Path) -> Path:
    return next((v / "lib").glob("python3*")) / "site-packages"


def _record(site: Path, dist_info: str, files: list) -> None:
    import base64
    import hashlib

    rows = []
    for rel in files:
        body = (site / rel).read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        rows.append(f"{rel},sha256={digest},{len(body)}")
    rows.append(f"{dist_info}/RECORD,,")
    (site / dist_info / "RECORD").write_text("\n".join(rows) + "\n")


def _build_venv(tmp_path: Path) -> Path:
    """A real venv with an extension that does not load (a missing library, an undefined symbol), a locally
    patched vLLM file of the same size, and two distributions that list one file with different contents."""
    v = tmp_path / "venv"
    venv.create(v, with_pip=False, symlinks=True)
    site = _site(v)
    compile_shared(site / "dep" / "libdep.so", "int dep_fn(void) { return 1; }\n")
    ext_src = (
        "extern int dep_fn(void); extern int gone_fn(void);\nint PyInit__C(void) { return dep_fn() + gone_fn(); }\n"
    )
    compile_shared(site / "torchvision" / "_C.so", ext_src, f"-L{site / 'dep'}", "-ldep", "-Wl,-rpath,$ORIGIN/../dep")
    gone = compile_shared(tmp_path / "gone" / "libgone.so", "int gone_fn(void) { return 2; }\n")
    compile_shared(
        site / "torchaudio" / "_torchaudio.so", ext_src, f"-L{site / 'dep'}", "-ldep", f"-L{gone.parent}", "-lgone"
    )
    for name, ver, files in (
        ("torchvision", "0.24.1", ["torchvision/_C.so", "dep/libdep.so"]),
        ("torchaudio", "2.9.1", ["torchaudio/_torchaudio.so"]),
    ):
        di = f"{name}-{ver}.dist-info"
        (site / di).mkdir()
        (site / di / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n")
        _record(site, di, files)
    (site / "vllm").mkdir()
    (site / "vllm" / "a.py").write_text("x = 1\n")
    (site / "vllm-0.11.0.dist-info").mkdir()
    (site / "vllm-0.11.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.11.0\n")
    _record(site, "vllm-0.11.0.dist-info", ["vllm/a.py", "dep/libdep.so"])
    _age(v)
    (site / "vllm" / "a.py").write_text("x = 2\n")  # same size, one byte: found by its hash
    os.utime(site / "vllm" / "a.py", (OLD + 600, OLD + 600))
    return v


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc to build real shared objects")
def test_findings_identical_cold_warm_and_without_cache_on_a_real_venv(tmp_path):
    v = _build_venv(tmp_path)
    cold, warm, off, off_env, written = _three_runs(
        tmp_path, "--python", str(v / "bin" / "python"), "--target", "sm_120", env={}
    )
    assert cold == warm == off == off_env
    assert {"dynelf", "digest", "unresolved", "elf-files", "record-rows"} <= set(written)  # filled by the cold run
    patched = [f for f in cold if f["status"] == "fail" and "vllm/a.py" in json.dumps(f)]
    assert patched, "the same-size edit of vllm/a.py is reported"
    links = json.dumps([f for f in cold if f["family"] == "linking"])
    assert "gone_fn" in links and "libgone.so" in links  # the extensions that do not load are reported


def _real_interpreters() -> list:
    """This checkout's own environment (real wheels from PyPI: pytest, jsonschema, packaging...), plus the
    interpreters of real environments named in $BWDOCTOR_REAL_VENVS (colon-separated), e.g. a venv with
    `pip install torch==2.9.1 torchvision torchaudio` and one with `pip install --no-deps bitsandbytes`."""
    extra = [p for p in os.environ.get("BWDOCTOR_REAL_VENVS", "").split(":") if p]
    return [sys.executable, *extra]


@pytest.mark.parametrize("python", _real_interpreters())
def test_findings_identical_cold_warm_and_without_cache_on_real_environments(tmp_path, python):
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not here")
    cold, warm, off, off_env, written = _three_runs(tmp_path, "--python", python, "--target", "sm_120", env={})
    assert cold == warm == off == off_env and cold
    assert {"links", "gpucode"} <= set(written)  # whole results were kept, and the warm run used them


@pytest.mark.parametrize("tree", [H100_ROOT, VENV_BOX], ids=lambda p: p.name)
def test_findings_identical_cold_warm_and_without_cache_on_fixture_trees(tmp_path, tree):
    root = tmp_path / tree.name
    shutil.copytree(tree, root, symlinks=True)
    _age(root)
    cold, warm, off, off_env, _ = _three_runs(tmp_path, "--root", str(root), env=HOST_ENV)
    assert cold == warm == off == off_env and cold


def test_cache_inside_the_inspected_tree_is_never_used(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    shutil.copytree(VENV_BOX, root, symlinks=True)
    inside = root / "var" / "cache" / "bwdoctor"
    monkeypatch.setenv("BWDOCTOR_CACHE_DIR", str(inside))
    cache._stores.clear()
    assert cache.store(Context(root=root)) is None
    res = run_cli("check", "--root", str(root), "--format", "json", env=dict(HOST_ENV, BWDOCTOR_CACHE_DIR=str(inside)))
    assert res.returncode in (0, 1), res.stderr
    assert not inside.exists()  # nothing written into the tree


def test_cache_inside_the_inspected_environment_is_never_used(tmp_path, monkeypatch):
    v = tmp_path / "env"
    monkeypatch.setenv("BWDOCTOR_CACHE_DIR", str(v / "cache"))
    cache._stores.clear()
    assert cache.store(Context(python=str(v / "bin" / "python"))) is None
    assert cache.store(Context(python=str(tmp_path / "other" / "bin" / "python"))) is not None


def test_default_directory_follows_xdg():
    assert cache.directory({"XDG_CACHE_HOME": "/x/c"}) == "/x/c/bwdoctor"
    assert cache.directory({"XDG_CACHE_HOME": "relative"}).endswith("/.cache/bwdoctor")
    assert cache.directory({"BWDOCTOR_CACHE_DIR": "/y", "XDG_CACHE_HOME": "/x"}) == "/y"


def _one_entry(cache_dir: Path) -> tuple:
    s = cache.store()
    assert s is not None
    s.put("t", ("k", 1), {"v": 1})
    s.flush()
    entry = cache_dir / "t.json"
    assert _fresh().get("t", ("k", 1)) == {"v": 1}
    return s, entry


def _fresh() -> cache.Store:
    """The store as the next run sees it (read from disk)."""
    cache._stores.clear()
    s = cache.store()
    assert s is not None
    return s


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b"\x00\xff garbage",  # corrupt
        lambda b: b"",  # empty
        lambda b: b.replace(b'["k",1]', b'["k",2]'),  # another key under this digest (a collision or a plant)
        lambda b: b.replace(b'"format":1', b'"format":99'),  # another format
        lambda b: b.replace(b'"version":"', b'"version":"9'),  # another bwdoctor (or other code computing values)
        lambda b: b.replace(b'"kind":"t"', b'"kind":"u"'),  # another kind's pack
        lambda b: b"[" * 100000,  # nested past the parser's limit
        lambda b: b'{"format":1}',  # no entries
    ],
)
def test_damaged_or_foreign_entries_are_ignored(cache_dir, damage):
    _s, entry = _one_entry(cache_dir)
    entry.write_bytes(damage(entry.read_bytes()))
    os.chmod(entry, 0o600)
    assert _fresh().get("t", ("k", 1)) is None


def test_entries_others_could_write_are_ignored(cache_dir):
    _s, entry = _one_entry(cache_dir)
    os.chmod(entry, 0o666)
    assert _fresh().get("t", ("k", 1)) is None
    os.chmod(entry, 0o600)
    target = entry.with_name("elsewhere")
    entry.rename(target)
    entry.symlink_to(target)  # a symlink in place of the pack is not followed
    assert _fresh().get("t", ("k", 1)) is None


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_entries_of_another_owner_are_ignored(cache_dir):
    _s, entry = _one_entry(cache_dir)
    os.chown(entry, 12345, -1)
    assert _fresh().get("t", ("k", 1)) is None


def test_directory_others_can_write_turns_the_cache_off(cache_dir):
    cache_dir.mkdir(parents=True)
    os.chmod(cache_dir, 0o777)
    assert cache.store() is None


def test_no_cache_switches(cache_dir, monkeypatch):
    monkeypatch.setenv("BWDOCTOR_NO_CACHE", "1")
    assert cache.store() is None
    monkeypatch.delenv("BWDOCTOR_NO_CACHE")
    cache.disable()
    try:
        assert cache.store() is None
    finally:
        cache.enable()
    assert cache.store() is not None


def test_writes_are_atomic_merged_and_bounded(cache_dir):
    s = cache.store()
    assert s is not None
    for i in range(40):
        s.put("t", (i,), "x" * 1000)
    s.flush(limit=20 * 1100)
    assert not list(cache_dir.glob(".tmp-*"))  # written under a temporary name, then renamed
    assert (cache_dir / "t.json").stat().st_size <= 20 * 1100
    fresh = _fresh()
    assert fresh.get("t", (39,)) == "x" * 1000 and fresh.get("t", (0,)) is None  # the oldest went first
    other = _fresh()  # another run adds an entry: what the first wrote stays
    other.put("t", ("new",), 1)
    other.flush()
    assert _fresh().get("t", (39,)) == "x" * 1000 and _fresh().get("t", ("new",)) == 1


def test_recently_changed_files_are_not_cached(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x")
    assert cache.file_key(os.stat(p)) is None  # its mtime cannot yet tell a second same-size write apart
    os.utime(p, (OLD, OLD))
    assert cache.file_key(os.stat(p)) is not None
    assert cache.file_key(os.stat(tmp_path)) is None  # not a regular file


def test_fatbin_listing_follows_the_file(cache_dir, tmp_path):
    """A cached listing is used for the same file only: rewriting it (even with the same size) is seen."""
    from bwdoctor.probes.gpucode import scan_paths

    fix = Path(__file__).parent / "fixtures" / "cuda"
    sos = sorted(fix.glob("*.so"))
    if len(sos) < 2:
        pytest.skip("needs two CUDA fixtures")
    a = tmp_path / "lib.so"
    shutil.copy(sos[0], a)
    os.utime(a, (OLD, OLD))
    s = cache.store()
    first = scan_paths([str(a)], store=s)
    assert scan_paths([str(a)], store=s) == first == scan_paths([str(a)])
    shutil.copy(sos[1], a)
    os.utime(a, (OLD + 5, OLD + 5))
    assert scan_paths([str(a)], store=s) == scan_paths([str(a)])
