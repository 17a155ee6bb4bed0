"""Every KB article follows the format, and articles and checks point at each other."""

import re

import pytest

from bwdoctor import knowledge, registry

ARTICLES = knowledge.article_files()


def test_there_are_articles():
    assert len(ARTICLES) >= 5


@pytest.mark.parametrize("filename", sorted(ARTICLES))
def test_article_format(filename):
    art = knowledge.parse_article(ARTICLES[filename], filename)
    assert filename == f"{art.slug}.md"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", art.slug)
    assert art.title and art.references, "every article cites its sources"
    assert all(r.startswith("https://") for r in art.references)


def test_parse_article_rejects_bad_input():
    with pytest.raises(knowledge.ArticleError, match="TOML header"):
        knowledge.parse_article("no header")
    good = ARTICLES[sorted(ARTICLES)[0]]
    with pytest.raises(knowledge.ArticleError, match="sections"):
        knowledge.parse_article(good.replace("## Verify", "## Check"))
    with pytest.raises(knowledge.ArticleError, match="bad signature"):
        knowledge.parse_article(good.replace("signatures = [", "signatures = ['(unclosed', "))


def test_checks_and_articles_cross_reference():
    reg = registry.load(no_plugins=True)
    arts = knowledge.load_all()
    assert len(arts) == len(ARTICLES), "an article failed to parse"
    for c in reg.checks.values():
        assert c.kb in arts, f"{c.id} points to missing article {c.kb}"
        assert c.id in arts[c.kb].checks, f"article {c.kb} does not list {c.id}"
    for a in arts.values():
        for cid in a.checks:
            assert cid in reg.checks, f"article {a.slug} lists unknown check {cid}"
            assert reg.checks[cid].kb == a.slug, f"article {a.slug} lists {cid}, which points to {reg.checks[cid].kb}"


def test_aliases_are_unique_and_not_slugs():
    arts = knowledge.load_all()
    seen = {}
    for a in arts.values():
        for al in a.aliases:
            assert al not in arts, f"alias {al} of {a.slug} is another slug"
            assert al.lower() not in seen, f"alias {al} of {a.slug} also belongs to {seen.get(al.lower())}"
            seen[al.lower()] = a.slug
