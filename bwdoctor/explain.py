"""Match pasted error text or whole logs against the KB signatures: which article, where, and the facts in it.

Each signature is a Python regex (case-insensitive, multiline). A leading ``(?#w=0.4)`` comment lowers a
signature's weight (a hint, not proof). An article may list ``excludes``: patterns that, when present in the
same text, say the error belongs to a look-alike article (e.g. ``__cxx11`` for a generic c10 undefined symbol).

Speed for big logs comes from a literal "anchor" per pattern: the lowercased text is searched with str.find
for the anchor and the regex runs only on the few lines around each hit.
"""

from __future__ import annotations

import bisect
import io
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from bwdoctor.elf.demangle import demangle
from bwdoctor.redact import redact

try:  # Python >= 3.11 keeps the parser here; older ones expose sre_parse
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]

FLAGS = re.I | re.M
WINDOW_LINES = 3  # lines kept either side of an anchor hit, for signatures spanning lines
EXCERPT_MAX = 300
CHUNK_BYTES = 8 << 20
EXCLUDE_FACTOR = 0.3
_WEIGHT_RE = re.compile(r"^\(\?#w=([0-9.]+)\)")


@dataclass
class _Pattern:
    source: str
    regex: re.Pattern
    anchor: Optional[str]  # lowercase literal every match contains
    weight: float = 1.0
    specificity: float = 0.0  # count of literal characters a match must contain


@dataclass
class _ArticleRules:
    slug: str
    signatures: List[_Pattern]
    excludes: List[_Pattern] = field(default_factory=list)


# ---------------------------------------------------------------- pattern analysis


def _literal_runs(items) -> tuple:
    """(required literal characters, list of literal runs) of a parsed regex sequence."""
    runs: List[str] = []
    cur: List[str] = []
    total = 0.0

    def flush():
        if cur:
            runs.append("".join(cur))
            cur.clear()

    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            cur.append(chr(av).lower())
            total += 1
            continue
        if name == "SUBPATTERN":
            sub_total, sub_runs = _literal_runs(av[-1])
            total += sub_total
            flush()
            runs.extend(sub_runs)
            continue
        flush()
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            sub_total, sub_runs = _literal_runs(av[2])
            total += sub_total
            runs.extend(sub_runs)
        elif name == "BRANCH":
            totals = [_literal_runs(b)[0] for b in av[1]]
            total += min(totals) if totals else 0
        elif name == "IN":
            total += 0.3
    flush()
    return total, runs


def _analyse(source: str) -> _Pattern:
    m = _WEIGHT_RE.match(source)
    weight = float(m.group(1)) if m else 1.0
    regex = re.compile(source, FLAGS)
    try:
        total, runs = _literal_runs(_sre_parse.parse(source, FLAGS))
    except Exception:  # unusual syntax: no anchor, regex runs on the whole text
        total, runs = 0.0, []
    runs = [r for r in runs if len(r.strip()) >= 3]
    anchor = max(runs, key=len) if runs else None
    return _Pattern(source=source, regex=regex, anchor=anchor, weight=min(weight, 1.0), specificity=total)


def _excludes_of(article) -> List[str]:
    """The article's ``excludes`` patterns (from the Article, else from the shipped file's header)."""
    ex = getattr(article, "excludes", None)
    if ex is not None:
        return list(ex)
    return list(_shipped_excludes().get(article.slug, []))


@lru_cache(maxsize=1)
def _shipped_excludes() -> Dict[str, List[str]]:
    from bwdoctor.knowledge import FRONT_RE, article_files, tomllib

    out: Dict[str, List[str]] = {}
    try:
        files = article_files()
    except Exception:
        return out
    for text in files.values():
        m = FRONT_RE.match(text.replace("\r\n", "\n"))
        if not m:
            continue
        try:
            head = tomllib.loads(m.group(1))
        except Exception:
            continue
        if isinstance(head.get("excludes"), list):
            out[str(head.get("slug"))] = [x for x in head["excludes"] if isinstance(x, str)]
    return out


_RULES_CACHE: Dict[tuple, List[_ArticleRules]] = {}


def _rules(articles: Dict[str, Any]) -> List[_ArticleRules]:
    key = tuple((slug, tuple(a.signatures), tuple(_excludes_of(a))) for slug, a in sorted(articles.items()))
    hit = _RULES_CACHE.get(key)
    if hit is None:
        hit = [
            _ArticleRules(
                slug=slug,
                signatures=[_analyse(s) for s in a.signatures],
                excludes=[_analyse(s) for s in _excludes_of(a)],
            )
            for slug, a in sorted(articles.items())
        ]
        _RULES_CACHE.clear()
        _RULES_CACHE[key] = hit
    return hit


# ---------------------------------------------------------------- scanning


@dataclass
class _Hit:
    line: int  # 1-based line in the whole input
    text_line: str
    window: str


_DIGITS_TO_0 = str.maketrans("123456789", "000000000")
_MAX_TRIES = 64  # occurrences of one repeated line template tried before giving up


class _Chunk:
    """A block of lines plus a deduplicated view of them for fast anchor search.

    Logs repeat a few line templates thousands of times. Lines are lowercased and their digits folded to 0;
    anchors are searched once in the text of the distinct templates, and the real regex then runs on the
    original lines of each template that contains the anchor.
    """

    def __init__(self, text: str, first_line: int):
        self.first_line = first_line
        self.lines = text.split("\n")
        occ: Dict[str, List[int]] = {}
        for i, ln in enumerate(text.translate(_DIGITS_TO_0).lower().split("\n")):
            lst = occ.get(ln)
            if lst is None:
                occ[ln] = [i]
            elif len(lst) < _MAX_TRIES:
                lst.append(i)
        self.templates = list(occ.values())
        self.utext = "\n".join(occ)
        self.starts = [0]
        for t in occ:
            self.starts.append(self.starts[-1] + len(t) + 1)
        self._found: Dict[str, List[int]] = {}

    def _template_hits(self, anchor: str) -> List[int]:
        got = self._found.get(anchor)
        if got is None:
            got = []
            pos = self.utext.find(anchor)
            while pos >= 0:
                u = bisect.bisect_right(self.starts, pos) - 1
                got.append(u)
                pos = self.utext.find(anchor, self.starts[u + 1] if u + 1 < len(self.starts) else len(self.utext))
            self._found[anchor] = got
        return got

    def window(self, i: int) -> str:
        return "\n".join(self.lines[max(0, i - WINDOW_LINES) : i + WINDOW_LINES + 1])

    def first_match(self, p: _Pattern) -> Optional[_Hit]:
        """The first line (by position) where p matches, looking only near its anchor's occurrences."""
        if p.anchor is None:
            text = "\n".join(self.lines)
            m = p.regex.search(text)
            if not m:
                return None
            i = text.count("\n", 0, m.start())
            return _Hit(line=self.first_line + i, text_line=self.lines[i], window=self.window(i))
        candidates = sorted(i for u in self._template_hits(p.anchor.translate(_DIGITS_TO_0)) for i in self.templates[u])
        for i in candidates:
            lo = max(0, i - WINDOW_LINES)
            win = "\n".join(self.lines[lo : i + WINDOW_LINES + 1])
            m = p.regex.search(win)
            if m:
                j = lo + win.count("\n", 0, m.start())
                return _Hit(line=self.first_line + j, text_line=self.lines[j], window=self.window(j))
        return None


class _Scanner:
    """Accumulates signature hits over one text or over the chunks of a log."""

    def __init__(self, rules: List[_ArticleRules]):
        self.rules = rules
        self.hits: Dict[str, Dict[int, _Hit]] = {}
        self.excluded: set = set()

    def feed(self, text: str, first_line: int) -> None:
        chunk = _Chunk(text, first_line)
        for r in self.rules:
            for i, p in enumerate(r.signatures):
                if i in self.hits.get(r.slug, {}):
                    continue
                hit = chunk.first_match(p)
                if hit is not None:
                    self.hits.setdefault(r.slug, {})[i] = hit
            if r.slug not in self.excluded:
                for p in r.excludes:
                    if chunk.first_match(p) is not None:
                        self.excluded.add(r.slug)
                        break

    def results(self) -> List[dict]:
        out: List[Dict[str, Any]] = []
        for r in self.rules:
            hits = self.hits.get(r.slug)
            if not hits:
                continue
            scored = []
            for i, h in hits.items():
                p = r.signatures[i]
                scored.append((p.weight * (0.55 + 0.45 * min(1.0, p.specificity / 45.0)), -h.line, i, h))
            scored.sort(reverse=True)
            best, _, best_i, best_hit = scored[0]
            score = min(1.0, best + 0.04 * (len(scored) - 1))
            if r.slug in self.excluded:
                score *= EXCLUDE_FACTOR
            windows = "\n".join(h.window for *_, h in sorted(scored, key=lambda x: x[3].line))
            out.append(
                {
                    "slug": r.slug,
                    "score": round(score, 4),
                    "line": best_hit.line,
                    "excerpt": redact(best_hit.text_line.strip()[:EXCERPT_MAX]),
                    "details": extract_details(windows, focus=best_hit.text_line),
                    "_n": len(scored),
                }
            )
        out.sort(key=lambda m: (-m["score"], -m["_n"], m["slug"]))
        for m in out:
            del m["_n"]
        return out


# ---------------------------------------------------------------- public API


def _default_articles():
    from bwdoctor.knowledge import load_all

    return load_all()


def match_text(text: str, articles: Optional[Dict[str, Any]] = None) -> List[dict]:
    """Matches of pasted error text against KB signatures, best first (empty list when nothing matches)."""
    if not isinstance(text, str) or not text.strip():
        return []
    scanner = _Scanner(_rules(articles if articles is not None else _default_articles()))
    scanner.feed(text.replace("\r\n", "\n"), 1)
    return scanner.results()


def _chunks_from_file(path: Path) -> Iterable[tuple]:
    line = 1
    rest = ""
    with open(path, "rb") as fh:
        reader = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline=None)
        while True:
            block = reader.read(CHUNK_BYTES)
            if not block:
                break
            block = rest + block
            cut = block.rfind("\n")
            if cut < 0:
                rest = block
                continue
            # keep a few lines of overlap so multi-line signatures are not cut at chunk edges
            keep_from = cut + 1
            for _ in range(WINDOW_LINES):
                k = block.rfind("\n", 0, keep_from - 1)
                if k < 0:
                    break
                keep_from = k + 1
            chunk = block[:cut]
            yield chunk, line
            line += chunk.count("\n", 0, keep_from) if keep_from <= len(chunk) else chunk.count("\n") + 1
            rest = block[keep_from:]
    if rest:
        yield rest, line


def _chunks_from_lines(lines: Iterable[str]) -> Iterable[tuple]:
    buf: List[str] = []
    size = 0
    line = 1
    for ln in lines:
        ln = ln.rstrip("\r\n")
        buf.append(ln)
        size += len(ln) + 1
        if size >= CHUNK_BYTES:
            yield "\n".join(buf), line
            keep = buf[-WINDOW_LINES:]
            line += len(buf) - len(keep)
            buf, size = keep, sum(len(x) + 1 for x in keep)
    if buf:
        yield "\n".join(buf), line


def match_log(
    path_or_lines: Union[str, os.PathLike, Iterable[str]], articles: Optional[Dict[str, Any]] = None
) -> List[dict]:
    """Matches found anywhere in a log file (or an iterable of lines), best first; streams the input."""
    scanner = _Scanner(_rules(articles if articles is not None else _default_articles()))
    if isinstance(path_or_lines, (str, os.PathLike)):
        chunks = _chunks_from_file(Path(path_or_lines))
    else:
        chunks = _chunks_from_lines(path_or_lines)
    for chunk, first_line in chunks:
        scanner.feed(chunk, first_line)
    return scanner.results()


# ---------------------------------------------------------------- details

# C++ names are demangled by the one demangler, bwdoctor.elf.demangle (libstdc++'s, else c++filt).


_SYMBOL = re.compile(r"undefined symbol:\s*([A-Za-z_][\w.$@]*)")
_LIBRARY = re.compile(r"(/[\w.+@~-]+(?:/[\w.+@~ -]+?)*\.so(?:\.\d+)*)\b")
_ARCH = re.compile(r"\b((?:sm|compute)_\d{2,3}[af]?)\b")
_CAPABILITY = re.compile(r"(?:cuda|compute) capability(?: \(CC\))?:?\s*(\d+\.\d)\b", re.I)
_GPU = re.compile(
    r"\b((?:NVIDIA\s+)?(?:GeForce\s+)?(?:RTX\s+PRO\s+\d{4}(?:\s+Blackwell)?(?:\s+(?:Max-Q\s+)?Workstation "
    r"Edition|\s+Server Edition)?"
    r"|RTX\s*\d{4}\s*(?:Ti|D|Laptop "
    r"GPU)?|GTX\s*\d{3,4}\s*(?:Ti)?|GB10|GB200|B200|B100|H100|H200|H800|A100|A10G?|L40S?|L4|T4|V100|A30|A40))",
    re.I,
)
_VERSIONS = {
    "torch": [
        re.compile(r"PyTorch version\s*:?\s*(\d+\.\d+\.\d+[\w.+]*)"),
        re.compile(r"\btorch\s*(?:==|\s)\s*(\d+\.\d+\.\d+(?:\.dev\d+)?(?:\+\w+)?)", re.I),
        re.compile(r"\(you have (\d+\.\d+\.\d+(?:\+\w+)?)\)"),
    ],
    "vllm": [
        re.compile(r"vLLM (?:API server )?version:?\s*(\d+\.\d+\.\d+[\w.+]*)", re.I),
        re.compile(r"\bvllm\s*(?:==|\s)\s*(\d+\.\d+\.\d+[\w.+]*)", re.I),
        re.compile(r"version (\d+\.\d+\.\d+[\w.+]*)\s*$", re.M),
    ],
    "cuda": [
        re.compile(r"CUDA Version:\s*(\d+\.\d+)"),
        re.compile(r"Cuda compilation tools, release (\d+\.\d+)"),
        re.compile(r"CUDA used to build PyTorch:\s*(\d+\.\d+)"),
        re.compile(r"\bCUDA[:\s]+(1[0-3]\.\d)\b", re.I),
    ],
    "driver": [
        re.compile(r"Driver Version:\s*(\d{3}\.\d+(?:\.\d+)?)"),
        re.compile(r"\b[Dd]river(?: version)?[:\s]+(\d{3}\.\d+(?:\.\d+)?)\b"),
    ],
    "nccl": [
        re.compile(r"NCCL version (\d+\.\d+\.\d+)"),
        re.compile(r"\bnccl==(\d+\.\d+\.\d+)", re.I),
        re.compile(r"nvidia-nccl-cu1\d[=\s]+(\d+\.\d+\.\d+)"),
    ],
}
_CU_TAG = re.compile(r"\+cu(1[0-3])(\d)\b")
_DRIVER_CUDA = re.compile(r"too old \(found version (\d{4,5})\)")
_GIB = re.compile(r"(\d+(?:\.\d+)?)\s*GiB")
_ALLOC = re.compile(r"Tried to allocate (\d+(?:\.\d+)?)\s*([GM])iB")
_FREE = re.compile(r"of which (\d+(?:\.\d+)?)\s*([GMK])iB is free")


def _first(patterns, text) -> Optional[str]:
    for p in patterns:
        m = p.search(text)
        if m:
            return m.group(1)
    return None


def _gib(value: str, unit: str) -> float:
    return round(float(value) * {"G": 1.0, "M": 1 / 1024, "K": 1 / 1048576}[unit], 4)


def extract_details(text: str, focus: str = "") -> dict:
    """Facts named in the text: symbol, library, arch, versions, GPU, sizes (secrets redacted)."""
    d: dict = {}
    m = _SYMBOL.search(focus) or _SYMBOL.search(text)
    if m:
        d["symbol"] = m.group(1)
        dm = demangle(m.group(1))
        if dm:
            d["demangled"] = dm
    m = _LIBRARY.search(focus) or _LIBRARY.search(text)
    if m:
        d["library"] = m.group(1)
    archs = list(dict.fromkeys(a.lower() for a in _ARCH.findall(text)))
    if archs:
        d["arch"] = archs[:6]
    m = _CAPABILITY.search(text)
    if m:
        d["compute_capability"] = m.group(1)
    versions = {}
    for name, pats in _VERSIONS.items():
        v = _first(pats, text)
        if v:
            versions[name] = v
    if "cuda" not in versions:
        m = _CU_TAG.search(text)
        if m:
            versions["cuda"] = f"{m.group(1)}.{m.group(2)}"
    m = _DRIVER_CUDA.search(text)
    if m:
        n = int(m.group(1))
        versions["driver_cuda"] = f"{n // 1000}.{(n % 1000) // 10}"
    if versions:
        d["versions"] = versions
    m = _GPU.search(text)
    if m:
        d["gpu"] = " ".join(m.group(1).split())
    sizes: Dict[str, Any] = {}
    m = _ALLOC.search(text)
    if m:
        sizes["tried_to_allocate_gib"] = _gib(m.group(1), m.group(2))
    m = _FREE.search(text)
    if m:
        sizes["free_gib"] = _gib(m.group(1), m.group(2))
    gibs = list(dict.fromkeys(float(x) for x in _GIB.findall(text)))
    if gibs:
        sizes["gib"] = gibs[:8]
    if sizes:
        d["sizes"] = sizes
    return _redact_details(d)


def _redact_details(d: dict) -> dict:
    out: Dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, str):
            out[k] = redact(v)
        elif isinstance(v, dict):
            out[k] = _redact_details(v)
        elif isinstance(v, list):
            out[k] = [redact(x) if isinstance(x, str) else x for x in v]
        else:
            out[k] = v
    return out
