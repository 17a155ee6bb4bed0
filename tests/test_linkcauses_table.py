"""The link-cause table (checks/linkcauses.py): the one place that turns the loader's raw result into a cause."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bwdoctor.checks import linkcauses
from bwdoctor.checks.linkcauses import CAUSES, FIXES, LINK_CAUSE_SLUGS, classify, fix_for, torch_matches
from bwdoctor.elf.dynlink import interpreter_loader
from bwdoctor.probes import links

KB = Path(__file__).resolve().parent.parent / "kb"
TB = {"version": "2.9.1", "cuda": "12.8"}


def test_every_slug_has_an_article_and_a_fix():
    assert LINK_CAUSE_SLUGS == tuple(dict.fromkeys(LINK_CAUSE_SLUGS))  # each once
    for slug in LINK_CAUSE_SLUGS:
        assert (KB / f"{slug}.md").is_file(), slug
    assert {r.slug for r in CAUSES} <= set(FIXES)
    # the causes explain used to list by hand, and those it missed, come from the table
    assert {
        "undefined-symbol",
        "cxx11-abi-mismatch",
        "cuda-major-mismatch",
        "libstdcxx-too-old",
        "cpu-torch-cuda-extension",
        "sm12x-missing-kernel-symbol",
        "missing-library",
        "no-driver-in-container",
        "driver-too-old",
        "torchvision-mismatch",
        "torch-pin-conflict",
    } == set(LINK_CAUSE_SLUGS)


def test_a_loading_file_has_no_cause():
    assert classify({"missing_libraries": [], "missing_versions": [], "undefined": [], "error": None}, TB) is None


def test_missing_library_comes_before_versions_and_symbols():
    raw = {
        "missing_libraries": [{"name": "libfoo.so.1", "needed_by": "/x.so", "tried": []}],
        "missing_versions": [
            {
                "version": "GLIBCXX_3.4.32",
                "file": "libstdc++.so.6",
                "required_by": "/x.so",
                "provider": "/lib/libstdc++.so.6",
            }
        ],
        "undefined": [{"symbol": "cuTensorMapEncodeTiled"}],
    }
    assert classify(raw, TB) == {"cause": "missing-library", "summary": "libfoo.so.1 is not found (needed by /x.so)"}
    raw["missing_libraries"] = []
    v = classify(raw, TB)
    assert v["cause"] == "libstdcxx-too-old" and "GLIBCXX_3.4.32" in v["summary"]


def test_newest_glibcxx_names_the_libstdcxx_needed():
    vers = [
        {
            "version": f"GLIBCXX_3.4.{n}",
            "file": "libstdc++.so.6",
            "required_by": "/x.so",
            "provider": "/old/libstdc++.so.6",
        }
        for n in (21, 32, 29)
    ]
    v = classify({"missing_versions": vers}, TB)
    assert v["cause"] == "libstdcxx-too-old" and "`GLIBCXX_3.4.32'" in v["summary"] and "2 more" in v["summary"]


def test_rules_read_every_undefined_name_not_only_the_ones_shown():
    shown = [
        {"symbol": f"_ZN3foo{i}barEv", "demangled": f"foo{i}::bar()", "version": None, "required_by": "/x.so"}
        for i in range(links.MAX_SYMBOLS)
    ]
    raw = {
        "undefined": shown,
        "undefined_count": 30,
        "undefined_names": [u["symbol"] for u in shown] + ["cuTensorMapEncodeTiled"],
    }
    assert classify(raw, TB)["cause"] == "driver-too-old"
    raw.pop("undefined_names")  # a plain loader result: only what it lists
    assert classify(raw, TB) == {"cause": "undefined-symbol", "summary": "undefined symbol foo0::bar()"}


def test_torch_symbol_cause_depends_on_the_distribution_and_names_the_build():
    raw = {"undefined": [{"symbol": "_ZN3c104cuda9SetDeviceEi", "demangled": "c10::cuda::SetDevice(int)"}]}
    built = {"torch": "2.8.0", "source": "Requires-Dist torch==2.8.0"}
    tv = classify(raw, TB, "torchvision", built)
    assert tv == {
        "cause": "torchvision-mismatch",
        "summary": "undefined c10::cuda::SetDevice(int): built against "
        "another torch than 2.9.1 (built for torch 2.8.0, per Requires-Dist torch==2.8.0)",
    }
    assert classify(raw, TB, "vllm", built)["cause"] == "undefined-symbol"


@pytest.mark.parametrize(
    "built,installed,want",
    [
        ({"torch": "2.8"}, "2.8.0+cu128", True),
        ({"torch": "2.8.0"}, "2.8.1", False),
        ({"torch": None, "range": "torch>=2.10"}, "2.10.1+cu128", True),
        ({"torch": None, "range": "torch>=2.10"}, "2.10.0rc1", False),  # a pre-release comes before 2.10
        ({"torch": None, "range": "torch>=2.10"}, "2.9.1", False),
        ({"torch": "2.8.0"}, "not-a-version", None),
    ],
)
def test_torch_matches(built, installed, want):
    assert torch_matches(built, installed) is want


def test_fixes_are_per_slug_with_the_exact_command():
    assert (
        fix_for("undefined-symbol", "torchvision", "2.9.1+cu128", "12.8", None)
        == "pip install torchvision==0.24.1 --index-url https://download.pytorch.org/whl/cu128"
    )
    assert "docker run --gpus all" in fix_for("no-driver-in-container", "vllm", "2.9.1", "12.8", None)
    assert fix_for("cpu-torch-cuda-extension", "vllm", "2.9.1+cpu", None, None).startswith(
        "pip install --force-reinstall 'torch==2.9.1' --index-url https://download.pytorch.org/whl/cu128"
    )
    assert linkcauses.fix_for_other_torch("xformers", "2.9.1+cu128", {"torch": "2.10.0"}).startswith(
        "pip install 'torch==2.10.0' --index-url https://download.pytorch.org/whl/cu128"
    )


def _cxx(out: Path, src: str, *flags) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    c = out.with_suffix(".cpp")
    c.write_text(src)
    subprocess.run(
        ["g++", "-shared", "-fPIC", "-o", str(out), str(c), *flags], check=True, timeout=120, capture_output=True
    )
    return out


@pytest.mark.skipif(not shutil.which("g++"), reason="g++ not installed")
def test_cxx11_extension_under_a_pre_cxx11_torch_is_told_by_the_twin(tmp_path):
    """torch built with _GLIBCXX_USE_CXX11_ABI=0 (as torch < 2.7 wheels) defines c10::warn(std::string) with the old
    string; an extension built with the C++11 one needs the other mangling. Only the probe's evidence that the
    process defines the twin tells this from a symbol of another torch."""
    lib = tmp_path / "torch/lib"
    _cxx(
        lib / "libc10.so",
        "#include <string>\nnamespace c10 { int warn(const std::string& s) { return (int)s.size(); } }\n",
        "-D_GLIBCXX_USE_CXX11_ABI=0",
        "-Wl,-soname,libc10.so",
    )
    ext = _cxx(
        tmp_path / "ext/_C.so",
        '#include <string>\nnamespace c10 { int warn(const std::string&); }\nint f() { return c10::warn("x"); }\n',
        f"-L{lib}",
        "-lc10",
    )
    ld, _ = interpreter_loader({"executable": sys.executable}, torch_dir=str(tmp_path / "torch"))
    ld.preload(str(lib / "libc10.so"), global_=True)
    raw = links.link_result(ld, str(ext), str(tmp_path))
    new = "_ZN3c104warnERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
    assert raw["undefined_names"] == [new] and raw["abi_twin_defined"] == [new] and raw["loads"] is False
    v = classify(raw, TB)
    assert v["cause"] == "cxx11-abi-mismatch" and "uses the C++11 std::string ABI" in v["summary"]
    assert classify(dict(raw, abi_twin_defined=[]), TB)["cause"] == "undefined-symbol"
