"""Module-level patterns compiled on first use behave as re's own, and a check run compiles only what it uses."""

from __future__ import annotations

import re
import subprocess
import sys

from bwdoctor import knowledge, lazyre


def test_lazy_pattern_is_re_pattern_on_use():
    lazy = lazyre.compile(r"(?P<k>token)=(\S+)", re.I)
    assert lazy.pattern == r"(?P<k>token)=(\S+)" and lazy.flags == re.I
    assert lazy._compiled is None  # type: ignore[attr-defined]  # nothing compiled yet
    eager = re.compile(r"(?P<k>token)=(\S+)", re.I)
    text = "a TOKEN=abc b token=def"
    assert lazy.sub("x", text) == eager.sub("x", text)
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in eager.finditer(text)]
    assert lazy.search(text).group("k") == "TOKEN" and lazy.groups == 2 and lazy.groupindex == {"k": 1}
    assert lazy.split(text) == eager.split(text) and lazy.fullmatch("token=1")
    assert isinstance(lazy._compiled, re.Pattern)  # type: ignore[attr-defined]


def test_a_bad_pattern_fails_where_it_is_used():
    bad = lazyre.compile("(unclosed")
    try:
        bad.search("x")
    except re.error:
        pass
    else:
        raise AssertionError("a bad pattern must raise re.error on use")


def test_a_check_run_compiles_few_patterns(tmp_path):
    """Most module-level patterns (secret shapes, link causes, serve config lexing) stay uncompiled in a run whose
    report does not reach them."""
    code = (
        "import sys, json; from bwdoctor.cli import main; "
        "main(['check', '--root', sys.argv[1], '--format', 'json', '-o', sys.argv[2]]); "
        "from bwdoctor import lazyre; import gc; "
        "lazy = [o for o in gc.get_objects() if type(o) is lazyre.LazyPattern]; "
        "print(json.dumps([len(lazy), sum(o._compiled is not None for o in lazy)]))"
    )
    from conftest import H100_ROOT

    res = subprocess.run(
        [sys.executable, "-c", code, str(H100_ROOT), str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    total, used = __import__("json").loads(res.stdout.splitlines()[-1])
    assert total >= 20 and used < total / 2, (total, used)


def test_fix_sections_read_without_headers_equal_parsed_articles():
    arts = knowledge.load_all()
    knowledge.section.cache_clear()
    for slug, art in arts.items():
        text = knowledge._article_text(slug)
        m = knowledge.front(text)
        assert knowledge._sections(m.group(2)) == art.sections, slug
        assert knowledge.section(slug, "Fix") == art.sections["Fix"]
    assert knowledge.section("no-such-article", "Fix") is None and knowledge.section("../etc/passwd", "Fix") is None
