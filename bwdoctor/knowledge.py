"""The knowledge base: Markdown articles with a TOML header, shipped as package data (bwdoctor.kb)."""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional

from . import lazyre
from .records import dataclass, field

SECTIONS = ("Symptom", "Why it happens", "Fix", "Verify")
HEADER_KEYS = {"slug", "title", "aliases", "signatures", "checks", "applies_to", "references", "excludes"}
REQUIRED_KEYS = {"slug", "title", "aliases", "signatures", "checks", "applies_to", "references"}
FRONT_RE = lazyre.compile(r"\A\+\+\+\n(.*?)\n\+\+\+\n(.*)\Z", re.S)
SECTION_RE = lazyre.compile(r"^## (.+?)\s*$", re.M)


class ArticleError(ValueError):
    """An article does not follow the format."""


@dataclass
class Article:
    """One KB article: header fields plus its four sections (Markdown text)."""

    slug: str
    title: str
    aliases: List[str]
    signatures: List[str]
    checks: List[str]
    applies_to: Dict[str, str]
    references: List[str]
    sections: Dict[str, str] = field(default_factory=dict)
    excludes: List[str] = field(default_factory=list)  # text that argues against this topic (explain)

    @property
    def patterns(self) -> List[re.Pattern]:
        return [re.compile(s, re.I | re.M) for s in self.signatures]

    def to_json(self) -> dict:
        return {
            "slug": self.slug,
            "title": self.title,
            "aliases": self.aliases,
            "signatures": self.signatures,
            "checks": self.checks,
            "applies_to": self.applies_to,
            "references": self.references,
            "sections": self.sections,
        }


def front(text: str) -> Optional[re.Match]:
    """An article's TOML header (group 1) and Markdown body (group 2), or None when it has no header."""
    return FRONT_RE.match(text.replace("\r\n", "\n"))


def toml():
    """The TOML reader (imported when an article's header is read: a report's fix lines need none)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib


def parse_article(text: str, filename: str = "<article>") -> Article:
    """Parse and validate one article; raise ArticleError naming what is wrong."""
    m = front(text)
    if not m:
        raise ArticleError(f"{filename}: must start with a TOML header between '+++' lines")
    tomllib = toml()
    try:
        head = tomllib.loads(m.group(1))
    except tomllib.TOMLDecodeError as exc:
        raise ArticleError(f"{filename}: TOML header: {exc}") from None
    missing = REQUIRED_KEYS - set(head)
    extra = set(head) - HEADER_KEYS
    if missing or extra:
        raise ArticleError(f"{filename}: header keys missing {sorted(missing)} / unknown {sorted(extra)}")
    head.setdefault("excludes", [])
    for key in ("aliases", "signatures", "checks", "references", "excludes"):
        if not isinstance(head[key], list) or not all(isinstance(x, str) for x in head[key]):
            raise ArticleError(f"{filename}: {key} must be a list of strings")
    if not isinstance(head["applies_to"], dict) or not all(isinstance(v, str) for v in head["applies_to"].values()):
        raise ArticleError(f"{filename}: applies_to must be a table of strings")
    for sig in head["signatures"] + head["excludes"]:
        try:
            re.compile(sig)
        except re.error as exc:
            raise ArticleError(f"{filename}: bad signature regex {sig!r}: {exc}") from None
    sections = _sections(m.group(2))
    if list(sections) != list(SECTIONS):
        raise ArticleError(f"{filename}: sections must be exactly {list(SECTIONS)} in order, found {list(sections)}")
    empty = [k for k, v in sections.items() if not v]
    if empty:
        raise ArticleError(f"{filename}: empty sections {empty}")
    return Article(
        slug=head["slug"],
        title=head["title"],
        aliases=head["aliases"],
        signatures=head["signatures"],
        checks=head["checks"],
        applies_to=head["applies_to"],
        references=head["references"],
        sections=sections,
        excludes=head["excludes"],
    )


@lru_cache(maxsize=1)
def load_all() -> Dict[str, Article]:
    """Every article shipped in bwdoctor.kb, by slug. Malformed articles are skipped (tests forbid them)."""
    from importlib import resources

    out: Dict[str, Article] = {}
    for entry in resources.files("bwdoctor.kb").iterdir():
        if entry.name.endswith(".md"):
            try:
                art = parse_article(entry.read_text(encoding="utf-8"), entry.name)
            except (ArticleError, OSError, UnicodeDecodeError):
                continue
            out[art.slug] = art
    return out


_SLUG_RE = lazyre.compile(r"[a-z0-9][a-z0-9-]*\Z")


def _article_text(slug: str) -> Optional[str]:
    """The raw text of one article by slug (the file name is the slug: the format test holds it)."""
    if not isinstance(slug, str) or not _SLUG_RE.match(slug):
        return None
    name = f"{slug}.md"
    base = Path(__file__).parent / "kb"
    try:
        if base.is_dir():
            return (base / name).read_text(encoding="utf-8")
        from importlib import resources  # an editable install maps the package elsewhere

        return resources.files("bwdoctor.kb").joinpath(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _sections(body: str) -> Dict[str, str]:
    parts = SECTION_RE.split(body)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


@lru_cache(maxsize=None)
def article(slug: str) -> Optional[Article]:
    """One article by slug, reading and parsing only its own file.

    A report names a handful of articles; parsing all of them (their headers and every signature pattern) costs
    a rendered report more than the rest of its rendering.
    """
    if load_all.cache_info().currsize:
        return load_all().get(slug)
    text = _article_text(slug)
    try:
        art = parse_article(text, f"{slug}.md") if text is not None else None
    except ArticleError:
        return None
    return art if art is not None and art.slug == slug else None


@lru_cache(maxsize=None)
def section(slug: str, name: str) -> Optional[str]:
    """One section of one article, without parsing its header (a report's fix lines need nothing more)."""
    if load_all.cache_info().currsize or article.cache_info().currsize:
        art = article(slug)
        return art.sections.get(name) if art else None
    text = _article_text(slug)
    m = front(text) if text is not None else None
    return _sections(m.group(2)).get(name) if m else None


def article_files() -> Dict[str, str]:
    """Raw text of every article file, by file name (for format tests)."""
    from importlib import resources

    return {
        e.name: e.read_text(encoding="utf-8")
        for e in resources.files("bwdoctor.kb").iterdir()
        if e.name.endswith(".md")
    }


def lookup(topic: str, checks=()) -> Optional[Article]:
    """Resolve a slug, alias, check id or check name to its article."""
    arts = load_all()
    t = topic.strip()
    if t in arts:
        return arts[t]
    low = t.lower()
    for a in arts.values():
        if low in (x.lower() for x in a.aliases):
            return a
    for c in checks:
        if t.upper() == c.id or low == c.name:
            return arts.get(c.kb)
    return None


def nearest(topic: str, checks=(), n: int = 5) -> List[str]:
    """The closest known topics to a misspelt one."""
    names = set(load_all())
    for a in load_all().values():
        names.update(a.aliases)
    for c in checks:
        names.update({c.id, c.name})
    import difflib

    close = difflib.get_close_matches(topic.strip(), sorted(names), n=n, cutoff=0.5)
    if not close:
        close = [x for x in sorted(names) if topic.strip().lower() in x.lower()][:n]
    return close
