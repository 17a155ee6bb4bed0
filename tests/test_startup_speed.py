"""What start-up speed rests on gives the same answers as the slower way: plugin entry points read without
importlib.metadata, requirements read without packaging.requirements, modules imported only when used."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from bwdoctor import registry
from bwdoctor.checks import stack

EDGE_REQUIREMENTS = [
    "torch (>=2.0,<3)",
    "torch>=2.0 ; extra == 'x'",
    "torch==2.9.1",
    "torch",
    "torch[cuda]>=2",
    "torch >= 2.0, < 3",
    "torch>=2,",
    "torch @ https://example.invalid/torch.whl",
    "torch===2.9",
    "torch~=2.9.0",
    "torch==2.*",
    "torch (==2.9.1) ; python_version >= '3.9'",
    "torch>=",
    "Torch_X.y>=1",
    "torch<=2.0;platform_system=='Linux'",
    "torch (>=2)extra",
    "torch>=2.0; extra == 'cuda' and python_version < '3.13'",
]


def _real_requirements() -> list:
    """Every Requires-Dist line of the distributions installed beside this test run (real wheels from PyPI)."""
    out = []
    for md in glob.glob(sysconfig.get_paths()["purelib"] + "/*.dist-info/METADATA"):
        with open(md, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break
                if line.startswith("Requires-Dist:"):
                    out.append(line.split(":", 1)[1].strip())
    return out


def _view(req) -> tuple:
    marker = str(req.marker) if req.marker else ""
    return req.name, str(req.specifier), bool(marker), "extra" in marker, str(req), sorted(req.extras), req.url


def test_requirements_read_as_packaging_reads_them():
    texts = _real_requirements() + EDGE_REQUIREMENTS
    assert len(texts) > 50
    fast = 0
    for text in texts:
        try:
            want = _view(Requirement(text))
        except InvalidRequirement:
            want = None
        got = stack._parse_requirement(text)
        fast += isinstance(got, stack._Req)
        assert (None if got is None else _view(got)) == want, text
    assert fast > len(texts) // 2  # most take the plain path


@pytest.mark.parametrize("group", ["console_scripts", "bwdoctor.checks", "pytest11"])
def test_entry_points_read_as_importlib_metadata_reads_them(group):
    from importlib.metadata import entry_points

    fast = registry._scan_entry_points(group)
    if fast is None:
        pytest.skip("sys.path holds an entry only importlib.metadata reads")
    assert sorted((e.name, e.value) for e in fast) == sorted((e.name, e.value) for e in entry_points(group=group))


def test_entry_point_loads_module_and_attribute():
    ep = registry._EntryPoint("main", "bwdoctor.cli:main [extra]")
    from bwdoctor.cli import main

    assert ep.load() is main
    assert registry._EntryPoint("m", "bwdoctor.cli").load().__name__ == "bwdoctor.cli"


def test_a_check_run_imports_no_wheel_or_metadata_machinery(tmp_path):
    """What `check` imports on a healthy --root tree: not importlib.metadata, zipfile or packaging.requirements
    (each is imported where it is used)."""
    from conftest import H100_ROOT, modules_after_check

    env = {"BWDOCTOR_PLUGINS": "", "PATH": "/usr/bin:/bin", "BWDOCTOR_CACHE_DIR": str(tmp_path / "c")}
    mods, _ = modules_after_check(H100_ROOT, tmp_path, env)
    assert "bwdoctor.engine" in mods
    late = {"importlib.metadata", "zipfile", "packaging.requirements"}
    assert not late & mods, sorted(late & mods)


def test_wheel_errors_and_lazy_modules_are_still_there():
    import zipfile

    from bwdoctor.probes import artifacts

    assert zipfile.BadZipFile in artifacts.WHEEL_ERRORS and artifacts.zipfile is zipfile
    with pytest.raises(AttributeError):
        artifacts.no_such_name  # noqa: B018


def test_plain_text_report_reads_only_the_articles_it_names(tmp_path):
    """A report rendered without colour needs no markup engine, and its fix lines read only the Fix sections of the
    articles of its failed findings: not the whole knowledge base (whose signature patterns cost more than the
    rest), nor a TOML header."""
    root = Path(__file__).parent / "fixtures" / "roots" / "venv-box"
    code = (
        "import sys, json; from bwdoctor.cli import main; from bwdoctor import knowledge; "
        "main(['check', '--root', sys.argv[1], '--no-color', '-o', sys.argv[2]]); "
        "print(json.dumps(['rich' in sys.modules, knowledge.load_all.cache_info().currsize, "
        "knowledge.section.cache_info().currsize, 'tomllib' in sys.modules]))"
    )
    out = tmp_path / "r.txt"
    env = {**os.environ, "BWDOCTOR_PLUGINS": "", "BWDOCTOR_CACHE_DIR": str(tmp_path / "c")}
    res = subprocess.run(
        [sys.executable, "-c", code, str(root), str(out)], capture_output=True, text=True, timeout=120, env=env
    )
    rich_loaded, all_parsed, sections_read, toml_loaded = json.loads(res.stdout.splitlines()[-1])
    text = out.read_text()
    assert "fix: " in text and "\x1b[" not in text
    assert not rich_loaded and all_parsed == 0 and sections_read >= 1 and not toml_loaded
