import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The suite's runs (in-process and the subprocesses that inherit this environment) keep their cache in a
# directory of their own, never in the user's ~/.cache/bwdoctor.
if not os.environ.get("BWDOCTOR_CACHE_DIR"):
    import atexit
    import shutil
    import tempfile

    os.environ["BWDOCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bwdoctor-test-cache-")
    atexit.register(shutil.rmtree, os.environ["BWDOCTOR_CACHE_DIR"], True)  # a test run leaves nothing behind

HERE = Path(__file__).parent


@pytest.fixture
def rules_only(monkeypatch):
    """explain without its corpus model: a class test tests the rule (pytestmark = usefixtures("rules_only"))."""
    from bwdoctor import explain_model

    monkeypatch.setitem(explain_model._MODEL, "m", None)


H100_ROOT = HERE / "fixtures" / "roots" / "h100-box"


def compile_shared(out, src: str, *flags: str, compiler: str = "gcc", timeout: float = 60):
    """A real shared object built here from C source (C++ with compiler="g++"), written beside `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = out.parent / (out.name.split(".")[0] + (".cpp" if compiler == "g++" else ".c"))
    source.write_text(src)
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(out), str(source), *flags],
        check=True,
        timeout=timeout,
        capture_output=True,
    )
    return out


def modules_after_check(root, out_dir, env=None):
    """(the modules a `bwdoctor check --root ROOT --format json` process holds when it ends, its report)."""
    code = (
        "import sys, json; from bwdoctor.cli import main; "
        "main(['check', '--root', sys.argv[1], '--format', 'json', '-o', sys.argv[2]]); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    report = out_dir / "r.json"
    res = subprocess.run(
        [sys.executable, "-c", code, str(root), str(report)], capture_output=True, text=True, timeout=120, env=env
    )
    return set(json.loads(res.stdout.splitlines()[-1])), json.loads(report.read_text())


def run_cli(*args, env=None, timeout=60, input=None):
    """Run the real CLI in a subprocess; returns CompletedProcess (text)."""
    e = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES",)}
    e.setdefault("NO_COLOR", "1")
    e["BWDOCTOR_PLUGINS"] = e.get("BWDOCTOR_PLUGINS", "")
    if env:
        e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bwdoctor", *args], capture_output=True, text=True, timeout=timeout, env=e, input=input
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def report_schema():
    from importlib import resources

    return json.loads(resources.files("bwdoctor.schemas").joinpath("report.schema.json").read_text())


def document_validator(kind):
    """A JSON Schema validator for one shipped document kind, with every shipped schema registered for $ref."""
    import jsonschema
    from referencing import Registry, Resource

    from bwdoctor import schemas

    reg = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.all_schemas())
    return jsonschema.Draft202012Validator(schemas.load(kind), registry=reg)


def validate_document(doc):
    """Validate a document against the schema its "schema" field names (bwdoctor.<kind>/1)."""
    from bwdoctor import schemas

    document_validator(schemas.kind_of(doc)).validate(doc)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """bwdoctor's cache in a directory of this test's own, switched on (whatever the environment says)."""
    from bwdoctor import cache

    d = tmp_path / "cachedir"
    monkeypatch.setenv("BWDOCTOR_CACHE_DIR", str(d))
    monkeypatch.delenv("BWDOCTOR_NO_CACHE", raising=False)
    cache.enable()
    cache._stores.clear()
    yield d
    cache._stores.clear()
