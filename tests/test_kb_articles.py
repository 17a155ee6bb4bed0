"""KB articles: format, coverage of the researched topics, and signatures grounded in real error text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bwdoctor.knowledge import SECTIONS, article_files, load_all, parse_article

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "errors.jsonl"
TOPICS = Path("/work/shared/research/kb-topics.md")
EXTRA_SLUGS = {
    "workaround-flags-slow",
    "missing-kv-scales",
    "flashinfer-nvfp4-moe-sm120",
    "sampler-warmup-oom",
    "cpu-isa-mismatch",
    "local-patch-drift",
    "torch-cuda-arch-list",
    "no-driver-in-container",
    "gpus-hidden",
    "cxx11-abi-mismatch",
    "cuda-major-mismatch",
    "libstdcxx-too-old",
    "cpu-torch-cuda-extension",
}


def corpus():
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


FILES = article_files()
# Conditions that print no error of their own (a slow rebuild, two copies of a package)
NO_ERROR_TEXT = {
    "ccache-missing",
    "duplicate-packages",
    # a capacity verdict of `bwdoctor plan`; its run-time text is the generic CUDA OOM of startup-oom
    "weights-do-not-fit",
    # vLLM reads no --config=FILE and says nothing about it
    "config-flag-ignored",
    # wheels overwriting each other's files, two CUDA majors mapped side by side: no error text of their own
    # (what follows is another article's: a missing library, an undefined symbol)
    "files-owned-by-two-distributions",
    "two-cuda-runtimes",
}


def test_articles_exist():
    assert len(FILES) >= 40


@pytest.mark.parametrize("name", sorted(FILES))
def test_article_parses_and_is_complete(name):
    art = parse_article(FILES[name], name)
    assert name == f"{art.slug}.md"
    assert list(art.sections) == list(SECTIONS)
    if art.slug not in NO_ERROR_TEXT:
        assert art.signatures, "an article needs at least one error signature"
    assert art.references and all(r.startswith("https://") for r in art.references)
    verify = art.sections["Verify"]
    assert re.search(r"bwdoctor (check|prebuild|plan|symbols|cubins|verify-build|fleet)\b", verify), (
        "Verify names the bwdoctor command that confirms the fix"
    )
    fix = art.sections["Fix"]
    assert "    " in fix or "```" in fix, "Fix must contain a command block"


def test_every_researched_topic_and_extra_slug_has_an_article():
    slugs = set(load_all())
    assert EXTRA_SLUGS <= slugs, EXTRA_SLUGS - slugs
    if not TOPICS.exists():
        pytest.skip("research notes not available here")
    topics = {m.group(1) for m in re.finditer(r"^## ([a-z0-9-]+)\s*$", TOPICS.read_text(), re.M)}
    assert topics and topics <= slugs, topics - slugs


OWN_SLUGS = sorted({i["slug"] for i in corpus()} | EXTRA_SLUGS)


def test_own_slugs_cover_every_article_here():
    # articles merged in from elsewhere may lack corpus items; every article written with this corpus has them
    assert len(OWN_SLUGS) >= 41


@pytest.mark.parametrize("slug", OWN_SLUGS)
def test_signatures_match_real_text_of_their_topic(slug):
    art = load_all()[slug]
    texts = [i["text"] for i in corpus() if i["slug"] == slug]
    assert texts, f"no real excerpt for {slug} in the corpus"
    assert any(re.search(sig, t, re.I | re.M) for sig in art.signatures for t in texts)


def test_bad_article_is_rejected():
    good = FILES["no-kernel-image.md"]
    with pytest.raises(ValueError):
        parse_article(good.replace("## Verify", "## Checks"), "x.md")
    with pytest.raises(ValueError):
        parse_article(good.replace("signatures = [", "signatures = ['(unclosed', "), "x.md")
