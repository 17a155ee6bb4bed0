"""Demangling real symbols (taken from this machine's libstdc++) with __cxa_demangle and with c++filt."""

import shutil

import pytest

from bwdoctor.elf import demangle as dm

TORCH_SYM = "_ZN3c105ErrorC2ENS_14SourceLocationENSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
OLD_ABI_SYM = "_ZN3c105ErrorC2ENS_14SourceLocationESs"


def test_cxa_demangle():
    if dm._load() is None:
        pytest.skip("libstdc++ not loadable")
    assert (
        dm.demangle(TORCH_SYM) == "c10::Error::Error(c10::SourceLocation, std::__cxx11::basic_string<char, "
        "std::char_traits<char>, std::allocator<char> >)"
    )
    assert dm.demangle(OLD_ABI_SYM) == "c10::Error::Error(c10::SourceLocation, std::string)"
    assert dm.demangle("PyLong_FromLong") is None and dm.demangle("_Zgarbage!") is None


@pytest.mark.skipif(not shutil.which("c++filt"), reason="binutils' c++filt not installed")
def test_cxxfilt_agrees_with_cxa_demangle():
    got = dm.cxxfilt([TORCH_SYM, OLD_ABI_SYM, "cuTensorMapEncodeTiled"])
    assert set(got) == {TORCH_SYM, OLD_ABI_SYM}
    if dm._load() is not None:
        assert got[TORCH_SYM] == dm.demangle(TORCH_SYM)


def test_degrades_without_any_demangler(monkeypatch):
    monkeypatch.setattr(dm, "_lib", False)
    monkeypatch.setattr(dm.fileio, "which", lambda _name: None)  # no c++filt on PATH
    dm.demangle.cache_clear()
    try:
        assert dm.demangle(TORCH_SYM) is None  # shown mangled, no error
        assert dm.cxxfilt([TORCH_SYM], exe="/nonexistent/c++filt") == {}
    finally:
        dm.demangle.cache_clear()
