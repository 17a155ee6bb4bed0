"""Whole results kept in the cache (bwdoctor.cache.memo): reused only while every path they were computed from is in
the same state. A rewritten file, a name added to a searched directory, a symlink pointed elsewhere, a path that
appears, a .pth file added: each makes the next run compute again, and the findings are those of a run without the
cache. Plus the NVML child started ahead of its probe."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import nativefaults
import pytest
from conftest import run_cli
from test_cache import OLD, _age, _build_venv, _findings, _site

from bwdoctor import cache


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A store in a directory of its own; no racy window, so that files made by the test may be kept (each test
    waits a clock tick before it changes a file, which the window would otherwise do for it)."""
    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)
    monkeypatch.setenv("BWDOCTOR_CACHE_DIR", str(tmp_path / "cachedir"))
    monkeypatch.delenv("BWDOCTOR_NO_CACHE", raising=False)
    cache.enable()
    cache._stores.clear()
    yield cache.store()
    cache._stores.clear()


def _fresh() -> cache.Store:
    """The same directory as a later run reads it."""
    cache.finish()
    cache._stores.clear()
    s = cache.store()
    assert s is not None
    return s


def _old(*paths: Path) -> None:
    for p in paths:
        os.utime(p, (OLD, OLD), follow_symlinks=False)


def _tick() -> None:
    """Let the file-system clock move on (ctime has the kernel's coarse clock: a few ms)."""
    time.sleep(0.05)


class Counter:
    """compute() for memo: reads what it is given, notes it in the witness, counts its calls."""

    def __init__(self, see=(), globs=()):
        self.calls = 0
        self.see, self.globs = list(see), list(globs)

    def __call__(self, w: cache.Witness):
        self.calls += 1
        w.see_all(str(p) for p in self.see)
        for g in self.globs:
            w.glob(str(g))
        return {"n": self.calls}


def _twice(store, compute, key=("k",)) -> list:
    first = cache.memo("t", key, compute, store)
    again = cache.memo("t", key, compute, _fresh())
    return [first, again]


def test_unchanged_paths_reuse_the_result(store, tmp_path):
    f = tmp_path / "f"
    f.write_text("a")
    _old(f, tmp_path)
    c = Counter(see=[f, tmp_path / "absent"])
    assert _twice(store, c) == [{"n": 1}, {"n": 1}] and c.calls == 1
    assert cache.memo("t", ("other key",), c, _fresh()) == {"n": 2}  # the key is part of the identity


def test_a_rewritten_file_is_computed_again(store, tmp_path):
    f = tmp_path / "f"
    f.write_text("a")
    _old(f)
    c = Counter(see=[f])
    cache.memo("t", ("k",), c, store)
    _tick()
    f.write_text("b")  # same size; mtime and ctime move
    os.utime(f, (OLD, OLD))  # even with the mtime put back (the ctime still moved)
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 2}


def test_a_name_added_to_a_listed_directory_is_computed_again(store, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "libx.so.1").write_text("x")
    _old(d / "libx.so.1", d)
    c = Counter(globs=[d / "libx.so.*"])
    cache.memo("t", ("k",), c, store)
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 1}
    _tick()
    (d / "libx.so.2").write_text("x")  # a new match: the directory's mtime moved
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 2}


def test_a_missing_path_that_appears_or_a_retargeted_symlink_is_computed_again(store, tmp_path):
    missing = tmp_path / "nope" / "lib.so"
    a, b, link = tmp_path / "a", tmp_path / "b", tmp_path / "link"
    a.write_text("1")
    b.write_text("1")
    link.symlink_to(a)
    _old(a, b, link)
    c = Counter(see=[missing, link])
    cache.memo("t", ("k",), c, store)
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 1}
    _tick()
    link.unlink()
    link.symlink_to(b)  # the same bytes elsewhere
    _old(link)
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 2}
    missing.parent.mkdir()
    missing.write_text("now here")
    _old(missing)
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 3}


def test_a_path_changed_just_now_keeps_the_result_out(store, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "RACY_SECONDS", 2.0)
    f = tmp_path / "f"
    f.write_text("a")  # its ctime is now: a second write in the same tick could go unseen
    c = Counter(see=[f])
    assert _twice(store, c) == [{"n": 1}, {"n": 2}]


def test_a_tampered_witness_or_value_is_a_miss(store, tmp_path):
    f = tmp_path / "f"
    f.write_text("a")
    _old(f)
    c = Counter(see=[f])
    cache.memo("t", ("k",), c, store)
    cache.finish()
    pack = Path(os.environ["BWDOCTOR_CACHE_DIR"]) / "t.json"
    doc = json.loads(pack.read_text())
    for entry in doc["entries"].values():
        entry[1]["witness"] = "not a list"
    pack.write_text(json.dumps(doc))
    pack.chmod(0o600)
    cache._stores.clear()
    assert cache.memo("t", ("k",), c, cache.store()) == {"n": 2}


def test_the_witness_is_taken_again_after_computing(store, tmp_path):
    f = tmp_path / "f"
    f.write_text("a")
    _old(f)

    def changes_it(w: cache.Witness):
        w.see(str(f))
        _tick()
        f.write_text("b")  # changed while the result was being made
        _old(f)
        return {"read": "a"}

    cache.memo("t", ("k",), changes_it, store)
    assert _fresh().get("t", ("k",)) is None


def _check(args: list, env: dict) -> list:
    return _findings(run_cli("check", *args, "--format", "json", env=env, timeout=120))


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc to build real shared objects")
def test_a_library_removed_or_put_back_where_the_loader_looks_is_seen_on_the_next_warm_run(tmp_path):
    """extension_links is kept whole: when the library an extension finds through its RUNPATH is removed, and
    when it is put back, the next warm run reports what a run without the cache reports."""
    v = _build_venv(tmp_path)
    time.sleep(cache.RACY_SECONDS + 0.1)  # installed a while ago, as real environments are
    env = {"BWDOCTOR_CACHE_DIR": str(tmp_path / "c")}
    args = ["--python", str(v / "bin" / "python"), "--target", "sm_120"]
    cold = _check(args, env)
    assert _check(args, env) == cold
    assert "links" in {p.name[:-5] for p in (tmp_path / "c").glob("*.json")}
    lib = _site(v) / "dep" / "libdep.so"

    def not_found(findings: list) -> int:  # how often a failure names the library as not found
        return json.dumps([f for f in findings if f["family"] == "linking" and f["status"] == "fail"]).count(
            "libdep.so"
        )

    lib.rename(tmp_path / "libdep.so")
    warm = _check(args, env)
    assert warm == _check(args + ["--no-cache"], env) != cold
    assert not_found(warm) > not_found(cold)  # torchvision's _C.so no longer finds it either
    (tmp_path / "libdep.so").rename(lib)  # the same file back: the directory changed again
    assert _check(args, env) == cold


def test_a_pth_file_added_changes_the_interpreters_answer(tmp_path):
    """The interpreter's sys.path is kept with the states of its directories and .pth files: a .pth file added to
    site-packages is seen on the next run (no second interpreter start is needed until then)."""
    import venv

    v = tmp_path / "venv"
    venv.create(v, with_pip=False, symlinks=True)
    extra = tmp_path / "extra"
    extra.mkdir()
    _age(v)
    time.sleep(cache.RACY_SECONDS + 0.1)
    env = {"BWDOCTOR_CACHE_DIR": str(tmp_path / "c")}
    args = ["facts", "python_env", "--python", str(v / "bin" / "python")]

    def sys_path() -> list:
        res = run_cli(*args, env=env, timeout=60)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)["facts"]["python_env"]["sys_path"]

    assert str(extra) not in sys_path()
    assert "python-env" in {p.name[:-5] for p in (tmp_path / "c").glob("*.json")}
    assert str(extra) not in sys_path()
    (_site(v) / "extra.pth").write_text(str(extra) + "\n")
    assert str(extra) in sys_path()


# -- the NVML child started ahead of its probe -------------------------------------------------------------------


@pytest.fixture
def no_early():
    from bwdoctor.probes import nvml_query

    nvml_query._early = None
    yield nvml_query
    nvml_query._early = None


def test_the_early_child_is_collected_once(no_early, monkeypatch):
    nvml_query = no_early
    calls = []

    def ask(timeout):
        calls.append(timeout)
        from bwdoctor.context import RunResult

        out = '{"stage": "start"}\n{"result": {"driver": "580.1", "gpus": []}}\n{"stage": "done"}\n'
        return RunResult(argv=["x"], returncode=0, stdout=out)

    monkeypatch.setattr(nvml_query, "_ask_child", ask)
    nvml_query.start_early()
    nvml_query.start_early()  # one child per run
    assert nvml_query.isolated() == {"driver": "580.1", "gpus": []}
    assert len(calls) == 1
    nvml_query.isolated()  # the next caller asks a child of its own
    assert len(calls) == 2


def test_an_early_child_for_another_environment_is_not_collected(no_early, monkeypatch):
    nvml_query = no_early
    seen = []

    def ask(timeout):
        from bwdoctor.context import RunResult

        seen.append(os.environ.get("LD_LIBRARY_PATH"))
        return RunResult(argv=["x"], returncode=1, stdout="")

    monkeypatch.setattr(nvml_query, "_ask_child", ask)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/one")
    nvml_query.start_early()
    nvml_query._early.done.wait(5)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/two")
    nvml_query.isolated()
    assert seen == ["/one", "/two"]


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc to build the fake libnvidia-ml.so.1")
def test_a_hung_nvml_started_early_is_still_stopped_and_reported(tmp_path, no_early, monkeypatch):
    """start_early runs the same bounded child: a hang in nvmlInit is killed at the timeout and reported."""
    from bwdoctor.context import Context
    from bwdoctor.probes import nvidia

    lib = nativefaults.build(tmp_path, "hang")
    if lib is None:
        pytest.skip("gcc needed")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(lib))
    ctx = Context(env=dict(os.environ))
    assert nvidia.start_nvml_early(ctx)  # libnvidia-ml.so.1 is where the loader finds it
    t0 = time.monotonic()
    got = no_early.isolated(timeout=no_early.TIMEOUT)
    assert "hung in nvmlInit" in got.reason
    assert time.monotonic() - t0 < no_early.TIMEOUT + 3


def test_no_early_child_without_a_driver(no_early, tmp_path):
    from bwdoctor.context import Context
    from bwdoctor.probes import nvidia

    ctx = Context(root=str(tmp_path))  # a tree: NVML is never asked
    assert not nvidia.start_nvml_early(ctx) and no_early._early is None
    assert sys.executable  # (the live machine here has no driver either: nothing started in the other tests)


def test_a_names_witness_ignores_other_files_but_sees_a_distribution_installed_or_removed(store, tmp_path):
    """A directory on sys.path may also be a working directory: a log written there is no reason to read every
    distribution again, while a .dist-info added or removed is."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "a-1.0.dist-info").mkdir()

    class Names:
        calls = 0

        def __call__(self, w: cache.Witness):
            self.calls += 1
            w.see_names(str(site), (".dist-info", ".egg-info"))
            return {"n": self.calls}

    c = Names()
    assert cache.memo("t", ("k",), c, store) == {"n": 1}
    _tick()
    (site / "server.log").write_text("x")  # the directory's mtime moved
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 1}
    (site / "b-2.0.dist-info").mkdir()
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 2}
    (site / "a-1.0.dist-info").rmdir()
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 3}
    site.rename(tmp_path / "gone")
    assert cache.memo("t", ("k",), c, _fresh()) == {"n": 4}


def test_the_distributions_are_kept_while_only_other_files_change_beside_them(tmp_path, monkeypatch):
    """The distributions probe on a real environment (this test run's own) with a scratch file written into a
    sys.path directory between two runs: the second run reuses the list, and a new .dist-info is seen."""
    import sys

    from bwdoctor.context import Context
    from bwdoctor.probes import pyenv

    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)
    monkeypatch.setenv("BWDOCTOR_CACHE_DIR", str(tmp_path / "cachedir"))
    cache._stores.clear()
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "demo_pkg-1.0.dist-info").mkdir()
    (extra / "demo_pkg-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n")
    _old(extra / "demo_pkg-1.0.dist-info" / "METADATA", extra / "demo_pkg-1.0.dist-info")
    env = {"executable": sys.executable, "sys_path": [str(extra)] + [p for p in sys.path if p]}
    reads = []
    real = pyenv._read_dist
    monkeypatch.setattr(pyenv, "_read_dist", lambda *a: reads.append(a) or real(*a))
    ctx = Context()
    first = pyenv.distributions(ctx, env)
    n = len(reads)
    assert n > 5 and any(d["name"] == "demo-pkg" for d in first)
    cache.finish()
    cache._stores.clear()
    _tick()
    (extra / "notes.txt").write_text("written by someone working here")
    assert pyenv.distributions(Context(), env) == first and len(reads) == n
    cache.finish()
    cache._stores.clear()
    (extra / "other-2.0.dist-info").mkdir()
    (extra / "other-2.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: other\nVersion: 2.0\n")
    again = pyenv.distributions(Context(), env)
    assert len(reads) > n and any(d["name"] == "other" for d in again)
