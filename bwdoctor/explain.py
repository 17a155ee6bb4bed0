"""Match pasted error text or whole logs against the KB: which article, where, why, and the facts in it.

Three steps. Normalization: bytes are decoded whatever the terminal saved (BOMs, UTF-16 without one), and each
line loses its reply quoting, Markdown fences and log-record prefixes (vLLM/Ray worker tags, levels and
timestamps, ``[rank0]:``, docker compose service names); hard-wrapped lines are joined in a second view.
Tier 1 ("exact"): the articles' signatures, as below. Tier 2 ("likely"): evidence read from the error lines
(symbols, sonames, archs, CUDA error codes, signals, versions, components) and a BM25 score of their words
against each article's title, aliases, signature literals and Symptom, reported with the score and the terms
and hints behind it; below the threshold the answer is "no match" plus the nearest topics.

Each signature is a Python regex (case-insensitive, multiline). A leading ``(?#w=0.4)`` comment lowers a
signature's weight (a hint, not proof). An article may list ``excludes``: patterns that, when present in the
same text, say the error belongs to a look-alike article (e.g. ``__cxx11`` for a generic c10 undefined symbol).

Speed for big logs comes from a literal "anchor" per pattern: the lowercased text is searched with str.find
for the anchor and the regex runs only on the few lines around each hit.
"""

from __future__ import annotations

import bisect
import collections
import html
import io
import json
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import AbstractSet, Any, Dict, Iterable, List, Optional, Union

from bwdoctor.domain.cuda import min_driver_for
from bwdoctor.domain.versions import driver_version_tuple
from bwdoctor.elf.demangle import demangle
from bwdoctor.redact import redact

from .records import dataclass, field

try:  # Python >= 3.11 keeps the parser here; older ones expose sre_parse
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]

FLAGS = re.I | re.M
WINDOW_LINES = 3  # lines kept either side of an anchor hit, for signatures spanning lines
SPAN_LINES_MAX = 4096  # neighbouring windows are searched as one span of at most this many lines
EXCERPT_MAX = 300
CHUNK_BYTES = 8 << 20
EXCLUDE_FACTOR = 0.3
WEAK_EXACT = 0.3  # an exact match scoring below this is a hint (a weighted-down signature), not a diagnosis
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
    from bwdoctor.knowledge import article_files, front, toml

    tomllib = toml()

    out: Dict[str, List[str]] = {}
    try:
        files = article_files()
    except Exception:
        return out
    for text in files.values():
        m = front(text)
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


# ---------------------------------------------------------------- normalization

_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_NUL_SAMPLE = 1 << 16


def _utf16_without_bom(data: bytes) -> Optional[str]:
    """'utf-16-le'/'utf-16-be' when the NUL bytes sit on one side of most byte pairs (ASCII text as UTF-16)."""
    sample = data[:_NUL_SAMPLE]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    if odd >= 0.3 * pairs and even <= 0.05 * pairs:
        return "utf-16-le"
    if even >= 0.3 * pairs and odd <= 0.05 * pairs:
        return "utf-16-be"
    return None


def decode_log(data: bytes) -> str:
    """Text of a pasted error or log, whatever a terminal saved it as.

    A byte-order mark picks UTF-8, UTF-16 or UTF-32; without one, UTF-16 (a Windows terminal's redirect) is told
    by its NUL bytes on one side of each pair; everything else is UTF-8 with undecodable bytes replaced. Stray
    NULs are dropped and CR/CRLF line ends become LF. Never raises on bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return ""
    data = bytes(data)
    encoding = "utf-8"
    for bom, enc in _BOMS:
        if data.startswith(bom):
            encoding, data = enc, data[len(bom) :]
            break
    else:
        encoding = _utf16_without_bom(data) or "utf-8"
    if encoding.startswith(("utf-16", "utf-32")):
        unit = 2 if encoding.startswith("utf-16") else 4
        data = data[: len(data) - len(data) % unit]
    text = data.decode(encoding, "replace")
    if "\x00" in text:
        text = text.replace("\x00", "")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


LINE_MAX = 16384  # a longer line keeps its head and tail; regexes never see more than this per line
_QUOTE = re.compile(r"^[ \t]{0,3}(?:>[ \t]?){1,8}")
_FENCE = re.compile(r"^[ \t]{0,3}(?:```|~~~)[\w+.-]{0,20}[ \t]*$")
_HTML_NOISE = re.compile(r"^[ \t]*</?(?:details|summary|pre|code|br)\b[^>]{0,80}>[ \t]*$", re.I)
# A paste taken from a web page: its markup at either end of a line, <br> inside it, entities (&lt; &#39; &quot;)
_HTML_TAG = r"</?(?:details|summary|pre|code|p|div|span|br|tt|kbd|samp|blockquote)\b[^<>\n]{0,80}/?>"
_HTML_EDGES = re.compile(
    rf"^[ \t]{{0,8}}(?:{_HTML_TAG}[ \t]{{0,4}}){{1,6}}|(?:[ \t]{{0,4}}{_HTML_TAG}){{1,6}}[ \t]*$", re.I
)
_HTML_BR = re.compile(r"<br[ \t]{0,4}/?>", re.I)
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]{2,8});")


# Terminal colours and cursor codes (with their ESC, or without it where a copy from a web page dropped it)
_ANSI = re.compile(
    r"\x1b\[[0-9;?]{0,32}[A-Za-z]|\x1b\][^\x07\x1b\n]{0,256}(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\[\d{1,3}(?:;\d{1,3}){0,4}m"
)


# Characters a copy from a web page, a chat or a word processor puts in place of plain ones: no-break and other
# Unicode spaces (to a space), zero-width characters (dropped) and typographic quotes (to ASCII quotes)
_UNICODE_NOISE = re.compile(
    "[\u00a0\u1680\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff\u2018-\u201f\u2032\u2033]"
)
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_SINGLE_QUOTES = frozenset("\u2018\u2019\u201a\u201b\u2032")


def _plain_char(m: re.Match) -> str:
    ch = m.group(0)
    if ch in _ZERO_WIDTH:
        return ""
    if ch in _SINGLE_QUOTES:
        return "'"
    if "\u201c" <= ch <= "\u201f" or ch == "\u2033":
        return '"'
    return " "


# A container runtime's JSON log record (docker's json-file driver, journald's JSON export, a cloud logger's
# text payload): the message is the value of its log key
_JSON_KEYS = ("log", "MESSAGE", "textPayload")
_JSON_RECORD = re.compile(r'^\{[^\n]{0,200}?"(?:' + "|".join(_JSON_KEYS) + r')"[ \t]*:[ \t]*"')


def _json_record(line: str) -> str:
    """The message of a JSON log record line, or the line itself when it is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if isinstance(record, dict):
        for key in _JSON_KEYS:
            value = record.get(key)
            if isinstance(value, str):
                return value.replace("\n", " ").rstrip()
    return line


# A Markdown list item that quotes the line as inline code ("- `ImportError: ...`"): the marker and backticks go
_MD_ITEM_CODE = re.compile(r"^[ \t]{0,6}(?:[-*+]|\d{1,3}[.)])[ \t]{1,4}`(?!`)([^`\n]{1,16384})`[ \t]*$")


def _unmarkup(line: str) -> str:
    """The line without a web page's markup: tags at its ends, <br> inside, entities decoded (bounded, linear)."""
    if "<" in line:
        line = _HTML_EDGES.sub("", line)
        if "<" in line:
            line = _HTML_BR.sub(" ", line)
    if "&" in line and ";" in line:
        line = _ENTITY.sub(lambda m: html.unescape(m.group(0)), line)
    return line


# Prefixes a logger, a process manager or a container runtime puts before the message; tried in turn, each at
# the start of what is left of the line. Quantifiers are bounded so no prefix can backtrack over a long line.
_PREFIXES = [
    # docker compose: "vllm-1  | ", "api_server_1 | "
    re.compile(r"^[A-Za-z][\w.-]{0,63}[ \t]{1,16}\|[ \t]?"),
    # Ray / vLLM worker tags: "(VllmWorker rank=2 pid=123)", "(RayWorkerWrapper pid=9, ip=10.0.0.1)"
    re.compile(r"^\([^()\n]{0,80}\bpid=\d{1,10}[^()\n]{0,40}\)[ \t]*"),
    # kubectl logs --prefix: "[pod/vllm-7d9c5-x2k4p/vllm] "; pm2: "0|vllm  | "; srun --label: "3: "
    re.compile(r"^\[pod/[\w.-]{1,253}/[\w.-]{1,63}\][ \t]?"),
    re.compile(r"^\d{1,4}\|[\w.-]{1,64}[ \t]{0,16}\|[ \t]?"),
    re.compile(r"^\d{1,5}: "),
    # torch.distributed: "[rank0]: ", mpirun: "[1,0]<stderr>: "
    re.compile(r"^\[rank\d{1,5}\]:[ \t]?"),
    re.compile(r"^\[\d{1,5},\d{1,5}\]<std(?:err|out)>:[ \t]?"),
    # vLLM: "ERROR 01-02 03:04:05 " before "[file.py:12] " (the file tag stays: it says where it was raised)
    re.compile(
        r"^(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)[ \t]{1,4}\d{2}-\d{2}[ \t]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?"
        r"[ \t]{1,4}"
    ),
    # SGLang: "[2025-01-02 03:04:05 TP0] ", "[2025-01-02 03:04:05] "
    re.compile(r"^\[\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,6})?(?:[ \t][\w-]{1,16}){0,3}\][ \t]?"),
    # ISO / syslog / Python logging timestamps, optional level and logger name after them
    re.compile(
        r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?[ \t]{0,4}"
        r"(?:-[ \t])?(?:(?:\[?(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\]?)(?![:\w])[ \t]{0,4}(?:-[ \t])?)?"
    ),
    re.compile(
        r"^[A-Z][a-z]{2}[ \t]{1,2}\d{1,2}[ \t]\d{2}:\d{2}:\d{2}[ \t][\w.-]{1,64}[ \t][\w./-]{1,64}(?:\[\d+\])?:[ \t]?"
    ),
    # dmesg: "[  123.456789] "
    re.compile(r"^\[[ \t]{0,12}\d{1,10}\.\d{1,9}\][ \t]?"),
    # a bare level tag with a logger name: "ERROR:root:", "WARNING:vllm.x:"
    re.compile(r"^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]{1,80}:"),
]
_MAX_PREFIX_ROUNDS = 4
# A log record at INFO or DEBUG level (after an optional quote, worker tag or compose service name): never an
# error line for tier 2, whatever words it holds ("Available KV cache memory: 6.51 GiB" is a healthy start).
_QUIET_RECORD = re.compile(
    r"^[> \t]{0,12}(?:\([^()\n]{0,80}\bpid=\d{1,10}[^()\n]{0,40}\)[ \t]*)?(?:[A-Za-z][\w.-]{0,63}[ \t]{1,16}\|[ \t]?)?"
    r"(?:\[?(?:INFO|DEBUG|TRACE)\]?[ \t:])"
)
# An INFO record that states a failed state (vLLM's profile leaving no KV-cache block) is read as an error line
_LOUD_INFO = re.compile(r"GPU blocks: 0\b|num_gpu_blocks\s{0,2}[=:]\s{0,2}0\b", re.I)
_ANY_PREFIX = re.compile("|".join(f"(?:{p.pattern[1:]})" for p in _PREFIXES))  # one anchored match per round


# Notices of the kernel driver that say nothing failed: its banner on every load (a module that loaded, whatever
# the failure that follows), and that the GSP's own log files are absent ("no GSP-RM logs will be printed")
_DRIVER_NOTICE = re.compile(
    r"NVRM: loading NVIDIA UNIX (?:Open )?(?:x86_64 |aarch64 )?Kernel Module\b|no GSP-RM logs will be printed"
)


def _quiet(raw: str) -> bool:
    """Whether a raw line is an INFO/DEBUG record, or a notice of the kernel driver, that says nothing failed."""
    if _DRIVER_NOTICE.search(raw):
        return True
    return bool(_QUIET_RECORD.match(raw)) and not ("blocks" in raw and _LOUD_INFO.search(raw))


def _strip_prefixes(line: str) -> tuple:
    """(the message of one log line, whether a log-record prefix was removed)."""
    had = False
    for _ in range(_MAX_PREFIX_ROUNDS):
        m = _ANY_PREFIX.match(line)
        if not m or m.end() == 0:
            break
        line = line[m.end() :]
        had = True
    return line, had


def _cap(line: str) -> str:
    if len(line) <= LINE_MAX:
        return line
    half = LINE_MAX // 2
    return line[:half] + " … " + line[-half:]


def normalize_lines(text: str) -> tuple:
    """(message lines, record flags, raw widths): the same number of lines as the text, each with its quoting,
    Markdown and log-record prefixes removed; flags say which lines began a log record (such lines never
    continue another); widths are the raw lines' lengths (a terminal wraps at its width)."""
    out: List[str] = []
    records: List[bool] = []
    widths: List[int] = []
    for raw in text.split("\n"):
        width = len(raw.rstrip())  # a break at a space (trailing blanks kept) is no break inside a word
        line = _cap(raw.rstrip())
        if not line.isascii():
            line = _UNICODE_NOISE.sub(_plain_char, line)
        if line[:1] == "{" and _JSON_RECORD.match(line):
            line = _cap(_json_record(line))
        if "\x1b" in line or ("m" in line and "[" in line):
            plain = _ANSI.sub("", line)
            width -= len(line) - len(plain)  # a terminal wraps what it shows, not its colour codes
            line = plain
        if line[:1] in (">", " ", "\t"):
            m = _QUOTE.match(line)
            if m:
                line = line[m.end() :]
                width -= m.end()  # a reply's quoting came after the text was wrapped
        widths.append(width)
        if _FENCE.match(line) or _HTML_NOISE.match(line):
            out.append("")
            records.append(True)
            continue
        if "<" in line or "&" in line:
            line = _unmarkup(line)
        if "`" in line:
            m = _MD_ITEM_CODE.match(line)
            if m:
                line = m.group(1)
        line, had = _strip_prefixes(line)
        out.append(line)
        records.append(had)
    return out, records, widths


_WRAP_WIDTHS = frozenset({80, 100, 120, 128, 132, 140, 150, 160, 180, 200, 220, 240, 250, 256})
_CONTINUES = re.compile(r"^[a-z0-9_'./`(\]-]")


def _ends_record(line: str) -> bool:
    """Whether a line ends a sentence or a record (or is blank): read from its last character, so that a head
    that grows by its continuations is not scanned again for each one."""
    last = line[-1:]
    if last in (".", "!", "?", ":", ";", ""):
        return True
    return last.isspace() and not line.strip()


JOIN_MAX = 2 << 20  # wrapped lines are joined only in texts up to this size (a paste, not a server log)


_MESSAGE_HEAD = re.compile(r"[\w.]{1,80}:|\w{0,60}(?:Error|Exception|Warning)\b|Traceback\b|[A-Z]{2,12}\b")


def _wrap_width(widths: List[int]) -> int:
    """The column a paste looks word-wrapped at (0 when it does not): its longest line, when that is a plausible
    width and at least two lines reach within 20 columns of it."""
    if not widths:
        return 0
    m = max(widths)
    if not 40 <= m <= 256:
        return 0
    return m if sum(1 for w in widths if w >= m - 20) >= 2 else 0


def join_wrapped(
    lines: List[str], records: List[bool], widths: Optional[List[int]] = None, quiet: Iterable[int] = ()
) -> List[str]:
    """Lines with hard-wrapped continuations appended to the line they continue; each continuation's own place
    becomes an empty line so line numbers stay those of the input. A continuation starts with a lower-case
    letter, digit or path/identifier character, is not indented and is not a new log record; the line it
    continues does not end a sentence. A break at a terminal width is joined without a space.

    A paste word-wrapped at some width (an e-mail, a narrow terminal, an editor) is told line by line the way a
    greedy wrapper works: the line before the break plus the next word would not have fitted. Such a break may
    also come after a colon or before a quote or a path, and may continue an indented line (a traceback's
    ``File "...`` line) or a log record; without a break at a width, neither an indented line nor a log record
    is continued. An INFO/DEBUG record (the indexes in quiet) continues nothing: what follows it is read apart."""
    out = list(lines)
    quiet = set(quiet)
    wrap_at = _wrap_width(widths) if widths is not None and len(widths) == len(lines) else 0
    # a paste that breaks a line short of the width where the next word would not have fitted was word-wrapped:
    # its breaks are at spaces, so a line that reaches the width exactly was cut at a space too, not in a word
    word_paste = (
        wrap_at > 0
        and widths is not None
        and any(
            wrap_at // 2 <= widths[i] < wrap_at
            and lines[i + 1][:1].strip()
            and (widths[i] + 1 + len(lines[i + 1].split(None, 1)[0]) > wrap_at)
            for i in range(len(lines) - 1)
        )
    )
    head = -1
    head_plain = True  # the head neither is indented nor began a log record
    for i, ln in enumerate(lines):
        if head >= 0 and ln and not records[i] and not ln[:1].isspace():
            prev = lines[i - 1]
            at_width = len(prev) in _WRAP_WIDTHS or (widths is not None and widths[i - 1] in _WRAP_WIDTHS)
            word_wrapped = False
            if wrap_at and widths is not None:
                w = widths[i - 1]
                word_wrapped = w >= wrap_at // 2 and w + 1 + len(ln.split(None, 1)[0]) > wrap_at
            cut = at_width or word_wrapped
            # after a word-wrapped break a quoted path may come next, or a capitalized word in the middle of a
            # sentence (the line before ends in a lower-case word or a comma; the word does not head a message)
            starts = bool(_CONTINUES.match(ln)) or (
                word_wrapped
                and (
                    ln[:1] in "\"'/\\<[{"
                    or (ln[:1].isupper() and prev[-1:] in ",abcdefghijklmnopqrstuvwxyz" and not _MESSAGE_HEAD.match(ln))
                )
            )
            ends = _ends_record(out[head]) and not (word_wrapped and out[head][-1:] in ":;")
            if starts and not ends and (head_plain or cut) and len(out[head]) + len(ln) <= LINE_MAX:
                # (a word-wrapped paste breaks inside a word only a token too long for a line: a path, a symbol)
                in_word = not word_paste or " " not in prev[-40:].lstrip()
                glue = "" if at_width and in_word and prev[-1:].strip() and ln[:1].strip() else " "
                out[head] = out[head] + glue + ln
                out[i] = ""
                continue
        head = i if ln.strip() and i not in quiet else -1
        head_plain = not ln[:1].isspace() and not records[i]
    return out


def normalize(text: str) -> str:
    """The text as the matcher reads it: quoting, fences and log prefixes gone, wrapped lines joined (same line
    count as the input; joined continuations leave empty lines)."""
    text = text.replace("\r\n", "\n")
    lines, records, widths = normalize_lines(text)
    if len(text) <= JOIN_MAX:
        quiet = [i for i, raw in enumerate(text.split("\n")) if _quiet(raw)]
        lines = join_wrapped(lines, records, widths, quiet)
    return "\n".join(lines)


# ---------------------------------------------------------------- scanning


@dataclass
class _Hit:
    line: int  # 1-based line in the whole input
    text_line: str
    window: str


_DIGITS_TO_0 = str.maketrans("123456789", "000000000")
_FOLD_BYTES = bytes.maketrans(
    b"123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"000000000abcdefghijklmnopqrstuvwxyz"
)  # ASCII digits to 0 and letters to lower case, at C speed (UTF-8 multibyte sequences are left alone)
_MAX_TRIES = 64  # occurrences of one repeated line template tried before giving up


def _fold(text: str) -> str:
    """text with ASCII digits folded to 0 and ASCII letters lower-cased (same length and line breaks)."""
    return text.encode("utf-8", "surrogatepass").translate(_FOLD_BYTES).decode("utf-8", "surrogatepass")


# Words that make a line an error line for tier 2 (lower case; searched in the folded text of a block)
ERROR_WORDS = (
    "error", "fail", "fatal", "exception", "abort", "killed", "signal", "illegal", "not found", "cannot",
    "can't", "could not", "unable", "unsupported", "not supported", "no such", "invalid", "denied", "refus",
    "panic", "segmentation", "core dumped", "undefined", "mismatch", "too old", "require", "hang", "timed out",
    "timeout", "nvrm", "xid", "compatib", "no kernel", "oom", "out of memory", "does not", "doesn't",
    "not available", "warning", "nvcc", "ptxas", "cicc", "sm_", "compute_", "capability", "glibc", ".so",
    "cuda", "nccl", "gpu", "driver", "exceed", "crash", "stuck", "freez", "segfault", "died",
)  # fmt: skip


class _Chunk:
    """A block of lines plus a deduplicated view of them for fast anchor search.

    Logs repeat a few line templates thousands of times. Lines are lowercased and their digits folded to 0;
    anchors are searched once in the text of the distinct templates, and the real regex then runs on the
    original lines of each template that contains the anchor.
    """

    def __init__(self, lines: List[str], first_line: int):
        self.first_line = first_line
        self.lines = lines
        occ: Dict[str, List[int]] = {}
        for i, ln in enumerate(_fold("\n".join(lines)).split("\n")):
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

    def template_ends(self, word: str, head: int, tail: int) -> set:
        """The first `head` and last `tail` templates that contain word (bounded work on any log)."""
        got: set = set()
        pos = self.utext.find(word)
        while pos >= 0 and len(got) < head:
            u = bisect.bisect_right(self.starts, pos) - 1
            got.add(u)
            pos = self.utext.find(word, self.starts[u + 1] if u + 1 < len(self.starts) else len(self.utext))
        end = len(self.utext)
        n = 0
        pos = self.utext.rfind(word, 0, end)
        while pos >= 0 and n < tail:
            u = bisect.bisect_right(self.starts, pos) - 1
            got.add(u)
            n += 1
            pos = self.utext.rfind(word, 0, self.starts[u]) if self.starts[u] > 0 else -1
        return got

    def window(self, i: int) -> str:
        return "\n".join(self.lines[max(0, i - WINDOW_LINES) : i + WINDOW_LINES + 1])

    def first_match(self, p: _Pattern) -> Optional[_Hit]:
        """The first line (by position) where p matches, looking only near its anchor's occurrences."""
        if p.anchor is None:  # never for shipped signatures (a test asks for an anchor); bounded by the block
            text = "\n".join(self.lines)
            m = p.regex.search(text)
            if not m:
                return None
            i = text.count("\n", 0, m.start())
            return _Hit(line=self.first_line + i, text_line=self.lines[i], window=self.window(i))
        candidates = sorted(i for u in self._template_hits(p.anchor.translate(_DIGITS_TO_0)) for i in self.templates[u])
        # the windows of neighbouring hits overlap: each run of them is searched once, as one span (a log where the
        # anchor is on every line costs one pass, not one per line)
        k = 0
        while k < len(candidates):
            lo = max(0, candidates[k] - WINDOW_LINES)
            hi = candidates[k] + WINDOW_LINES
            k += 1
            while k < len(candidates) and candidates[k] - WINDOW_LINES <= hi + 1 and hi - lo < SPAN_LINES_MAX:
                hi = candidates[k] + WINDOW_LINES
                k += 1
            span = "\n".join(self.lines[lo : hi + 1])
            m = p.regex.search(span)
            if m:
                j = lo + span.count("\n", 0, m.start())
                return _Hit(line=self.first_line + j, text_line=self.lines[j], window=self.window(j))
        return None


class _Scanner:
    """Accumulates signature hits over one text or over the chunks of a log."""

    def __init__(self, rules: List[_ArticleRules]):
        self.rules = rules
        self.hits: Dict[str, Dict[int, _Hit]] = {}
        self.excluded: set = set()
        self.query = _Query()
        self.quiet: set = set()  # lines of the current block that are INFO/DEBUG records
        self.records: List[bool] = []  # which lines of the current block began a log record

    def feed(self, text: str, first_line: int) -> None:
        """Scan one block: its normalized lines, and (for a paste-sized block) the view with wrapped lines joined."""
        if "\x00" in text:  # UTF-16 read as UTF-8 upstream: its ASCII survives once the NULs go
            text = text.replace("\x00", "")
        lines, records, widths = normalize_lines(text)
        self.records = records
        self.quiet = {i for i, raw in enumerate(text.split("\n")) if _quiet(raw)}
        views = [lines]
        if len(text) <= JOIN_MAX:
            joined = join_wrapped(lines, records, widths, self.quiet)
            if joined != lines:
                views.append(joined)
        chunk = None
        for view in views:
            chunk = _Chunk(view, first_line)
            self._scan(chunk)
        if chunk is not None:
            self._collect(chunk)

    def _collect(self, chunk: "_Chunk") -> None:
        """Keep the error lines of the block for tier 2: every line of a short paste, else the first line of
        each distinct line template that holds an error word (found with str.find in the templates' text)."""
        picked: List[int]
        if len(chunk.lines) <= 400:
            picked = list(range(len(chunk.lines)))
        else:
            # the first and latest error templates are all the query keeps; no word is searched further
            head, tail = QUERY_LINES_MAX // 4, QUERY_LINES_MAX
            us: set = set()
            for w in ERROR_WORDS:
                us.update(chunk.template_ends(w, head, tail))
            firsts = sorted(chunk.templates[u][0] for u in us)
            picked = firsts[:head] + firsts[head:][-tail:]
            # the end of a paste is where its error is, in whatever words (a traceback's frames, a user's prose);
            # log records there (a server's WARNING lines) speak for themselves through their error words
            end = [
                i
                for i in range(max(0, len(chunk.lines) - TAIL_LINES), len(chunk.lines))
                if i < len(self.records) and not self.records[i]
            ]
            picked = sorted(set(picked).union(end))
        for i in picked:
            if chunk.lines[i] and i not in self.quiet:
                self.query.add(chunk.first_line + i, chunk.lines[i])

    def _scan(self, chunk: "_Chunk") -> None:
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
                    "tier": "exact",
                    "evidence": [
                        "signature " + redact(r.signatures[i].source[:120])
                        for *_, i, _h in sorted(scored, key=lambda x: x[3].line)
                    ][:4],
                    "_n": len(scored),
                }
            )
        out.sort(key=lambda m: (-m["score"], -m["_n"], m["slug"]))
        for m in out:
            del m["_n"]
        return out


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
        re.compile(r"(?<!NCCL )version (\d+\.\d+\.\d+[\w.+]*)\s*$", re.M),
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


# ---------------------------------------------------------------- evidence

_EV_SYMBOL = re.compile(
    r"(?:undefined symbol|symbol lookup error:[^\n]{0,300}?undefined symbol|could not find symbol)"
    r"[:\s]{1,4}`?([A-Za-z_][\w.$@]{0,1000})"
)
_EV_SYMBOL_LIB = re.compile(r"([\w.+-]{1,200}\.so(?:\.[\w.]{1,20})?)[:,]?[^\n/]{0,40}undefined symbol")
_EV_SONAME = re.compile(
    r"\b(lib[A-Za-z0-9_+-]{1,80}\.so(?:\.\d{1,4}){0,4})\b(?=:?\s{0,3}(?:=>\s{0,3})?(?:cannot open shared object|"
    r"cannot open|not found|cannot found|no such file|cannot be found|could not be found))"
    r"|(?:error while loading shared libraries|Could not load library|Could not find|Cannot find|Unable to load|"
    r"failed to load|cannot load|import ?error|failed to open|could not open|unable to open|"
    r"(?:could not|failed to) dlopen(?: library)?|(?:cannot|could not) find librar(?:y|ies):?|unable to load any of)"
    r"[:\s]{1,4}\{?`?'?"
    r"(lib[A-Za-z0-9_+-]{1,80}\.so(?:\.\d{1,4}){0,4})",
    re.I,
)
# the loader's "version `GLIBCXX_3.4.32' not found", or the same retold ("GLIBCXX 3.4.32 not found")
_EV_GLIBC = re.compile(
    r"(?:version [`'‘\"]?)?\b(GLIBC|GLIBCXX|CXXABI)[_ ](\d{1,2}\.\d{1,3}(?:\.\d{1,3})?)['’\"]? not found"
)
_EV_ARCH = re.compile(r"\b(?:sm|compute|arch=compute|code=sm)_?(\d{2,3})([af]?)\b", re.I)
_EV_CC = re.compile(
    r"(?:compute capability|cuda capability|capability|\bCC)\s{0,3}(?:\(CC\)\s{0,2})?(?:of|is|=|:)?\s{0,3}"
    r"\(?(\d{1,2})(?:\.|,\s{0,2})(\d)\)?",
    re.I,
)
_EV_CUDA_ERR_CODE = re.compile(
    r"\b(?:CUDA (?:driver )?error|cuda error|Error|error code|cudaError|CUresult)\s{0,3}"
    r"[:=(]?\s{0,3}(\d{1,3})\)?\s{0,3}[:,]",
    re.I,
)
# a CUDA runtime / driver status printed by a loader that probes the GPU: Ollama's "cudart init failure: %d",
# "cuda driver library init failure: %d", "cuda driver library failed to get device context %d", "cudaSetDevice
# err: %d" (gpu_info_cudart.c, gpu_info_nvcuda.c), Warp's "... (CUDA error %d)" and "Warp CUDA error %d (...)"; a
# line wrapped inside "failure" keeps its number
_EV_CUDA_STATUS = re.compile(
    r"\b(?:cudart|cuda driver library|nvcuda|cuda) init failur[ \t]{0,40}e:?\s{0,3}(\d{1,3})\b|"
    r"\b(?:cudart|cuda driver library|nvcuda) failed to get device context:?\s{0,3}(\d{1,3})(?!\d)|"
    r"\bcuda[A-Z]\w{2,40} err(?:or)?:\s{0,3}(\d{1,3})\b|\(CUDA error (\d{1,3})\)|\bWarp CUDA error (\d{1,3})\b|"
    r"\bcu(?:da)?DriverGetVersion failed:\s{0,3}(\d{1,3})\b|"
    # a status retold by its number only ("an 804 error", "error 804"): the ones of one meaning
    r"\b(80[234]|999) error\b|\berror (80[234]|999)\b|"
    # Numba's driver wrapper: "[222] Call to cuLinkAddData results in ..."
    r"\[(\d{1,3})\] Call to cu[A-Z]\w{2,40} results in",
    re.I,
)
_EV_CUDA_ERR_NAME = re.compile(r"\b(cudaError[A-Z]\w{2,60}|CUDA_ERROR_[A-Z_]{3,60})\b")
_EV_SIGNAL = [
    (re.compile(r"\bSIG(ILL|KILL|SEGV|BUS|ABRT|TERM|FPE)\b"), None),
    (re.compile(r"signal:\s{0,3}(illegal instruction|killed|segmentation fault|aborted|bus error)", re.I), None),
    (re.compile(r"\b(Illegal instruction|Segmentation fault|Bus error)\b(?:\s{0,3}\(core dumped\))?"), None),
    # the shell's and libc's own names in a Chinese or Japanese locale ("非法指令 (核心已转储)", "不正な命令")
    (re.compile(r"(非法指令|不正な命令|段错误|セグメンテーション違反|总线错误|バスエラー)"), None),
    (re.compile(r"(?:died|killed|terminated) (?:due to|by) signal\s{0,3}(\d{1,2})\b", re.I), None),
    (re.compile(r"\bsignal (\d{1,2})\b(?:\s{0,3}\((?:Kill|Illegal|Segmentation|Abort))", re.I), None),
    (
        re.compile(
            r"(?:exit ?code|exitcode|exit status|returned non-zero exit status|return code)[:=\s]{1,3}(-?\d{1,3})\b",
            re.I,
        ),
        "exit",
    ),
]
_SIGNAL_NAMES = {
    "ill": "SIGILL",
    "illegal instruction": "SIGILL",
    "非法指令": "SIGILL",
    "不正な命令": "SIGILL",
    "段错误": "SIGSEGV",
    "セグメンテーション違反": "SIGSEGV",
    "总线错误": "SIGBUS",
    "バスエラー": "SIGBUS",
    "4": "SIGILL",
    "kill": "SIGKILL",
    "killed": "SIGKILL",
    "9": "SIGKILL",
    "segv": "SIGSEGV",
    "segmentation fault": "SIGSEGV",
    "11": "SIGSEGV",
    "bus": "SIGBUS",
    "bus error": "SIGBUS",
    "7": "SIGBUS",
    "abrt": "SIGABRT",
    "aborted": "SIGABRT",
    "6": "SIGABRT",
    "term": "SIGTERM",
    "15": "SIGTERM",
    "fpe": "SIGFPE",
    "8": "SIGFPE",
}
_EXIT_SIGNALS = {"-4": "SIGILL", "132": "SIGILL", "-9": "SIGKILL", "137": "SIGKILL", "-11": "SIGSEGV", "139": "SIGSEGV"}
# CUDA runtime / driver error codes the KB has articles for (cudaError_t and CUresult share these values)
CUDA_ERRORS = {
    2: "cudaErrorMemoryAllocation",
    34: "cudaErrorStubLibrary",
    35: "cudaErrorInsufficientDriver",
    36: "cudaErrorCallRequiresNewerDriver",
    100: "cudaErrorNoDevice",
    209: "cudaErrorNoKernelImageForDevice",
    217: "cudaErrorPeerAccessUnsupported",
    222: "cudaErrorUnsupportedPtxVersion",
    710: "cudaErrorAssert",
    803: "cudaErrorSystemDriverMismatch",
    802: "cudaErrorSystemNotReady",
    804: "cudaErrorCompatNotSupportedOnDevice",
    999: "cudaErrorUnknown",
}
_CUDA_ERROR_TEXT = {
    "forward compatibility was attempted on non supported hw": 804,
    "system has unsupported display driver / cuda driver combination": 803,
    "no kernel image is available for execution on the device": 209,
    "the provided ptx was compiled with an unsupported toolchain": 222,
    "cuda driver version is insufficient for cuda runtime version": 35,
    "api call is not supported in the installed cuda driver": 36,
    "no cuda-capable device is detected": 100,
    "peer access is not supported between these two devices": 217,
    "device-side assert triggered": 710,
    "cuda driver is a stub library": 34,
    "system not yet initialized": 802,
}
_CUDA_NAME_CODES = {v.lower(): k for k, v in CUDA_ERRORS.items()} | {
    "cuda_error_compat_not_supported_on_device": 804,
    "cuda_error_system_driver_mismatch": 803,
    "cuda_error_no_binary_for_gpu": 209,
    "cuda_error_unsupported_ptx_version": 222,
    "cuda_error_no_device": 100,
    "cuda_error_peer_access_unsupported": 217,
    "cuda_error_out_of_memory": 2,
    "cuda_error_stub_library": 34,
    "cuda_error_system_not_ready": 802,
    "cuda_error_unknown": 999,
}
COMPONENTS = {
    "vllm": re.compile(r"\bvllm\b|VllmWorker|EngineCore", re.I),
    "sglang": re.compile(r"\bsglang\b|sgl_kernel|sgl-kernel", re.I),
    "triton": re.compile(r"\btriton\b|ptxas|inductor", re.I),
    "nccl": re.compile(r"(?i:\bnccl\b)|\bnccl[A-Z][a-zA-Z]{2,40}\b"),  # the library, or a function of its API
    "flash-attn": re.compile(r"flash[_-]?attn|flash.attention|FlashAttention|_vllm_fa[23]_C|\bFA[234]\b", re.I),
    "flashinfer": re.compile(r"flashinfer", re.I),
    "bitsandbytes": re.compile(r"bitsandbytes|CUDA SETUP:", re.I),
    "xformers": re.compile(r"xformers", re.I),
    "ray": re.compile(r"\bray\b|RayWorker|raylet", re.I),
    "docker": re.compile(r"\bdocker\b|nvidia-container", re.I),
    "nvcc": re.compile(r"\bnvcc\b|\bcicc\b", re.I),
    "pip": re.compile(r"\bpip\b|setup\.py|building wheel|build_ext", re.I),
    "driver": re.compile(r"\bNVRM\b|nvidia-smi|RmInitAdapter|\bXid\b", re.I),
}
# What the user describes rather than what a program printed (hangs, wrong numbers) and what it is about
SYMPTOMS = {
    "hang": re.compile(r"\b(?:hangs?|hung|hanging|stuck|freez(?:e|es|ing)|deadlock(?:ed)?|no progress)\b", re.I),
    "wrong-result": re.compile(
        r"incorrect results?|wrong results?|garbage|gibberish|garbled|all zeros|returns? zeros|tensor\(\[0\., 0\.|"
        r"not (?:copying|copied|transferr\w{0,3})[^\n]{0,30}correctly|\bcorrupt(?:ed|ion|s)?\b",
        re.I,
    ),
    "parallel": re.compile(
        r"tensor[-_ ]parallel|\btp[-_ ]?size|--tp\b|all_?reduce|multi-?gpu|\b[2-8] ?x ?(?:rtx|gpu)|\bTP ?= ?[2-8]", re.I
    ),
    "p2p": re.compile(
        r"(?<![a-z])p2p(?![a-z])|peer[ -](?:to[ -]peer|access)|between (?:two|the|\d|multiple|different) GPUs|"
        r"GPU[ -]to[ -]GPU",
        re.I,
    ),
    "iommu": re.compile(r"\biommu\b|\bACS\b|ACSCtl", re.I),
    "shm": re.compile(r"/dev/shm\b|\bshm[-_ ]size\b|shared[- ]memory segment", re.I),
}
_TOOLS = re.compile(r"(?<![\w+])(cicc|ptxas|cc1plus|nvcc|ninja|fatbinary|ld|g\+\+|c\+\+)(?![\w+])")
_NCCL_CUDA_FAILURE = re.compile(
    r"Cuda failure (?:\d{1,3} )?'(?!no kernel image|invalid device function|named symbol not found)([^'\n]{3,80})'",
    re.I,
)
# NCCL's numbered form, "Cuda failure 217 'peer access is not supported ...'" (src/include/checks.h): the number is
# the CUDA call's cudaError_t
_NCCL_CUDA_FAILURE_CODE = re.compile(r"Cuda failure (\d{1,3}) '", re.I)
_NCCL_ERROR = re.compile(
    r"NCCL error[^\n]{0,240}?(unhandled cuda error|unhandled system error|internal error|"
    r"invalid usage|remote process exited|unhandled)",
    re.I,
)
_GPU_FAMILY = [
    # (every "RTX PRO" card is a Blackwell one; the Ada and Turing cards were "RTX 6000 Ada", "Quadro RTX 6000")
    (
        "blackwell-consumer",
        re.compile(r"RTX\s{0,2}50[5-9]0|RTX PRO \d{4}|\bGB10\b|sm_?12[01]|Blackwell GeForce|GeForce Blackwell", re.I),
    ),
    ("blackwell-datacenter", re.compile(r"\bG?B[23]00\b|\bB100\b|sm_?10[03]", re.I)),
    ("consumer", re.compile(r"GeForce|RTX\s{0,2}[2-5]0[5-9]0|RTX\s{0,2}A[2-6]000|TITAN", re.I)),
    ("blackwell", re.compile(r"\bblackwell\b(?! archs)", re.I)),  # not vLLM's "excluding ... Blackwell archs"
]
# Families of messages, each one evidence key (what the error is about, in any of the ways the field words it)
_FAMILIES = [
    # the linker cannot find (or skips) a -l library: a missing library at link time, whatever the locale
    ("ld-missing", re.compile(r"\bld(?:\.\w+)?:[^\n]{0,200}?-l[\w.+-]{1,60}")),
    # a parallel size above the devices there are: "(16) ... visible devices (8)"
    (
        "parallel-exceeds-devices",
        re.compile(
            r"(?:world.?size|parallel.?size|tensor.?parallel|\btp\b)[^\n]{0,120}?(?:exceed|larger than|greater than|"
            r"more than|less than or equal to|<=)[^\n]{0,80}?(?:GPUs|devices)",
            re.I,
        ),
    ),
    # the GPU's firmware / RM bring-up in the kernel driver log
    # (a failure, not a mention: "GSP Firmware Version" in nvidia-smi -q is a healthy GPU)
    (
        "gsp",
        re.compile(
            r"\b_?kgsp\w{0,60}|\bGSP\b[^\n]{0,80}(?:fail|error|timeout|exception)|(?:fail|error|timeout)[^\n]{0,80}"
            r"\bGSP\b|\bBooter\w{0,40}[^\n]{0,80}fail|RmInitAdapter failed|rm_init_adapter failed|"
            # Xid 119 / 120: the GSP timing out an RPC, or its error (NVRM's line, the device plugin's)
            r"\bXid(?: \([^)\n]{0,40}\): |=)(?:119|120)\b",
            re.I,
        ),
    ),
    # pip refusing a wheel whose manylinux tag asks for a glibc newer than the common ones
    # ("...-manylinux_2_38_x86_64.whl is not a supported wheel on this platform"): the host's glibc is older
    (
        "manylinux-wheel-refused",
        re.compile(r"manylinux_2_(?:29|3\d|4\d)_\w{3,12}\.whl is not a supported wheel on this platform", re.I),
    ),
    # a driver that refuses the GPU after the machine slept: suspend or resume with nvidia_uvm in the same text
    (
        "suspend-uvm",
        re.compile(
            r"\b(?:suspend|hibernat|resum)[\s\S]{0,600}?nvidia[_-]uvm|"
            r"nvidia[_-]uvm[\s\S]{0,600}?\b(?:suspend|hibernat|resum)",
            re.I,
        ),
    ),
    # a driver version called too low in words ("it prompts that the driver version is too low")
    ("driver-too-low-words", re.compile(r"driver(?: version)? (?:is|was) too (?:low|old)\b", re.I)),
    # CUDA's own libraries opened by TensorFlow's loader ("Couldn't open CUDA library libcudnn.so.5",
    # "Unable to load cuDNN DSO")
    ("tf-dso-missing", re.compile(r"Couldn't open CUDA library lib\w+|Unable to load cuDNN DSO", re.I)),
    # a container started without the driver's utilities mounted ('exec: "nvidia-smi": executable file not found')
    ("nvidia-smi-not-in-container", re.compile(r'exec: "nvidia-smi": executable file not found')),
    # conda's virtual packages: __glibc is the host's glibc, __cuda the CUDA version the driver supports; a
    # version asked of them that the host does not meet (libmamba says "missing on the system" for that too)
    ("conda-glibc-floor", re.compile(r"__glibc\s?(?:>=?|\[version=')\s?\d")),
    ("conda-cuda-floor", re.compile(r"__cuda\s?(?:>=?|\[version='>=?)\s?\d")),
    ("conda-cuda-absent", re.compile(r"-> __cuda\s*\n\s*(?:\n\s*)?Your installed version is: not available")),
    # uv's hint after a failed build: the header or library the build looked for ('install a library that provides
    # "numa.h"', 'provides a shared library for `ibverbs`')
    (
        "uv-needs-system-lib",
        re.compile(
            r'that provides "(?:numa|libaio|infiniband/verbs|rdma/rdma_cma|liburing)\.h"|provides a shared library for '
            r"`(?:numa|ibverbs|aio|rdmacm|uring|mlx5)`"
        ),
    ),
    (
        "uv-needs-cuda-header",
        re.compile(r'that provides "(?:cuda_runtime(?:_api)?|cuda|cublas_v2|cublasLt|cusparse|curand|cufft|nvrtc)\.h"'),
    ),
    ("uv-needs-cuda-lib", re.compile(r"provides a shared library for `(?:cudart|cuda|cublas|nvrtc)`")),
    ("uv-needs-python-h", re.compile(r'that provides "Python\.h"')),
    # uv: a wheel only for a newer manylinux than this host's ("You're on Linux (`manylinux_2_17_x86_64`), but
    # `flashinfer-python` (v0.3.1) only has wheels for the following platform: `manylinux_2_28_x86_64`")
    (
        "uv-manylinux-floor",
        re.compile(
            r"You're on Linux \(`manylinux_2_\d{2}_\w+`\), but [^\n]{0,160}only has wheels for the following "
            r"platforms?: [^\n]{0,60}manylinux_2_(?:2[89]|3\d|4\d)"
        ),
    ),
    # an arch older than the toolkit builds ("Architecture 3.5 is too old for CUDA 12.8", meson)
    (
        "arch-too-old-for-toolkit",
        re.compile(r"(?:Architecture [1-5]\.\d|Kepler|Maxwell|Fermi) is too old for CUDA \d{2}", re.I),
    ),
    # a host compiler below CCCL's floor, or one it refuses ("CUB requires at least GCC 7.0", icc)
    (
        "host-compiler-floor",
        re.compile(
            r"requires at least (?:GCC|MSVC|Clang) \d|\(icc/icpc\) is not supported by CCCL|"
            # pybind11: "#error pybind11 requires gcc 4.8 or newer"
            r"requires (?:gcc|g\+\+|clang|MSVC) \d[\d.]{0,6} or (?:newer|later|higher)",
            re.I,
        ),
    ),
    # the PTX of an arch-specific feature asked of a target without the suffix (CCCL's link-time guard symbols:
    # "__cuda_ptx_tcgen05_ld_32x32b_is_only_supported_on_SM_100a_100f__")
    ("ptx-arch-guard", re.compile(r"__cuda_ptx_\w{1,80}_is_only_supported_on_SM_\d{2,3}[af]")),
    # CUTLASS's FP8 GEMMs named (scaled_mm, w8a8, block FP8): with a consumer Blackwell GPU, the SM12x kernels
    (
        "cutlass-fp8",
        re.compile(r"cutlass[^\n]{0,80}(?:\bfp8\b|w8a8|scaled_mm)|(?:\bfp8\b|w8a8|scaled_mm)[^\n]{0,80}cutlass", re.I),
    ),
    # the kernel's firmware loader failing the driver's GSP image ("Direct firmware load for
    # nvidia/565.57.01/gsp_tu10x.bin failed with error -2")
    ("gsp-firmware-file", re.compile(r"firmware[^\n]{0,60}\bgsp_\w{2,12}\.bin\b[^\n]{0,40}\bfail", re.I)),
    # GPUDirect RDMA registration and the peer-memory module failing (NCCL INFO lines of a healthy one are not)
    (
        "rdma-peermem",
        re.compile(
            r"ibv_reg_(?:dmabuf_)?mr[^\n]{0,200}(?:fail|error)|(?:register|allocate|create) (?:GPU )?MR\b|"
            r"GPU ?Direct RDMA Disabled|dmaBufSupported:? 0\b|memory_peers[^\n]{0,200}(?:No such file|not found|"
            r"missing)|(?:nvidia[_-]peermem|nv_peer_mem)[^\n]{0,160}(?:fail|error|invalid|not loaded|cannot|"
            r"not detected|not ready)|"
            r"(?:neither|no|not)[^\n]{0,40}(?:nv_peer_mem|nvidia[_-]peermem)[^\n]{0,60}(?:detected|loaded|found)",
            re.I,
        ),
    ),
    # an attention backend chosen that this build or GPU refuses
    (
        "attn-backend-refused",
        re.compile(
            r"(?:attention[_ -]backend|VLLM_ATTENTION_BACKEND)[^\n]{0,120}(?:not supported|unsupported|invalid|unknown|"
            r"not available)|(?:only|not supported|unsupported)[^\n]{0,160}(?:attention[_ -]backend|backends? "
            r"(?:is|are) supported)[^\n]{0,80}(?:attention[_ -]backend|backend=)",
            re.I,
        ),
    ),
    # a quantization format with a capability floor ("FP8 models require ... Compute Capability 8.9")
    (
        "quant-needs-capability",
        re.compile(
            r"\b(?:fp8|float8|fp4|nvfp4|mxfp4|int8|w8a8|marlin|awq|gptq|quantization)\b[^\n]{0,120}?(?:requires?|"
            r"only supported|minimum|needs?)[^\n]{0,80}?(?:compute capability|capability|\bCC\b|sm_?\d{2})",
            re.I,
        ),
    ),
    # torch's capability warning: "Found GPU0 ... which is of (cuda|compute) capability (CC) 7.0"
    ("torch-cc-warning", re.compile(r"which is of (?:cuda|compute) capability (?:\(CC\) )?(\d{1,2})\.(\d)", re.I)),
    # torchvision's C++ ops do not register against this torch
    (
        "torchvision-ops",
        re.compile(r"torchvision[/\\]_meta_registrations|torchvision::\w+|torchvision[/\\]extension\.py"),
    ),
    # a resolver that cannot satisfy an exact torch pin
    (
        "torch-pin",
        re.compile(
            r"(?:depends on|requires) torch(?:\{[^}\n]{0,80}\})?\s{0,2}==\s{0,2}\d|torch==[\d.]+[^\n]{0,80}"
            r"(?:conflict|incompatible)|"
            # a package's own gate: "incompatible torch version. Please upgrade to torch >= 2.11.0 (found 2.10.0)"
            r"incompatible (?:torch|pytorch) version|(?:upgrade|downgrade) (?:to )?(?:torch|pytorch)"
            r"\s{0,2}[<>=]=?\s{0,2}\d[^\n]{0,40}(?:found|installed|have|got)",
            re.I,
        ),
    ),
    # FlashAttention-3's Hopper kernels (or FA4's SM100 ones) by their source path or module
    (
        "fa3-kernels",
        re.compile(
            r"flash-attention[/\\]hopper|hopper[/\\]flash_\w+|FlashAttentionForwardSm\d+",
            re.I,
        ),
    ),
    ("ptx-plain-target", re.compile(r"not supported on \.target '?sm_1[0-2]\d'", re.I)),
    # the user's own workaround for broken peer-to-peer
    ("p2p-disabled", re.compile(r"NCCL_P2P_DISABLE\s{0,2}=\s{0,2}1|NCCL_P2P_LEVEL\s{0,2}=\s{0,2}(?:LOC|0)\b", re.I)),
    # a kernel library refusing the device outright
    ("unsupported-arch", re.compile(r"Unsupported (?:GPU )?architecture\b(?! '?compute_)", re.I)),
    # a capability floor stated by torch, vLLM or a kernel library: "compute capability below 7.0 are not supported",
    # "requires compute capability 9.0", "only supported on GPUs with compute capability of at least 8.0"
    (
        "cc-floor",
        re.compile(
            r"capability\s{0,3}(?:is\s{0,3})?(?:below|<=?|less than|lower than|older than|under)\s{0,3}"
            r"(?:\d{1,2}\.\d|\(\d{1,2}, ?\d\))|"
            # a kernel's floor as an sm number ("model_format=fp8 requires sm>=9.0", LMDeploy)
            r"requires?\s{0,2}sm\s{0,2}>=\s{0,2}\d{1,3}(?:\.\d)?\b|"
            r"(?:below|less than|lower than|older than|under)\s{1,3}(?:cuda\s{1,3})?compute(?:\s{1,3}capability)?"
            r"\s{0,3}\d{1,2}\.\d|"
            r"(?:requires?|only supported on|needs?|supports? only)[^\n]{0,60}?(?:compute|cuda) capability\s{0,3}"
            r"(?:of\s{0,3})?(?:at least\s{0,3}|>=?\s{0,3})?\d{1,2}\.\d|"
            r"(?:compute|cuda) capability (?:of )?(?:at least|>=?)\s{0,3}\d{1,2}\.\d|"
            # ... or by an architecture's name ("NVIDIA Inference is only supported on Ampere and newer
            # architectures", DeepSpeed's op builder)
            r"only supported on (?:NVIDIA )?(?:Pascal|Volta|Turing|Ampere|Ada(?: Lovelace)?|Hopper)(?: GPUs?)?"
            r" (?:and|or) (?:newer|later|above)|"
            r"requires? (?:an? )?(?:NVIDIA )?(?:Pascal|Volta|Turing|Ampere|Ada|Hopper|Blackwell)"
            r"(?: \(SM ?[\d.x]{1,4}\))? or (?:newer|later|higher|above)|"
            # torchao, CUTLASS: "requires hardware >= SM 9.0", "CUDA capability 10.0+", "the minimum compute
            # capability is 8.0"
            r"(?:hardware|device|gpu)\s{0,3}>=\s{0,3}SM\s?\d{1,3}(?:\.\d)?|capability \d{1,2}\.\d\s?\+|"
            r"minimum (?:compute |cuda )?capability (?:is|of) \d{1,2}\.\d|"
            # the CuTe DSL ("expects arch to be at least sm_90, but got sm_86"), FlashInfer ("not supported on CUDA
            # arch < 80")
            r"(?:expects|requires?) arch to be at least sm_\d{2,3}|not supported on CUDA arch < ?\d{2,3}\b",
            re.I,
        ),
    ),
    # vLLM's quantization layers checking the scheme's minimum capability against the GPU
    ("quant-capability-check", re.compile(r"_check_scheme_supported|get_min_capability|min_capability", re.I)),
    (
        "quant-context",
        re.compile(
            r"quantiz|quant_scheme|compressed.tensors|\b(?:fp8|awq|gptq|marlin|nvfp4|mxfp4|mxfp8|w8a8|int4|float8|"
            r"tinygemm)\b|\b[48]-bit "
            r"(?:matmul|load|inference|quant|optimi)|load_in_[48]bit",
            re.I,
        ),
    ),
    # FlashAttention-3 named (the Hopper-only kernels), whatever program wraps it
    (
        "fa3-named",
        # (xformers names FA3's operators fa3F / fa3B with their version: "`fa3F@2.7.2` is not supported")
        re.compile(
            r"\bFA ?3\b|\bfa3[FB]@|flash[_-]?attn[_-]?3|flash.?attention.?3|flash_attn_interface|hopper[/\\]flash",
            re.I,
        ),
    ),
    # flash-attn's own gate: "FlashAttention only supports Ampere GPUs or newer", "requires building with sm80-sm90"
    (
        "flash-attn-gate",
        re.compile(
            r"(?<![\w.])(?:flash[_-]?attn|FlashAttention)(?![ _-]?3)[^\n]{0,60}(?:requires?|only supports?|"
            r"only supported|supports? only|is not supported|not supported)[^\n]{0,80}"
            r"(?:\bsm ?_?\d{2}|Ampere|Hopper|Turing|Volta|capability|architecture|GPUs? or newer)",
            re.I,
        ),
    ),
    # NVML that cannot start in a container (its device cgroup lost, or no driver mounted in)
    (
        "nvml-container",
        re.compile(
            r"Failed to initialize NVML: Unknown Error|nvidia-smi[^\n]{0,80}not working[^\n]{0,80}(?:docker|container)|"
            r"(?:docker|container)[^\n]{0,40}\(?NVML error",
            re.I,
        ),
    ),
    # the installer or kernel module saying the driver release does not cover the GPU
    (
        "gpu-unsupported-by-driver",
        re.compile(
            r"NVIDIA GPU supported by the [\d.]{2,12} NVIDIA|(?:GPU|device)[^\n]{0,80}(?:is not|isn't|not) "
            r"supported by (?:the |this )?(?:[\d.]{2,12} )?(?:NVIDIA )?(?:\w+ )?(?:graphics )?driver|"
            r"supported (?:only )?through the NVIDIA Legacy drivers?|legacy driver (?:branch|release)",
            re.I,
        ),
    ),
    # a source build with no CUDA toolkit: CUDA_HOME unset or None, no nvcc where the build looks
    (
        "no-cuda-toolkit",
        re.compile(
            r"CUDA_HOME (?:environment variable )?is not set|CUDA_HOME (?:is|=) ?None|CUDA_HOME='?None|detected CUDA "
            r"version \(None\)|nvcc(?:\.exe)?'?:? (?:command )?not found|nvcc was not found|could not find nvcc|"
            r"failed to find nvcc|No such file or directory: '[^'\n]{0,200}[/\\]nvcc(?:\.exe)?'|"
            r"(?:couldn't|could not|cannot|can't|unable to) (?:find|locate) (?:the )?CUDA (?:library root|toolkit|"
            r"installation|root)|CUDA_TOOLKIT_ROOT_DIR[^\n]{0,40}not found|"
            # vLLM's and FlashInfer's CMake, Triton kernels falling back, DeepGEMM's JIT asserting on its paths,
            # TensorRT-LLM's lib directory lookup
            r"Can't find CUDA or HIP installation|likely due to missing CUDA toolkit|exists\(nvcc_path\)|"
            r"not cuda_home\.empty\(\)|could not find CUDA lib(?:rary)? directory|"
            # CMake's FindCUDAToolkit and FindCUDA, meson's CUDA dependency and compiler detection
            r"Unable to find (?:cudart library|cuda_runtime\.h in|_CUDA_LIBRARY_DIR)|Unable to locate CUDA include "
            r"directory|Specify CUDA_TOOLKIT_ROOT_DIR|Unknown compiler\(s\): \[\['nvcc'\]\]|"
            r"Couldn't find requested CUDA module|or set the CUDA_PATH environment variable",
            re.I,
        ),
    ),
    # `nvidia-smi topo -m` pasted as the report: the link matrix between GPUs (PHB / PIX / SYS / NODE / NV#)
    ("topo-matrix", re.compile(r"^[ \t]{0,8}GPU0[ \t]{1,8}X[ \t]{1,8}(?:PHB|PIX|PXB|SYS|NODE|NV\d{1,2})\b", re.M)),
    # bitsandbytes looking for its native library (its CUDA SETUP banner, or the loader in cextension / cuda_setup)
    (
        "bnb-setup",
        re.compile(
            r"CUDA SETUP:[^\n]{0,200}(?:not found|fail|error|did not|Defaulting|Problem)|CUDA Setup failed|"
            r"bitsandbytes[/\\]cuda_setup[/\\]|libbitsandbytes_cuda\d{2,3}|Configured CUDA binary not found",
            re.I,
        ),
    ),
]
_FAMILIES += [
    # an undefined symbol in a project's own compiled extension (vllm/_C, sgl_kernel common_ops, *_cuda): the
    # extension was built against another torch, even where the paste cut the symbol's name off
    (
        "own-extension-undefined",
        re.compile(r"\.so[:,]?[^\n/]{0,20}undefined symbol"),  # the extension's name: _LINE_CHECKS
    ),
    # the CMake / torch parser refusing an arch name of the list ("Unknown CUDA Architecture Name 9.0a in
    # CUDA_SELECT_NVCC_ARCH_FLAGS", torch's "Unknown CUDA arch (12.0+PTX) or GPU not supported")
    (
        "arch-name-refused",
        re.compile(r"Unknown CUDA Architecture Name|Unknown CUDA arch\b|CUDA_SELECT_NVCC_ARCH_FLAGS[^\n]{0,80}", re.I),
    ),
    # PTX written for an older ISA than the target needs: ptxas "PTX .version 7.4 does not support .target sm_89"
    ("ptx-version-target", re.compile(r"PTX \.version \d{1,2}\.\d does not support \.target sm_\d{2,3}", re.I)),
    # torch's C module missing a name torch itself defines: two torch copies mixed on sys.path
    ("torch-c-attribute", re.compile(r"module 'torch\._C' has no attribute '(?!_cuda)\w{1,80}'")),
    # CUDA not available to torch on a Ray worker / cluster node (its CUDA_VISIBLE_DEVICES emptied)
    (
        "cuda-unavailable-worker",
        re.compile(r"is_available\(\)[^\n]{0,40}\bFalse\b", re.I),  # on a worker's line: _LINE_CHECKS
    ),
    # a source build taking all of the host's memory (parallel compile jobs), in the user's words or the compiler's
    (
        "build-host-memory",
        re.compile(
            r"(?:takes? up|eats?(?: up)?|consum\w{0,4}|uses? up|exhausts?|runs? out of|fills? up)[^\n]{0,12}(?:all )?"
            r"(?:of )?(?:the |my )?(?:host |system |CPU |physical )?(?:memory|RAM)\b|virtual memory exhausted|"
            r"cc1plus: out of memory allocating|"
            # the OOM killer taking a build ("OOM of my entire system during Docker image build", "build image
            # got Killed"): the host's memory, never the GPU's
            r"\b(?:OOM|out of memory)\b[^\n]{0,30}\b(?:system|host|machine|RAM|CPU memory)\b|"
            r"\b(?:system|host|machine|RAM)\b[^\n]{0,12}\b(?:OOM|out of memory)\b|\bgot killed\b",
            re.I,
        ),  # a build's words on the line: _LINE_CHECKS
    ),
    # a toolkit whose CUDA version is not torch's, said by the build ("unable to compile cuda/cpp extensions
    # without a matching cuda version", "mismatches the version that was used to compile PyTorch")
    (
        "cuda-version-mismatch",
        re.compile(
            r"without a matching cuda version|mismatches the version that was used to compile PyTorch|"
            r"CUDA version mismatch|"
            # Unsloth: "vLLM was built for CUDA 12 but this system has CUDA 13.0"
            r"built for CUDA \d{1,2}(?:\.\d)? but (?:this system|the system|your system|you) ha(?:s|ve) CUDA \d|"
            # CUTLASS's Python package: "Python CUDA version of 12.9.0 must be greater than or equal to NVCC version"
            r"CUDA version of \d[\d.]{0,8} must be greater than or equal to NVCC version|"
            # CCCL's headers: the nvcc in use is not the toolkit whose headers are on the include path
            r"CUDA compiler and CUDA toolkit headers are incompatible",
            re.I,
        ),
    ),
    # an extension's loader naming the torch it was built for and the one installed ("xFormers was built for:
    # PyTorch 1.13.1+cu117 ... (you have 2.0.0+cu118)")
    (
        "ext-built-for-other-torch",
        re.compile(
            r"built (?:for|against):?\s{0,8}(?:PyTorch|torch)\s{0,2}\d[^\n]{0,80}\(you have \d|"
            r"(?:was built|compiled) (?:for|against) a different version of (?:PyTorch|torch)",
            re.I,
        ),
    ),
    # nvcc refusing an arch it does not know (an old nvcc, a new arch) or no longer builds (a new nvcc, an old arch)
    ("nvcc-unsupported-arch", re.compile(r"Unsupported gpu architecture '?compute_\d{2,3}", re.I)),
    # an OOM while the model's layers are built (a model-parallel init allocating its weight shards)
    (
        "oom-building-weights",
        re.compile(
            r"_initialize_affine_weight|model_parallel[/\\]layers\.py|(?:Column|Row)ParallelLinear\b[^\n]{0,40}"
            r"__init__|VocabParallelEmbedding\b[^\n]{0,40}__init__|"
            # LMDeploy's TurboMind allocating the weights (deviceMalloc in utils/memory_utils.cu)
            r"turbomind[/\\]utils[/\\]memory_utils\.cu",
        ),
    ),
]
# Families whose pattern opens on a common word: the literal each match holds, looked for first (lower case)
_FAMILY_NEEDS = {"kernel-image-missing": "kernel image"}
# Fresh wordings of known failures, read as classes from the holdout4/holdout5 misses
_FAMILIES += [
    # GPU code missing for an arch, in a sentence rather than CUDA's own words ("gptq_marlin_repack has no SM70
    # kernel image", "no kernel image for sm_120 in the wheel")
    (
        "kernel-image-missing",
        re.compile(
            r"\b(?:no|missing|without|lacks?|lacking)\b[^\n]{0,40}?\bkernel images?\b[^\n]{0,60}?"
            r"(?:\bsm_?\d{2,3}|\bcompute_\d{2,3}|capabilit|\barch)|"
            r"\b(?:no|missing|without|lacks?|lacking)\s+(?:[\w.-]+\s+){0,2}?(?:sm_?\d{2,3}|compute_\d{2,3})[af]?"
            r"\s+kernel images?\b|"
            r"(?:\bsm_?\d{2,3}|\bcompute_\d{2,3})[af]?\b[^\n]{0,20}?\bkernel images?\b[^\n]{0,30}?"
            r"\b(?:missing|not (?:found|available|included|present))",
            re.I,
        ),
    ),
    # a CUDA library the program loads by its own name, not found ("cudnn shared object not found.",
    # TransformerEngine's loader)
    (
        "named-library-not-found",
        re.compile(
            r"\b(?:cudnn|nvrtc|cublas(?:Lt)?|cudart|curand|cufft|nccl|cusparse(?:Lt)?|nvjitlink|cusolver|nvshmem) "
            r"shared object not found|"
            # JAX: "Unable to load cuDNN. Is it installed?"
            r"Unable to load (?:cuDNN|cuBLAS|cuSPARSE|cuFFT|cuSOLVER|NCCL|CUPTI|nvJitLink)\. Is it installed",
            re.I,
        ),
    ),
    # a driver below what a feature or library asks for, in the library's words ("One-sided RMA requires CUDA driver
    # 12.5 or later (found 12.4)", "the installed CUDA driver < R465", NCCL)
    (
        "driver-floor",
        re.compile(
            r"requires? (?:a |the )?(?:CUDA |NVIDIA |GPU )?driver(?: version)? (?:of )?(?:at least |>= ?)?R?\d{2,3}"
            r"(?:\.\d{1,3}){0,2} or (?:later|newer|higher|above)|installed (?:CUDA |NVIDIA )?driver (?:is )?< ?R?\d{3}|"
            # Ollama's structured log: required_driver="570 or newer"
            r"required_driver=\"?\d{3}(?:\.\d{1,3}){0,2} or (?:later|newer|higher)|"
            # the CuTe DSL: "CUDA driver version 12080 is below the minimum required version for the installed
            # cuda-python package 13000"
            r"CUDA driver version \d{4,6} is below the minimum required|"
            # CCCL's driver API wrapper ("cuKernelGetName operation not supported(801): Driver does not support
            # this API")
            r"Driver does not support this API",
            re.I,
        ),
    ),
    # a toolkit (nvcc, NVRTC) below what a build needs, in the build's own words ("CUDA 12.8 or higher is required
    # for compute capability 12.0", "NVCC version should be >= 12.3", CMake's "CUDA version 11.6 or greater is
    # required", "FA3 is disabled because CUDA version is not 12.0 or later", "requires NVCC 12.9 or higher")
    (
        "toolkit-floor",
        re.compile(
            r"CUDA (?:version )?\d{2}\.\d{1,2} or (?:higher|greater|later|newer) is required (?:for compute capability|"
            r"to build)|(?:NVCC|NVRTC) version should be >= ?\d{2}\.\d|requires NVCC \d{2}\.\d{1,2} or (?:higher|newer|"
            r"later)|CMake Error[^\n]{0,120}\n\s{0,8}CUDA version \d{2}\.\d{1,2} or (?:greater|higher|later) is "
            r"required|"
            r"disabled because CUDA version is not \d{2}\.\d{1,2} or (?:later|higher|newer)|"
            # CCCL's headers, meson's CUDA module, CMake's FindCUDAToolkit
            r"CUDA versions? below \d{2} (?:are|is) not supported|requires at least CUDA \d{2}\.\d|"
            r"CUDA \d{2}\.\d is too old for (?:architecture|Blackwell|Hopper|Ada|Ampere)|"
            r"current nvcc version \d{2}\.\d does not satisfy|Could NOT find CUDAToolkit: Found unsuitable version",
            re.I,
        ),
    ),
    # a kernel's capability ceiling: the GPU is newer than what the kernel was written for ("requires device with
    # capability <= (9, 0) but your GPU has capability (12, 0) (too new)", xformers' operator reasons)
    ("cc-ceiling", re.compile(r"capability <= \(\d{1,2}, ?\d\)|capability \(\d{1,2}, ?\d\) \(too new\)", re.I)),
    # a compiler running out of host memory (EDG's "catastrophic error: out of memory" under nvcc) or a compile job
    # the kernel killed: a bare "Killed" line right after a compiler command line
    (
        "compiler-oom",
        re.compile(
            r"catastrophic error: out of memory|cc1plus: out of memory|virtual memory exhausted|"
            # ninja: a step killed by SIGKILL (128 + 9), or no memory left to start one
            r"^FAILED: \[code=137\]|"
            r"ninja: fatal: (?:posix_spawn: Cannot allocate memory|CreateProcess: The paging file is too small)|"
            r"(?:-gencode|\bnvcc\b|\bcicc\b|cc1plus|\.cu\.o\b|-DTORCH_EXTENSION_NAME|<command-line>: (?:warning|note):)"
            r"[^\n]{0,2000}\n(?:[^\n]{0,300}\n)?"
            r"[ \t]{0,8}Killed[ \t]*$",
            re.I | re.M,
        ),
    ),
    # a GPU refusing a low-precision format, in the library's words ("Your GPU does not support Int8 Matmul!")
    (
        "gpu-lacks-quant",
        re.compile(
            r"(?:GPU|device|hardware|card)[^\n]{0,40}(?:does not|doesn't|do not|cannot|can't) support[^\n]{0,20}"
            r"\b(?:int8|fp8|float8|fp4|nvfp4|mxfp4|w8a8|int4)\b|"
            r"(?:compute )?capability \d{1,2}\.\d (?:or (?:higher|newer|above|later)|\+) (?:is )?required for"
            r"[^\n]{0,20}\b(?:fp8|float8|fp4|nvfp4|mxfp4|int8|w8a8)\b|"
            # CTranslate2: "Requested int8 compute type, but the target device or backend do not support efficient
            # int8 computation"
            r"target device or backend do not support efficient (?:int8|fp8|int4|float8)|"
            # Unsloth: "Your GPU is too old for float8 KV cache!"
            r"GPU is too old for (?:float8|fp8|int8|fp4|nvfp4)",
            re.I,
        ),
    ),
    # PTX written for the arch-specific target handed to the plain one ("PTX with .target 'sm_120a' cannot be
    # compiled for architecture 'sm_120'"), or CUTLASS's arch-conditional MMA on a build without the suffix
    (
        "arch-specific-target",
        re.compile(
            r"\.target '?sm_\d{2,3}[af]'? cannot be compiled for (?:architecture )?'?sm_\d{2,3}'?(?![af])|"
            r"Arch conditional MMA instruction used without targeting|without targeting appropriate compute capability",
            re.I,
        ),
    ),
    # an allocator option the torch build or the platform does not take (expandable_segments under a MemPool,
    # on a platform without it)
    (
        "allocator-option-unsupported",
        re.compile(
            r"expandable_segments[^\n]{0,60}(?:not (?:currently )?supported|unsupported)|(?:doesn't|does not|not) "
            r"(?:currently )?support(?:ed)?[^\n]{0,20}expandable_segments|"
            r"expandable segments are not compatible with|"
            # Unsloth: "Your setup does not support `PYTORCH_CUDA_ALLOC_CONF`"
            r"does not support `?PYTORCH_(?:CUDA_)?ALLOC_CONF",
            re.I,
        ),
    ),
    # two CUDA runtimes in one process (a system libcudart and a wheel's)
    (
        "two-cudart",
        re.compile(
            r"Multiple libcudart|libcudart[^\n]{0,80}\bboth (?:load|found|present)|(?:system|two|multiple|both)"
            r"[^\n]{0,40}\blibcudart[^\n]{0,40}\b(?:both|twice|loaded|load)\b|libcudart\.so\.\d{2}[^\n]{0,8} and "
            r"libcudart\.so\.\d{2}",
            re.I,
        ),
    ),
    # argparse refusing a flag (not a positional argument: a model path passed twice is a usage error)
    ("unrecognized-flag", re.compile(r"error: unrecognized arguments?:[^\n]{0,200}?(?<![\w-])--[A-Za-z][\w-]{1,60}")),
    # an engine-args dataclass refusing a field this release renamed or removed
    (
        "engine-args-keyword",
        re.compile(r"(?:Async)?(?:Engine|Server)Args\.__init__\(\) got an unexpected keyword argument"),
    ),
    # a Windows loader that cannot find a procedure in a Python extension (.pyd): Linux's "undefined symbol"
    (
        "pyd-entry-point",
        re.compile(
            r"(?:procedure )?entry point[^\n]{0,300}could not be located in the dynamic link library"
            r"[^\n]{0,400}\.pyd\b",
            re.I,
        ),
    ),
    # vLLM's profile leaving nothing for the KV cache: the weights took the memory share (as the evaluation threads
    # of "No available memory for the cache blocks" resolve it)
    (
        "no-kv-blocks",
        re.compile(
            r"#? ?GPU blocks: 0\b|num_gpu_blocks\s{0,2}[=:]\s{0,2}0\b|No available memory for the cache blocks", re.I
        ),
    ),
    # the kernel cannot place the GPU's large BAR (no 64-bit MMIO window: Above 4G decoding / Resizable BAR off)
    (
        "bar-unassigned",
        re.compile(r"\bBAR ?1\b[^\n]{0,100}(?:can't assign|cannot assign|failed to assign|no space)", re.I),
    ),
    # pip replacing the torch already installed with another build (an exact pin of the package being installed)
    (
        "torch-replaced",
        re.compile(
            r"Attempting uninstall: torch\s{0,4}$|Successfully uninstalled torch-\d|(?:ignores?|overwrites?|replaces?|"
            r"uninstalls?|reinstalls?|downgrades?) (?:my |the |an? )?(?:existing |installed |own |current )"
            r"(?:torch|pytorch)\b",
            re.I | re.M,
        ),
    ),
    # a system library's development package missing from a build image ("missing libnuma-dev")
    (
        "system-dev-package",
        re.compile(
            r"(?:missing|lacks?|without|not installed|install)[^\n]{0,30}\blib(?:numa|ibverbs|aio|uring|rdmacm|gomp|"
            r"mlx5)(?:-dev|-devel)\b|\blib(?:numa|ibverbs|aio|uring|rdmacm|gomp|mlx5)(?:-dev|-devel)\b[^\n]{0,30}"
            r"(?:missing|not (?:installed|found))|"
            # DeepSpeed's op report: "async_io requires the dev libaio .so object and headers but these were not
            # found"
            r"requires the dev lib(?:numa|ibverbs|aio|uring|rdmacm|gomp|mlx5) \.so object",
            re.I,
        ),
    ),
    # CUDA finds no device while the user set CUDA_VISIBLE_DEVICES on the same command
    ("visible-devices-set", re.compile(r"CUDA_VISIBLE_DEVICES\s{0,2}=\s{0,2}[\"']?[\d,]{1,40}\b")),
    # an attention backend refused for this device ("Torch SDPA backend is only used for the CPU device")
    (
        "attn-backend-device",
        re.compile(
            r"\b(?:SDPA|FLASH_?ATTN\w{0,8}|FlashInfer|XFormers|TRITON_ATTN\w{0,8}|FlexAttention|FLASHMLA|ROCM_\w{1,20})"
            r" backend (?:is )?(?:only (?:used|supported|available) (?:for|on)|not (?:supported|available) (?:for|on))"
            r"[^\n]{0,40}\b(?:CPU|GPU|CUDA|device)",
            re.I,
        ),
    ),
    # an NVFP4 mixture-of-experts path failing (the MoE GEMMs FlashInfer / CUTLASS ship for datacenter Blackwell);
    # the two named together without a failure between them ("CUTLASS fused-MoE, CUTLASS NVFP4 GEMM all ran") are not
    (
        "nvfp4-moe",
        re.compile(
            r"nvfp4[^\n]{0,60}(?:fail|error|crash|broken|unsupported|not supported)[^\n]{0,80}\b(?:moe|experts?)\b|"
            r"\b(?:moe|experts?)\b[^\n]{0,60}(?:fail|error|crash|broken|unsupported|not supported)[^\n]{0,80}nvfp4|"
            r"(?:fail|error|crash|broken)[^\n]{0,40}nvfp4[^\n]{0,40}\b(?:moe|experts?)\b",
            re.I,
        ),
    ),
    # the host's allocator out of memory (torch's CPU allocator): not a GPU OOM of either phase
    (
        "host-oom",
        re.compile(
            r"DefaultCPUAllocator: (?:not enough memory|can't allocate memory)|alloc_cpu\.cpp|"
            r"\bOOM \(host\)|(?:running|ran|runs) out of (?:host|system|CPU) (?:memory|RAM)|host (?:memory|RAM) "
            r"(?:OOM|exhausted|out of memory)",
            re.I,
        ),
    ),
    # several GPUs of one consumer model in one job ("multiple 4090", "4x RTX 3090")
    (
        "multi-consumer-gpu",
        re.compile(
            r"\b(?:multiple|several|two|four|eight|[2-8] ?x)\s{0,2}(?:RTX\s{0,2})?[2-5]0[6-9]0(?:\s?Ti)?s?\b", re.I
        ),
    ),
]
# Families whose match must also have, on its line before it (own-extension) or anywhere on it, these words: two
# cheap searches instead of one regex that would scan a window after every common word of a long line
_LINE_CHECKS: Dict[str, tuple] = {
    "own-extension-undefined": (
        True,
        re.compile(r"(?:_C|_\w{1,30}_C|common_ops|_cuda|_ops)(?:\.cpython-[\w-]{1,40}|\.abi3)?$"),
    ),
    "cuda-unavailable-worker": (False, re.compile(r"worker|\bray\b", re.I)),
    "build-host-memory": (
        False,
        re.compile(r"\b(?:build|building|compil\w{0,6}|wheels?|nvcc|ninja|MAX_JOBS|cc1plus)\b", re.I),
    ),
}
# torch's allocator message names the allocation and the capacity even where "out of memory" was cut off
_OOM = re.compile(
    r"out of memory|OutOfMemoryError|\bOOM\b|Tried to allocate \d[\d.]{0,12} ?[GMK]iB[^\n]{0,80}total capacity|"
    r"not enough (?:GPU |CUDA |device )?memory to (?:handle|allocate|run|load|fit)",
    re.I,
)
# Where an OOM happened: while the engine starts (profiling, CUDA-graph capture, loading) or while it serves.
# A profile run or graph capture says the start itself (the weights were loaded by then)
_PROFILING_MARKERS = (
    r"profile_run|determine_available_memory|determine_num_available_blocks|capture_model|graph capture|"
    r"capture cuda ?graph|capturing cuda ?graphs|_initialize_kv_caches|_dummy_run|cuda\.graph\(|cudagraph|"
    r"capture_end|memory_profiler|PROFILER|warm(?:ing)?[ _-]?up"
)
_OOM_PROFILING = re.compile(_PROFILING_MARKERS, re.I)
_OOM_STARTUP = re.compile(
    _PROFILING_MARKERS + r"|initializ(?:e|ing) (?:the |vLLM )?engine|EngineCore failed to start|"
    r"Engine core initialization failed|load_model|Loading model weights|load_weights|init_device|"
    r"\b(?:when|while|during) loading\b|"
    r"Cuda failure 'out of memory'|ncclCommInit|"  # NCCL allocates its buffers when its communicators are made
    # an inference server creating its model instance (lmdeploy's turbomind, Triton's backends) at start
    r"create_model_instance|creating modelInstanceState|Failed to create instance|"
    # text-generation-inference's launcher: a shard that died before it was ready (launcher/src/main.rs)
    r"Shard \d{1,3} failed to start|ShardCannotStart",
    re.I,
)
_OOM_RUNTIME = re.compile(
    r"execute_model|forward_batch_generation|async_llm_engine|AsyncLLM output_handler|EngineDeadError|"
    r"MQLLMEngine is already dead|Engine loop is not running|serving_chat|serving_completion|POST /v1|Added request|"
    r"during (?:generation|inference|decoding)|run_engine_loop|engine_step|step_async|run_busy_loop|"
    r"_process_engine_step",
    re.I,
)
# The weights being loaded or moved to the GPU (from_pretrained, load_state_dict, a module's .to(device)): an OOM
# there is a model that does not fit, unless a profile run or graph capture is also in the text
_OOM_LOADING = re.compile(
    r"\bin convert\b|\.to\(device\b|\bin _apply\b|from_pretrained|load_state_dict|_load_pretrained_model|"
    r"load_checkpoint_and_dispatch|dispatch_model|\bin load_weights\b|Loading model weights|model_loader[/\\]|"
    r"\bmodel loading\b|\bloading (?:the )?model\b|Error when loading parameters|params_shard_\d+|"
    # a torch.nn module's constructor allocating its parameters (nn.Linear(...) building the model)
    r"torch/nn/modules/\w+\.py\", line \d+, in __init__",
    re.I,
)
# Words of a running model (a prefill or decode step, long prompts): weaker than a start-up marker, which wins
_OOM_SERVING = re.compile(
    r"_prefill|prefill_|\bprefill\b|\bdecode_|long prompts?|context (?:size|length)s?\b|\bgenerate\(|"
    r"when (?:using|running|generating)|after (?:a few|some|several|many) (?:requests|minutes|hours)|"
    r"\b(?:inference|concurrent|multiple|multi|many|parallel) requests\b|under (?:heavy )?load\b|across requests|"
    r"on (?:later|subsequent|each|every) requests?\b",
    re.I,
)
# A serving engine's own process: a bare OOM inside one is most often its start (profiling, graphs, weights)
_ENGINE = re.compile(
    r"\bvllm\b|VllmWorker|EngineCore|\bsglang\b|\bTP\d{1,2}\]|model_runner|multiproc_executor|\[core\.py:\d+\]|"
    r"core_client\.py|"  # vLLM V1's engine core and its client, as their log lines name them
    # the issue titles of vLLM's and SGLang's templates
    r"^\s{0,4}(?:#{1,3}\s{0,2})?\[(?:Bug|CI Failure|Installation|Usage|Performance)\]:",
    re.I | re.M,
)


def _oom_loading_weights(text: str) -> bool:
    """The text places an OOM in loading or moving the weights, and names no profile run or graph capture."""
    return bool(_OOM_LOADING.search(text)) and not _OOM_PROFILING.search(text)


_COMPILER_OOM = re.compile(r"catastrophic error: out of memory|cc1plus: out of memory|virtual memory exhausted", re.I)


def oom_phase(text: str) -> Optional[str]:
    """ "startup", "runtime", "build" (a compiler's host OOM) or None (no OOM): where an out-of-memory error
    happened, read from its text.

    Engine markers of serving (execute_model, a dead engine, a request) say runtime; start-up markers (profiling,
    graph capture, weights loading, warm-up) say startup; words of a running model (prefill, long prompts) say
    runtime. With no marker at all, an OOM printed by a serving engine is taken as its start, and one printed by
    any other program (a script, a notebook) as a run: the start-up article is about an engine's start."""
    if not _OOM.search(text):
        return None
    if _COMPILER_OOM.search(text):
        return "build"  # the host's memory, taken by a compiler: neither phase of a GPU's
    if _OOM_RUNTIME.search(text):
        return "runtime"
    if _OOM_STARTUP.search(text) or _OOM_LOADING.search(text):
        return "startup"
    if _OOM_SERVING.search(text):
        return "runtime"
    return "startup" if _ENGINE.search(text) else "runtime"


EVIDENCE_SCAN_MAX = 1 << 20  # evidence is read from at most this much of the error lines of one input


def _arch_of_cc(major: str, minor: str) -> str:
    return f"sm_{int(major)}{int(minor)}"


_DTYPE_FLOOR = re.compile(r"bfloat16|\bbf16\b|\bdtype\b", re.I)


# symbols whose name says more than the extension that misses them (a C function of the driver or a system
# library, a kernel built for one arch)
_OTHER_SYMBOL = re.compile(r"^(?:cu|nccl|numa|ibv|rdma|mlx5|io_)[A-Za-z_]|cutlass|sm1\d\d|nvfp4", re.I)
# a compute capability stated below this is older than any GPU a CUDA 12 build of torch or vLLM runs on
ANCIENT_CC = 5.0


def _first_n(it: Iterable[re.Match], n: int) -> Iterable[re.Match]:
    for i, m in enumerate(it):
        if i >= n:
            return
        yield m


def _line_part(text: str, m: re.Match, before_only: bool) -> str:
    """The line of a match (bounded to 2,000 characters around it), or only its part before the match."""
    start = max(text.rfind("\n", 0, m.start()) + 1, m.start() - 2000)
    if before_only:
        return text[start : m.start()]
    end = text.find("\n", m.end(), m.end() + 2000)
    return text[start : end if end >= 0 else min(len(text), m.end() + 2000)]


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


# torch's environment report (python -m torch.utils.collect_env, vLLM's collect_env.py), as users paste it
_TORCH_CUDA_BUILT = re.compile(r"CUDA used to build PyTorch:\s{0,4}(\d{1,2}\.\d{1,2})")
_DRIVER_SAID = re.compile(r"Nvidia driver version:\s{0,4}(\d{3}\.\d{1,3}(?:\.\d{1,3})?|No CUDA|N/A|Could not collect)")
_CUDA_UNAVAILABLE = re.compile(r"Is CUDA available:\s{0,4}(?:False|No)\b")
_TORCH_CPU_BUILD = re.compile(r"\b(?:torch|PyTorch)\b[^\n]{0,30}?\b\d\.\d{1,2}\.\d{1,2}\+cpu\b", re.I)


def _environment_report(text: str) -> List[str]:
    """Families read from torch's environment report: a driver below what the CUDA torch was built with needs
    (its major's floor, or the release's own driver before CUDA 11), or no driver at all, with CUDA unavailable;
    and a CPU-only torch build named anywhere."""
    out: List[str] = []
    if "+cpu" in text and _TORCH_CPU_BUILD.search(text):
        out.append("torch-cpu-build")
    if "Is CUDA available" not in text or not _CUDA_UNAVAILABLE.search(text):
        return out
    said = _DRIVER_SAID.search(text)
    if said is None:
        return out
    if not said.group(1)[:1].isdigit():
        out.append("collect-env-no-driver")
        return out
    built = _TORCH_CUDA_BUILT.search(text)
    if built is None:
        return out
    full, floor = min_driver_for(built.group(1))
    need = driver_version_tuple(floor or full)
    have = driver_version_tuple(said.group(1))
    if need and have and have < need:
        out.append("driver-below-torch-cuda")
    return out


def extract_evidence(text: str) -> dict:
    """What the error names, read the way the field writes it: symbols (with their library and demangled form),
    missing sonames and majors, glibc/GLIBCXX versions, sm/compute archs and capabilities, CUDA error codes and
    names, signals and exit statuses, NCCL errors, versions, GPU family and the components that raised."""
    text = text[:EVIDENCE_SCAN_MAX]
    ev: Dict[str, Any] = {}
    syms = []
    for m in _EV_SYMBOL.finditer(text):
        name = m.group(1).rstrip(".")
        item: Dict[str, Any] = {"name": name, "kind": "c++" if name.startswith("_Z") else "c"}
        dm = demangle(name) if item["kind"] == "c++" else None
        if dm:
            item["demangled"] = dm
        libs = list(_EV_SYMBOL_LIB.finditer(text, max(0, m.start() - 400), m.start() + 20))
        if libs:  # the library named nearest before the symbol
            item["library"] = libs[-1].group(1).rsplit("/", 1)[-1]
        syms.append(item)
        if len(syms) >= 8:
            break
    if syms:
        ev["symbols"] = syms
    sonames = []
    for m in _EV_SONAME.finditer(text):
        so = m.group(1) or m.group(2)
        base, _, ver = so.partition(".so")
        major = ver.strip(".").split(".")[0] if ver.strip(".") else None
        item = {"name": so, "base": base}
        if major:
            item["major"] = major
        if item not in sonames:
            sonames.append(item)
        if len(sonames) >= 8:
            break
    if sonames:
        ev["sonames"] = sonames
    libc = []
    for m in _EV_GLIBC.finditer(text):
        pair = {"family": m.group(1), "version": m.group(2)}
        if pair not in libc:
            libc.append(pair)
    if libc:
        ev["libc"] = libc[:8]
    archs = []
    for m in _EV_ARCH.finditer(text):
        a = f"sm_{m.group(1)}{m.group(2).lower()}"
        if a not in archs:
            archs.append(a)
    ccs = []
    for m in _EV_CC.finditer(text):
        cc = f"{int(m.group(1))}.{m.group(2)}"
        if cc not in ccs:
            ccs.append(cc)
        a = _arch_of_cc(m.group(1), m.group(2))
        if a not in archs:
            archs.append(a)
    if archs:
        ev["arch"] = archs[:8]
    if ccs:
        ev["compute_capability"] = ccs[:8]
    ancient = any(float(c) < ANCIENT_CC for c in ccs)
    low = text.lower()
    codes: List[int] = []
    for phrase, code in _CUDA_ERROR_TEXT.items():
        if phrase in low and code not in codes:
            codes.append(code)
    for m in _EV_CUDA_ERR_NAME.finditer(text):
        named = _CUDA_NAME_CODES.get(m.group(1).lower())
        if named is not None and named not in codes:
            codes.append(named)
    for m in _EV_CUDA_ERR_CODE.finditer(text):
        code = int(m.group(1))
        if code in CUDA_ERRORS and code not in codes and code != 2:
            codes.append(code)
    for m in _first_n(_NCCL_CUDA_FAILURE_CODE.finditer(text), 16):
        code = int(m.group(1))
        if code in CUDA_ERRORS and code not in codes:
            codes.append(code)
    for m in _first_n(_EV_CUDA_STATUS.finditer(text), 64):
        code = int(next(g for g in m.groups() if g))
        if code in CUDA_ERRORS and code not in codes:
            codes.append(code)
    if codes:
        ev["cuda_errors"] = [{"code": c, "name": CUDA_ERRORS[c]} for c in codes[:8]]
    sigs: List[str] = []
    exits: List[str] = []
    for rx, kind in _EV_SIGNAL:
        for m in rx.finditer(text):
            val = m.group(1)
            if kind == "exit":
                if val not in exits:
                    exits.append(val)
                name = _EXIT_SIGNALS.get(val)
            else:
                name = _SIGNAL_NAMES.get(val.lower())
            if name and name not in sigs:
                sigs.append(name)
            if len(sigs) + len(exits) >= 12:
                break
    if sigs:
        ev["signals"] = sigs
    if exits:
        ev["exit_status"] = exits[:6]
    tools = list(dict.fromkeys(t for t in _TOOLS.findall(text)))
    if tools:
        ev["tools"] = tools[:6]
    nccl = _NCCL_ERROR.search(text)
    failure = _NCCL_CUDA_FAILURE.search(text)
    if nccl:
        ev["nccl_error"] = nccl.group(1).lower()
        if failure and ev["nccl_error"] == "unhandled cuda error":
            # NCCL names the CUDA call's own error ("Cuda failure 'out of memory'"): that error is the cause, not
            # the NCCL release; only a missing kernel says the NCCL build lacks the GPU
            ev["nccl_error"] = "cuda failure: " + failure.group(1).lower()[:60]
    elif failure and "NCCL" in text:
        # NCCL's own WARN line alone ("NCCL WARN Cuda failure 'unknown error'"), without the error it returned
        ev["nccl_error"] = "cuda failure: " + failure.group(1).lower()[:60]
    versions = {}
    for name, pats in _VERSIONS.items():
        v = _first(pats, text)
        if v:
            versions[name] = v
    if versions:
        ev["versions"] = versions
    fams = [name for name, rx in _GPU_FAMILY if rx.search(text)]
    if fams:
        ev["gpu_family"] = fams
    comps = [name for name, rx in COMPONENTS.items() if rx.search(text)]
    if comps:
        ev["components"] = comps
    symptoms = [name for name, rx in SYMPTOMS.items() if rx.search(text)]
    if symptoms:
        ev["symptoms"] = symptoms
    families = []
    for name, rx in _FAMILIES:
        needle = _FAMILY_NEEDS.get(name)
        if needle is not None and needle not in low:
            continue
        fm = rx.search(text)
        if fm and name == "cc-floor":
            # a dtype's floor ("Bfloat16 is only supported on GPUs with compute capability of at least 8.0") is a
            # setting to change (--dtype half), not a GPU too old for the software
            fm = next((m for m in rx.finditer(text) if not _DTYPE_FLOOR.search(_line_at(text, m.start()))), None)
        if fm and name in _LINE_CHECKS:
            before_only, crx = _LINE_CHECKS[name]
            fm = next(
                (m for m in _first_n(rx.finditer(text), 64) if crx.search(_line_part(text, m, before_only))), None
            )
        if not fm:
            continue
        if name == "torch-cc-warning":
            major = int(fm.group(1))
            name += ":old" if major < 7 or (major == 7 and int(fm.group(2)) < 5) else ":new" if major >= 10 else ":mid"
        if name == "oom-building-weights" and not _OOM.search(text):
            continue
        if name == "own-extension-undefined" and any(_OTHER_SYMBOL.search(s["name"]) for s in syms):
            continue  # a driver, system-library or arch-kernel symbol: its own hint says more than the library
        families.append(name)
    if ancient:
        families.append("cc-stated-ancient")
    families.extend(_environment_report(text))
    phase = oom_phase(text)
    if phase:
        families.append("oom:" + phase)
    if phase == "startup" and "oom-building-weights" not in families and _oom_loading_weights(text):
        families.append("oom-building-weights")
    if families:
        ev["families"] = families
    return ev


def evidence_keys(ev: dict) -> List[str]:
    """Flat keys of the evidence ("signal:SIGILL", "soname:libnuma", "cuda-error:804", ...) that hints match."""
    keys: List[str] = []
    for s in ev.get("symbols", []):
        keys.append(f"symbol-kind:{s['kind']}")
        keys.append(f"symbol:{s['name']}")
        if s.get("demangled"):
            keys.append(f"symbol-demangled:{s['demangled']}")
        if s.get("library"):
            keys.append(f"symbol-library:{s['library']}")
    for s in ev.get("sonames", []):
        keys.append(f"soname:{s['base']}")
    for p in ev.get("libc", []):
        keys.append(f"libc:{p['family']}")
    for a in ev.get("arch", []):
        keys.append(f"arch:{a}")
    for e in ev.get("cuda_errors", []):
        keys.append(f"cuda-error:{e['code']}")
    for s in ev.get("signals", []):
        keys.append(f"signal:{s}")
    for t in ev.get("tools", []):
        keys.append(f"tool:{t}")
    if ev.get("nccl_error"):
        keys.append(f"nccl-error:{ev['nccl_error']}")
    for f in ev.get("gpu_family", []):
        keys.append(f"gpu:{f}")
    for c in ev.get("components", []):
        keys.append(f"component:{c}")
    for s in ev.get("symptoms", []):
        keys.append(f"symptom:{s}")
    for name, v in (ev.get("versions") or {}).items():
        keys.append(f"{name}-version:{v}")
    for f in ev.get("families", []):
        keys.append(f"family:{f}")
    return keys


# Evidence that points at a topic: (every one of these key patterns present, slug, weight). Transparent and
# small on purpose; the BM25 part of the score does the rest.
_CUDA_LIBS = (
    r"soname:lib(?:cudart|cublas|cublasLt|cusparse|cusparseLt|cufft|curand|cusolver|nvrtc|cudnn\w*|nvJitLink|npp\w*)$"
)
_SYSTEM_LIBS = (
    r"soname:lib(?:numa|ibverbs|mlx5|rdmacm|gomp|GL|glib-2\.0|gthread-2\.0|aio|ffi|ssl|crypto|openblas|"
    r"SM|ICE|X11|Xext|xcb|cupti|omp|jemalloc|tcmalloc\w*|python3\.\d+|z|bz2|lzma|sqlite3|uring|efa|fabric)$"
)
HINTS: List[tuple] = [
    ((r"signal:SIGILL$",), "cpu-isa-mismatch", 4.0),
    ((r"signal:SIGKILL$", r"tool:(?:cicc|ptxas|cc1plus|nvcc|ninja|g\+\+|c\+\+)$"), "build-oom", 4.0),
    ((r"libc:GLIBC$",), "glibc-too-old", 5.0),
    ((r"libc:(?:GLIBCXX|CXXABI)$",), "libstdcxx-too-old", 5.0),
    ((r"cuda-error:80[34]$",), "cuda-compat-mismatch", 5.0),
    ((r"cuda-error:209$",), "no-kernel-image", 3.0),
    ((r"cuda-error:222$",), "ptx-toolchain", 4.0),
    ((r"cuda-error:35$",), "driver-too-old", 4.0),
    ((r"cuda-error:36$",), "driver-too-old", 4.0),
    # torch's environment report: a driver below what torch's CUDA needs, and CUDA not available
    ((r"family:driver-below-torch-cuda$",), "driver-too-old", 6.0),
    # ... or no driver reported at all
    ((r"family:collect-env-no-driver$",), "no-driver-in-container", 4.0),
    # a CPU-only torch build named where CUDA was wanted
    ((r"family:torch-cpu-build$",), "cpu-torch-cuda-extension", 4.0),
    # NCCL's shared-memory segments live in /dev/shm: a bus error in NCCL is a segment past what /dev/shm holds
    ((r"signal:SIGBUS$", r"component:nccl$"), "nccl-shm-too-small", 5.0),
    # ... and a bus error in a text about /dev/shm is a segment past what it holds, NCCL's or another's
    ((r"signal:SIGBUS$", r"symptom:shm$"), "nccl-shm-too-small", 5.0),
    ((r"cuda-error:34$",), "cuda-stub-libcuda", 5.0),
    ((r"cuda-error:802$",), "fabric-manager-missing", 5.0),
    ((r"cuda-error:999$",), "cuda-unknown-error-999", 5.0),
    ((r"cuda-error:217$",), "custom-allreduce-p2p", 3.0),
    ((_CUDA_LIBS,), "cuda-major-mismatch", 2.5),
    ((_SYSTEM_LIBS,), "system-library-missing", 4.0),
    ((r"soname:libcuda$",), "no-driver-in-container", 4.0),
    ((r"symbol-kind:c$", r"symbol:(?:torch|aoti_torch|at)(?:_|[A-Z])\w+$"), "undefined-symbol", 4.0),
    (
        (r"symbol-demangled:(?:(?:typeinfo|typeinfo name|vtable|VTT|guard variable) for )?(?:c10|at|torch|caffe2)::",),
        "undefined-symbol",
        3.0,
    ),
    # cuInit is in every libcuda there is: one missing means libcuda itself was not loaded (a stub, a wrong path)
    ((r"symbol:cu(?!Init$)[A-Z]\w+$",), "driver-too-old", 3.0),
    ((r"symbol:cuInit$",), "missing-library", 5.0),
    ((r"symbol:_Z\w*(?:cutlass\w*sm1\d\d|nvfp4)",), "sm12x-missing-kernel-symbol", 3.0),
    ((r"nccl-error:unhandled cuda error$", r"gpu:blackwell-consumer$"), "nccl-too-old-blackwell", 3.0),
    ((r"nccl-error:unhandled cuda error$", r"nccl-version:2\.(?:1\d|2[0-5])\."), "nccl-too-old-blackwell", 3.0),
    # NCCL's own buffers and communicators are allocated while the engine starts: an OOM inside NCCL is a start's
    ((r"nccl-error:cuda failure: out of memory$",), "startup-oom", 6.0),
    # NCCL's "Cuda failure 999 'unknown error'": the CUDA call's own error 999 (cudaErrorUnknown)
    ((r"nccl-error:cuda failure: unknown error$",), "cuda-unknown-error-999", 6.0),
    ((r"symptom:hang$", r"symptom:parallel$"), "consumer-p2p-hang", 3.0),
    ((r"symptom:hang$", r"symptom:parallel$"), "pcie-p2p-acs-iommu", 1.5),
    ((r"arch:sm_(?:[1-4]\d|5[0-3])$", r"tool:(?:nvcc|ptxas)$"), "nvcc-dropped-arch", 3.0),
    ((r"symptom:hang$", r"component:nccl$"), "consumer-p2p-hang", 2.0),
    ((r"symptom:wrong-result$", r"symptom:p2p$"), "consumer-p2p-hang", 3.0),
    ((r"symptom:hang$", r"symptom:iommu$"), "pcie-p2p-acs-iommu", 4.0),
    ((r"component:flashinfer$", r"gpu:blackwell-consumer$"), "flashinfer-sm120", 0.8),
    ((r"component:flash-attn$", r"gpu:blackwell-consumer$"), "flash-attn-arch-gate", 0.8),
    # a torch-ABI symbol whose std::string is the other C++11 ABI's (__cxx11 wanted, or the old "Ss" one)
    ((r"symbol:_Z\w*__cxx11\w*$",), "cxx11-abi-mismatch", 5.0),
    # a symbol of the C++ standard library itself (std::filesystem::path::has_filename): the libstdc++ that was
    # loaded is older than the one the library was built with (the __cxx11 forms above are the ABI's)
    ((r"symbol:_Z(?:NK?)?St\w+$",), "libstdcxx-too-old", 4.0),
    ((r"symbol:_Z\w*(?:RK|E|N|P|S_)Ss\w*$",), "cxx11-abi-mismatch", 5.0),
    # a C symbol of a system library (libnuma, libibverbs, liburing, libaio) that nothing loaded
    ((r"symbol:(?:numa|ibv|rdma|mlx5|io_uring|io)_\w+$",), "system-library-missing", 5.0),
    # a PTX feature that exists only on the arch-specific target (sm_120a, sm_100a), asked of the plain one
    ((r"family:ptx-plain-target$",), "arch-suffix-missing", 5.0),
    ((r"family:ld-missing$",), "missing-library", 8.0),
    ((r"family:parallel-exceeds-devices$",), "tp-exceeds-gpus", 8.0),
    ((r"family:gsp$", r"component:driver$"), "gsp-init-failure", 6.0),
    ((r"family:gsp-firmware-file$",), "gsp-init-failure", 6.0),
    ((r"family:cutlass-fp8$", r"gpu:blackwell-consumer$"), "sm12x-fp8-kernel-missing", 5.0),
    ((r"family:manylinux-wheel-refused$",), "glibc-too-old", 5.0),
    ((r"family:suspend-uvm$",), "cuda-unknown-error-999", 5.0),
    ((r"family:driver-too-low-words$",), "driver-too-old", 4.0),
    ((r"family:tf-dso-missing$",), "missing-library", 6.0),
    ((r"family:arch-too-old-for-toolkit$",), "nvcc-dropped-arch", 6.0),
    ((r"family:host-compiler-floor$",), "host-compiler-unsupported", 5.0),
    ((r"family:ptx-arch-guard$",), "arch-suffix-missing", 6.0),
    ((r"family:nvidia-smi-not-in-container$",), "no-driver-in-container", 6.0),
    ((r"family:conda-glibc-floor$",), "glibc-too-old", 6.0),
    ((r"family:conda-cuda-floor$",), "driver-too-old", 6.0),
    ((r"family:conda-cuda-absent$",), "no-driver-in-container", 6.0),
    ((r"family:uv-needs-system-lib$",), "system-library-missing", 6.0),
    ((r"family:uv-needs-cuda-header$",), "cuda-toolkit-missing", 6.0),
    ((r"family:uv-needs-cuda-lib$",), "missing-library", 6.0),
    ((r"family:uv-needs-python-h$",), "python-headers-missing", 6.0),
    ((r"family:uv-manylinux-floor$",), "glibc-too-old", 6.0),
    ((r"family:rdma-peermem$",), "peermem-nccl-hang", 8.0),
    ((r"family:attn-backend-refused$",), "bad-attention-backend", 8.0),
    ((r"family:quant-needs-capability$",), "quant-needs-newer-gpu", 8.0),
    ((r"family:torch-cc-warning:old$",), "gpu-too-old", 4.0),
    ((r"family:torch-cc-warning:new$",), "no-kernel-image", 3.0),
    ((r"family:torchvision-ops$",), "torchvision-mismatch", 8.0),
    ((r"family:torch-pin$",), "torch-pin-conflict", 8.0),
    ((r"family:fa3-kernels$",), "fa3-blackwell", 6.0),
    ((r"family:unsupported-arch$", r"component:flashinfer$"), "flashinfer-trtllm-gen-sm120", 3.0),
    ((r"family:p2p-disabled$", r"symptom:(?:hang|wrong-result)$"), "consumer-p2p-hang", 4.0),
    ((r"family:oom:runtime$",), "runtime-oom", 4.0),
    ((r"family:oom:startup$",), "startup-oom", 4.0),
    # a capability floor: the GPU is too old for torch / vLLM, or for the quantization scheme being loaded
    ((r"family:cc-floor$",), "gpu-too-old", 4.0),
    ((r"family:cc-floor$", r"family:quant-context$"), "quant-needs-newer-gpu", 5.0),
    ((r"family:quant-capability-check$",), "quant-needs-newer-gpu", 6.0),
    # FlashAttention-3 on a Blackwell GPU, or FA3 refusing a GPU that is not SM 9.x
    ((r"family:fa3-named$", r"gpu:blackwell(?:-consumer|-datacenter)?$"), "fa3-blackwell", 6.0),
    ((r"family:fa3-named$", r"family:cc-floor$"), "fa3-blackwell", 6.0),
    ((r"family:flash-attn-gate$",), "flash-attn-arch-gate", 5.0),
    ((r"family:nvml-container$",), "no-driver-in-container", 6.0),
    ((r"family:gpu-unsupported-by-driver$",), "driver-older-than-gpu", 6.0),
    ((r"family:bnb-setup$",), "bitsandbytes-sm120", 5.0),
    ((r"family:no-cuda-toolkit$",), "cuda-toolkit-missing", 5.0),
    # the GPUs' link matrix is what a report shows when peer-to-peer between two cards is in question
    ((r"family:topo-matrix$",), "custom-allreduce-p2p", 8.0),
    # ACS / IOMMU state pasted into a GPU report (lspci's ACSCtl lines, an IOMMU setting)
    ((r"symptom:iommu$",), "pcie-p2p-acs-iommu", 3.5),
    ((r"family:own-extension-undefined$",), "undefined-symbol", 4.0),
    ((r"family:cc-stated-ancient$",), "gpu-too-old", 4.0),
    ((r"family:arch-name-refused$",), "torch-cuda-arch-list", 6.0),
    ((r"family:ptx-version-target$", r"component:triton$"), "triton-too-old-arch", 6.0),
    ((r"family:torch-c-attribute$",), "duplicate-packages", 6.0),
    ((r"family:cuda-unavailable-worker$",), "gpus-hidden", 6.0),
    ((r"family:build-host-memory$",), "build-oom", 6.0),
    ((r"family:cuda-version-mismatch$",), "cuda-major-mismatch", 5.0),
    ((r"family:oom-building-weights$",), "weights-do-not-fit", 6.0),
    ((r"family:ext-built-for-other-torch$",), "undefined-symbol", 5.0),
    ((r"family:nvcc-unsupported-arch$", r"arch:sm_(?:[7-9]\d|1\d\d)[af]?$"), "nvcc-too-old", 4.0),
    # torch's own CUDA libraries missing: the torch installed is a CPU build under a CUDA extension
    ((r"soname:lib(?:torch_cuda|c10_cuda)$",), "cpu-torch-cuda-extension", 5.0),
    # torch 1.x's split CUDA libraries, merged into libtorch_cuda.so in torch 2.0: what asks for them was built
    # against an older torch than the one installed
    ((r"soname:libtorch_cuda_(?:cu|cpp)$",), "undefined-symbol", 5.0),
    # NCCL P2P turned off as the workaround on GeForce cards
    ((r"family:p2p-disabled$", r"gpu:consumer$"), "consumer-p2p-hang", 2.5),
    ((r"family:compiler-oom$",), "build-oom", 8.0),
    ((r"family:gpu-lacks-quant$",), "quant-needs-newer-gpu", 8.0),
    ((r"family:arch-specific-target$",), "arch-suffix-missing", 8.0),
    ((r"family:allocator-option-unsupported$",), "allocator-conf", 6.0),
    ((r"family:two-cudart$",), "two-cuda-runtimes", 8.0),
    ((r"family:kernel-image-missing$",), "no-kernel-image", 5.0),
    ((r"family:named-library-not-found$",), "missing-library", 6.0),
    ((r"family:cc-ceiling$",), "no-kernel-image", 3.0),
    ((r"family:driver-floor$",), "driver-too-old", 5.0),
    ((r"family:toolkit-floor$",), "nvcc-too-old", 6.0),
    ((r"family:cc-ceiling$", r"family:fa3-named$"), "fa3-blackwell", 6.0),
    ((r"family:unrecognized-flag$",), "unknown-serve-option", 5.0),
    ((r"family:engine-args-keyword$",), "unknown-serve-option", 6.0),
    ((r"family:pyd-entry-point$",), "undefined-symbol", 5.0),
    ((r"family:no-kv-blocks$",), "weights-do-not-fit", 6.0),
    ((r"family:bar-unassigned$",), "rebar-above4g-disabled", 6.0),
    ((r"family:torch-replaced$",), "torch-pin-conflict", 6.0),
    ((r"family:system-dev-package$",), "system-library-missing", 5.0),
    ((r"family:visible-devices-set$", r"cuda-error:100$"), "gpus-hidden", 8.0),
    ((r"family:attn-backend-device$",), "bad-attention-backend", 8.0),
    ((r"family:multi-consumer-gpu$", r"symptom:hang$"), "consumer-p2p-hang", 4.0),
    ((r"family:nvfp4-moe$", r"gpu:blackwell-consumer$"), "flashinfer-nvfp4-moe-sm120", 5.0),
    # NCCL's own library not found by the loader of the program that wraps it, or another CUDA library a kernel
    # package loads itself (NVSHMEM for FlashInfer's and DeepEP's kernels)
    ((r"soname:lib(?:nccl|nvshmem\w*|cutensor\w*|cudss|cufile\w*)$",), "missing-library", 4.0),
    # any other library a program could not find or open: a missing library, unless a hint above says more
    ((r"soname:lib(?!cuda$|nvidia-ml$|torch|c10)[\w+-]+$",), "missing-library", 3.0),
]
_HINT_RX = [(tuple(re.compile(p) for p in pats), slug, w) for pats, slug, w in HINTS]
_HINTED_SLUGS = frozenset(slug for _, slug, _ in HINTS)

# What tier 2 needs before it may name an article at all ("key:" = an evidence key, else a text pattern):
# words in common are not enough where the article is about one specific fact.
_BLACKWELL = (
    r"sm_?1[0-2]\d|\bsm ?1[0-2]\d|\b1[0-2]\.[0-9]\b|12\.x|blackwell(?! archs)|rtx ?50[5-9]0|rtx pro \d000|\bgb10\b|"
    r"\bg?b[12]00\b|\bb300\b|compute_1[0-2]\d"
)
_SYSTEM_SONAME = (
    r"key:(?:soname:lib(?:numa|ibverbs|mlx5|rdmacm|efa|fabric|aio|uring|GL|gomp|glib-2\.0|jemalloc|openblas|SM|ICE|"
    r"X11)|family:system-dev-package|family:uv-needs-system-lib)$"
)
_GPU_TOPIC = (
    r"capabilit|sm_?\d{2,3}|\bsm ?\d{2,3}\b|sm\d{1,2}x|compute_\d{2,3}|\bgpus?\b|ampere|\bada\b|hopper|turing|volta|"
    r"blackwell|hardware|\bcc\b|rtx|geforce|tesla|\b[ahlbv]\d{2,3}\b|(?<!model )architecture|\bsm\s{0,2}>=|"
    r"target device"
)
# the words of a quantized format or its kernels: the quantization article's GPU floor is that format's
_QUANT_TOPIC = (
    r"quant|fp8|float8|e4m3|e5m2|fp8e4|int8|8-?bit|int4|4-?bit|awq|gptq|marlin|nvfp4|fp4|mxfp|scaled_mm|"
    r"bitsandbytes|w8a8|w4a16|compressed.tensors|Int8 Matmul|\bbf16\b|bfloat16"
)
_P2P_TOPIC = (
    r"p2p|peer|all.?reduce|ipc|nvlink|tensor.?parallel|\btp\b|multi.?gpu|topo|nccl|\bPHB\b|\bPIX\b|\bPXB\b|"
    r"\bNV\d{1,2}\b|Connection traversing"
)
_OOM_WORDS = r"out of memory|OutOfMemoryError|\bOOM\b|Tried to allocate|not enough (?:GPU |CUDA |device )?memory to"
REQUIRES: Dict[str, str] = {
    "vllm-no-fa2-sm12x": _BLACKWELL,
    "flashinfer-trtllm-gen-sm120": _BLACKWELL + r"|trtllm|tllm_?gen",
    "flashinfer-nvfp4-moe-sm120": _BLACKWELL,
    "sm12x-fp8-kernel-missing": _BLACKWELL,
    "sm12x-missing-kernel-symbol": _BLACKWELL,
    "arch-suffix-missing": _BLACKWELL + r"|arch conditional mma|_is_only_supported_on_SM_",
    "sm121-torch-warning-benign": r"12\.1|sm_?121|\bgb10\b|dgx spark",
    "fa3-blackwell": r"fa3|fa ?3\b|flash.?attention.?3|hopper|flash_fwd|fa version 3",
    "system-library-missing": _SYSTEM_SONAME,
    "nvcc-dropped-arch": r"key:(?:arch:sm_(?:[1-4]\d|5[0-3])[af]?|family:arch-too-old-for-toolkit)$",
    "nvcc-too-old": r"key:(?:arch:sm_(?:8[6-9]|9\d|1\d\d)[af]?|family:nvcc-unsupported-arch|family:toolkit-floor)$",
    "triton-too-old-arch": r"key:(?:arch:sm_(?:9\d|1\d\d)[af]?|family:ptx-version-target)$",
    "tp-exceeds-gpus": r"exceed|larger than|greater than|more than|not enough|available gpus|gpu count|less than",
    "runtime-oom": _OOM_WORDS,
    # the serving CLI's own articles: an argparse error of some other program is that program's business
    "unknown-serve-option": r"vllm|sglang|\bserve\b|api_server|launch_server|VLLM_|SGLANG_|EngineArgs",
    "bad-serve-flag-value": r"vllm|sglang|\bserve\b|api_server|launch_server|VLLM_|SGLANG_",
    "startup-oom": _OOM_WORDS,
    # a GPU-capability article needs the text to speak of a GPU, an arch or a capability: "FlashAttention only
    # supports fp16", "fp8 is not supported for this model architecture" are limits of the software, not the GPU
    "flash-attn-arch-gate": _GPU_TOPIC,
    # ... and the quantization article both a GPU and a quantized format (two lookaheads from the start: each
    # is found anywhere in the text)
    "quant-needs-newer-gpu": rf"^(?=[\s\S]*?(?:{_GPU_TOPIC}))(?=[\s\S]*?(?:{_QUANT_TOPIC}))",
    # peer-to-peer articles need peer-to-peer in the text: "CUDA error: invalid argument" alone is any kernel's
    "custom-allreduce-p2p": _P2P_TOPIC,
    "consumer-p2p-hang": _P2P_TOPIC + r"|\bhangs?\b|hung|stuck|freez|deadlock|timed? ?out|watchdog",
    "pcie-p2p-acs-iommu": _P2P_TOPIC + r"|iommu|\bacs|pci|\bhangs?\b|hung|stuck|busbw|algbw|uses device",
    "sampler-warmup-oom": r"out of memory|OutOfMemoryError|\bOOM\b",
    # an attention backend's article needs attention in the text: "Invalid backend cuda" is any library's choice
    "bad-attention-backend": r"atten|attn|flash|xformers|sdpa|\bmla\b|flex|triton_attn|flashinfer",
}
_REQUIRES_RX = {
    slug: (p.startswith("key:"), re.compile(p[4:] if p.startswith("key:") else p, re.I)) for slug, p in REQUIRES.items()
}


# Articles the evidence rules out, never "likely": an OOM of one phase that the evidence places in another (an OOM
# while the model's layers are built is the weights' size, not a run's), a GPU too old where the text says too new
_RULED_OUT = {
    "startup-oom": ("family:oom:runtime", "family:oom-building-weights", "family:oom:build", "family:host-oom"),
    "runtime-oom": ("family:oom:startup", "family:oom-building-weights", "family:oom:build", "family:host-oom"),
    "weights-do-not-fit": ("family:host-oom",),
    # (a GPU too new for a kernel is not one too old, nor one whose toolkit is too old for it)
    "gpu-too-old": ("family:cc-ceiling", "family:toolkit-floor"),
}


# Articles of one CUDA status: a text whose CUDA statuses are all other ones is not theirs, whatever words they
# share ("cuda driver library init failure: 100" is no device, not the 999 of the same wording)
_CODE_ARTICLES = {
    "cuda-unknown-error-999": ("cuda-error:999",),
    "fabric-manager-missing": ("cuda-error:802",),
    "cuda-stub-libcuda": ("cuda-error:34",),
    "cuda-compat-mismatch": ("cuda-error:803", "cuda-error:804"),
}


def _allowed(slug: str, keys: List[str], text: str) -> bool:
    if any(k in keys for k in _RULED_OUT.get(slug, ())):
        return False
    own = _CODE_ARTICLES.get(slug)
    if own and not any(k in keys for k in own) and any(k.startswith("cuda-error:") for k in keys):
        return False
    req = _REQUIRES_RX.get(slug)
    if req is None:
        return True
    on_keys, rx = req
    return any(rx.match(k) for k in keys) if on_keys else bool(rx.search(text))


def hint_scores(keys: List[str], slugs: Iterable[str]) -> Dict[str, tuple]:
    """{slug: (weight, [keys that drove it])} for the hints whose every pattern matches some evidence key."""
    have = set(slugs)
    out: Dict[str, tuple] = {}
    for rxs, slug, w in _HINT_RX:
        if slug not in have:
            continue
        used = []
        for rx in rxs:
            k = next((k for k in keys if rx.match(k)), None)
            if k is None:
                break
            used.append(k)
        else:
            old_w, old_keys = out.get(slug, (0.0, []))
            out[slug] = (old_w + w, old_keys + [f"{'+'.join(used)} (+{w:g})"])
    return out


# ---------------------------------------------------------------- not an environment problem

# Errors of the model, the request or the code, not of the GPU stack: these keep tier 2 silent (an exact
# signature can still name an article). Each family is the wording of the library that raises it.
NOT_ENVIRONMENT = [
    re.compile(p, re.I | re.M)
    for p in (
        # torch's device-side asserts and C asserts (aten/src/ATen/native/cuda/Indexing.cu "srcIndex <
        # srcSelectDimSize", Loss.cu "t >= 0 && t < n_classes"): an index or label out of range in the user's data
        r"device-side assert(?:ion)? triggered",
        # the serving code's own configuration or the model's support, as vLLM (ray_utils, attention backends),
        # llm-compressor and TGI word it: nothing in the GPU stack to fix
        r"Placement group bundle cannot have more than \d+ GPU",
        r"Invalid attention type [\w-]+",
        r"No modifier of type '[^'\n]{1,80}' found",
        r"`?num_heads`? must be divisible by `?num_shards`?",
        r"Assertion `[^`\n]{1,200}`\s{0,80}fail",
        # nvcc's "Value '%s' is not defined for option 'gpu-architecture'" for a value no arch name looks like (a
        # pasted list "[sm_61]"); a well-formed arch it does not know is nvcc-too-old's
        r"Value '[^'\n]{0,40}[^\w'\n-][^'\n]{0,40}' is not defined for option 'gpu-(?:architecture|code)'",
        r"\b40[13] Client Error\b|\bUnauthorized for url\b|Forbidden for url|Invalid username or password|Access to "
        r"model [^\n]{1,200} is restricted|Cannot access gated repo|gated repo|You are trying to access a gated repo|"
        r"is a gated repository",
        r"\b404 Client Error\b|Repository Not Found|is not a valid model identifier|"
        r"does not appear to have a file named|not a local folder and is not a valid model",
        # huggingface_hub: errors.py's classes, utils/_http.py hf_raise_for_status, file_download.py and
        # _snapshot_download.py (offline mode, an empty cache), httpx's "Client error '404 Not Found' for url"
        r"\b(?:RepositoryNotFoundError|GatedRepoError|RevisionNotFoundError|(?:Remote|Local)?EntryNotFoundError|"
        r"DisabledRepoError|OfflineModeIsEnabled)\b|Revision Not Found for url|Entry Not Found for url|"
        r"Client error '4\d\d [^'\n]{1,40}' for url|\b429 Too Many Requests\b",
        r"Cannot find the requested files in the (?:disk|local) cache|outgoing traffic has been disabled|offline "
        r"mode is enabled|Cannot find an appropriate cached snapshot folder|"
        r"cannot find the requested files in the local cache",
        # transformers utils/hub.py (cached_file), configuration_auto.py, dynamic_module_utils.py, and 4.x's
        # "Model name '...' was not found in model name list"
        r"We couldn't connect to '[^'\n]{1,200}' to load|There was a specific connection error when trying to load|"
        r"is not a local folder or a valid repository name|is not a valid git identifier \(branch name|"
        r"was not found in (?:the )?(?:tokenizers )?model name list",
        r"contains custom code which must be executed|requires you to execute (?:the configuration file in that "
        r"repo|custom code contained in the model repository)|(?:pass the argument|set the option) "
        r"\W?trust_remote_code=True",
        r"CONFIG_MAPPING\[config_dict\[.model_type.\]\]",
        # transformers 4.x utils/hub.py and modeling_utils.py (a checkpoint that is not there or not whole), a
        # config.json newer than the library (models/*/configuration_*.py's rope_scaling check), generation/utils.py;
        # huggingface_hub hf_api.py and utils/_headers.py (a token)
        r"Could not locate \S+\.(?:py|json|bin|safetensors|model|txt) inside|Incorrect path_or_model_id|"
        r"does not contain the valid metadata|cloned a repository without having git-lfs installed|"
        r"Unable to load weights from pytorch checkpoint file|"
        r"Error no file named [^\n]{1,200}? found in directory",
        r"rope_scaling\W{0,2} must be a dictionary with|The following \W?model_kwargs\W? are not used by the model|"
        r"Invalid user token|Token is required \([^)\n]{1,40}\),? but no token found",
        r"maximum context length|context length (?:is )?exceeded|exceeds? (?:the )?(?:model'?s? )?maximum "
        r"(?:context|sequence) length|Input length[^\n]{0,40}exceeds|longer than the specified maximum sequence "
        r"length|prompt is too long|is longer than the model's context|longer than the maximum model length|"
        # llama.cpp's server (tools/server): a request longer than the slot's context
        r"the request exceeds the available context size|exceed_context_size_error|"
        # Ollama's server: a context asked for beyond the model's training context
        r"requested context size too large for model",
        # vLLM: core/scheduler.py and v1/core/sched/scheduler.py ("Input prompt (%d tokens) is too long and exceeds
        # limit of %d"), the OpenAI server's protocol and serving_engine.py, sampling_params.py
        r"Input prompt \(\d+ tokens\) is too long and exceeds|Please reduce the length of (?:the )?(?:messages|input|"
        r"prompt)|max_tokens must be (?:at least 1|positive)|'max_tokens' or 'max_completion_tokens' is too large",
        r"The model `[^`\n]{1,200}` does not exist|\bNotFoundError\b|No adapter found for|"
        r"LoRA rank \d+ is greater than max_lora_rank|Model architecture \S+ was supported in vLLM until",
        # vLLM 0.6's engine/llm_engine.py, entrypoints/openai/serving_engine.py and protocol.py, sampling_params.py
        r"The lora adapter '[^'\n]{1,200}' (?:cannot be found|has already been)|but LoRA is not enabled|"
        r"is too long to fit into the model|Cannot request more than \d+ logprobs|Prompt cannot be empty|"
        r"You can only (?:use one kind of|either use) guided decoding|best_of must be greater than or equal to n|"
        r"(?:presence|frequency)_penalty must be in|When using \W?tool_choice\W?, \W?tools\W? must be set|"
        r"The tool specified in \W?tool_choice\W? does not match any|has not been passed in \W?tools\W?",
        r"tool choice requires --enable-auto-tool-choice|Token id \d+ is out of vocabulary|"
        r"Could not detect config format|is not divisible by weight quantization block_[nk]",
        # vLLM v1/structured_output/backend_*.py: a request's grammar, regex or JSON schema
        r"Invalid (?:JSON )?grammar specification|structured outputs backend does not support|"
        r"Failed to transform (?:regex|choices|json schema) into a (?:grammar|regex)|"
        r"JSON schema contains features not supported by xgrammar",
        r"\bJSONDecodeError\b|\bSyntaxError\b|\bIndentationError\b",
        r"\b400 Bad Request\b|BadRequestError|Invalid request|invalid_request_error",
        # the openai client's 4xx classes (openai/_exceptions.py) and its "Error code: %d" (_base_client.py)
        r"\b(?:AuthenticationError|PermissionDeniedError|UnprocessableEntityError|RateLimitError)\b|"
        r"\bError code: 4\d\d - ",
        r"got an unexpected keyword argument|missing \d+ required positional argument",
        r"must be divisible by (?:the )?(?:tensor|pipeline) parallel size",
        r"HFValidationError|Repo id must be in the form|Invalid repository ID or local directory specified",
        # transformers configuration_utils.py / tokenization_utils_base.py / modeling_utils.py: "Can't load the
        # configuration of '<path>'. ... make sure '<path>' is the correct path to a directory containing a ..."
        r"Can.t load (?:the )?(?:tokenizer|config(?:uration)?|processor|feature extractor|model|weights) (?:for|of)\b|"
        r"is the correct path to a directory containing (?:a|all)\b",
        r"chat template|tokenizer\.chat_template|Unrecognized (?:configuration class|model)|"
        r"model type `?\w+`? but Transformers does not recognize|"
        # llama.cpp's loader (src/llama-model-loader / llama-arch): a GGUF of an architecture the build cannot run
        r"unknown model architecture: '[^'\n]{1,60}'",
        # TensorRT's engine refusing a shape outside the profiles it was built with (a longer request, a bigger
        # batch): the engine's build settings, not the GPU stack
        r"does not satisfy any optimization profile",
        # transformers tokenization_utils_base.py, tokenization_auto.py, generation/configuration_utils.py;
        # tokenizers' serde error on a tokenizer.json newer than the library
        r"Asking to pad but the tokenizer does not have a padding token|Tokenizer class \S+ does not exist or is "
        r"not currently imported|Tokenizer class \S+ specified in the tokenizer config was not found|"
        r"GenerationConfig is invalid|did not match any variant of untagged enum",
        # jinja2/exceptions.py, and the raise_exception() that transformers' chat_template_utils.py gives templates
        r"\b(?:TemplateError|TemplateSyntaxError|TemplateRuntimeError|UndefinedError)\b|"
        r"Conversation roles must alternate|is not JSON serializable",
        # safetensors tensor.rs SafeTensorError (printed by its Debug name, later as words) behind
        # "Error while deserializing header": a truncated or non-safetensors file
        r"Error while deserializing header|\b(?:HeaderTooLarge|HeaderTooSmall|InvalidHeaderDeserialization|"
        r"InvalidHeaderLength|MetadataIncompleteBuffer)\b|incomplete metadata, file not fully covered",
        # torch: a checkpoint of another shape (nn/modules/module.py load_state_dict), tensors on two devices, shapes
        # or dtypes that do not fit an operator
        r"Error\(s\) in loading state_dict for|size mismatch for \S+: copying a param with shape|"
        r"Expected all tensors to be on the same device|mat1 and mat2 shapes cannot be multiplied|"
        r"The size of tensor a \(\d+\) must match the size of tensor b|shape '\[[^\]\n]{0,80}\]' is invalid for "
        r"input of size|expected scalar type \w+ but found \w+|expected (?:mat1 and mat2|m1 and m2) to have the same "
        r"dtype|Input type \([^)\n]{1,60}\) and weight type \([^)\n]{1,60}\) should be the same|"
        r"index out of range in self|is out of bounds for dimension \d+ with size",
        # docker's and the NVIDIA runtime's checks of what the user asked for (a device request, a shm size, a
        # capability name, a CDI device name, a requirement expression)
        r"cannot set both Count and DeviceIDs on device request|unexpected options in CDI device request|"
        r"SHM size can not be less than 0|unsupported capabilities found in '|unqualified device \"[^\"\n]{1,80}\", "
        r"missing vendor|requirement error: invalid expression",
        # argparse's "unrecognized arguments: %s" with no option among them: a positional given twice (a model path
        # after an entrypoint that already takes one), not a flag the release lacks
        r"error: unrecognized arguments:(?:[ \t]+[^\s-]\S*)+[ \t]*$",
    )
]

# Errors whose words also turn up around a GPU-stack failure: an OOM raised through the user's code, "No space left
# on device" for /dev/shm (NCCL), "Permission denied" on /dev/nvidia*, a pydantic ValidationError that wraps vLLM's
# capability check, a client's "Connection refused" under a server log that crashed. These keep tier 2 silent
# only where the text carries no environment evidence (see _environment_evidence).
NOT_ENVIRONMENT_UNLESS_EVIDENCE = [
    re.compile(p, re.I | re.M)
    for p in (
        r"Connection refused|ConnectionError|Max retries exceeded with url|Name or service not known|"
        r"Temporary failure in name resolution|Read timed out|\bAPIConnectionError\b|\bAPITimeoutError\b|"
        r"\bConnectTimeout\b|\bReadTimeout\b",
        r"No space left on device|Disk quota exceeded|Permission denied|is over \d+% full|"
        r"Not enough free disk space to download",
        # a port another process holds: errno 98/99 (uvicorn's "error while attempting to bind on address",
        # torch's TCPStore, Go's "bind: address already in use")
        r"Address already in use|\[Errno 9[89]\]|cannot assign requested address|"
        r"error while attempting to bind on address",
        # vLLM model_executor/models/registry.py: an architecture missing from the registry (older releases said it
        # too after an import of the model's module failed, hence the evidence gate)
        r"Model architectures? \[[^\]\n]{0,300}\] (?:are|is) not supported",
        r"probability tensor contains either",
        # Python: a KeyError (a checkpoint's parameter name, a config key; not the KV-scale names an article reads),
        # a module of the user's own (not a compiled extension: vllm._C, *_cuda, common_ops)
        r"\bKeyError(?::\s{0,4}['\"](?![^'\"\n]{0,200}[kv]_scale['\"])[^'\"\n]{1,200}['\"]|\s{4,}Traceback)",
        # a name never defined, an attribute an object lacks ("NameError: name 'ncclGetVersion' is not defined" is
        # NCCL that failed to load: the evidence says so); never "module 'torch._C' has no attribute" (two torch
        # copies) nor torch/_ops.py's "'_OpNamespace' '%s' object has no attribute" (an op a compiled library lacks)
        # torch's cpp_extension saying itself that a minor CUDA difference "shouldn't be a problem"
        r"has a minor version mismatch with the version that was used to compile PyTorch",
        # CUDA used in a process before it forked (a multiprocessing start method of the user's program)
        r"CUDA initialized before forking|Cannot re-initialize CUDA in forked subprocess",
        r"\bNameError: name '|\bname ['\u2018\"]\w{1,80}['\u2019\"] is not defined|"
        r"^(?![^\n]*(?:module 'torch\._C'|'_OpNamespace'))[^\n]*?has no attribute '[^'\n]{1,80}'",
        r"No module named ['\"](?![^'\"\n]{0,100}(?:_C\b|_cuda|cuda_|_ext\b|_ops\b|common_ops|libtriton))"
        r"[\w.]{1,100}['\"]",
    )
]

# pydantic_core's "%d validation error(s) for %s": a request body, a tool's own model; gated like the list above, and
# never for vLLM's config classes (ModelConfig, CacheConfig...: a serve flag's value, which bad-serve-flag-value
# explains, as it does a bare "gpu_memory_utilization: Input should be less than or equal to 1")
_PYDANTIC = re.compile(r"\bValidationError\b|\bvalidation errors? for \w+", re.I)
_SERVE_CONFIG_VALIDATION = re.compile(r"validation errors? for \w*?(?:Config|EngineArgs)", re.I)
_ENV_WORDS = re.compile(r"/dev/(?:shm|nvidia)|\bNCCL\b|\bshm\b", re.I)
# families that name a context (a quantized checkpoint, FA3, a device list, a topology), not a failure
_CONTEXT_FAMILIES = frozenset(
    f"family:{n}" for n in ("quant-context", "fa3-named", "visible-devices-set", "multi-consumer-gpu", "topo-matrix")
)


def _environment_evidence(keys: List[str], text: str) -> set:
    """The kinds of GPU-stack evidence that keep a look-alike user error from silencing tier 2: gpu_evidence()'s
    kinds but a GPU's name, a kernel library's or a context family (they turn up in any traceback of a model run),
    plus an OOM and /dev/shm, /dev/nvidia*, NCCL words."""
    kinds = gpu_evidence([k for k in keys if k not in _CONTEXT_FAMILIES], text) - {"gpu", "kernel-library"}
    if _OOM.search(text):
        kinds.add("oom")
    if _ENV_WORDS.search(text):
        kinds.add("env-words")
    return kinds


# Families that read a veto's words as the environment's failure: an engine-args dataclass refusing a keyword is
# the installed release not knowing a flag, not the user's own call
_UNVETO = frozenset({"family:engine-args-keyword"})


def _not_environment(text: str, keys: Optional[List[str]] = None) -> Optional[str]:
    for rx in NOT_ENVIRONMENT:
        m = rx.search(text)
        if m:
            return m.group(0)[:80]
    hits = (m for m in (rx.search(text) for rx in NOT_ENVIRONMENT_UNLESS_EVIDENCE) if m)
    first = next(hits, None)
    if first is None and not _SERVE_CONFIG_VALIDATION.search(text):
        first = _PYDANTIC.search(text)
    if first is not None and not _environment_evidence(keys if keys is not None else [], text):
        return first.group(0)[:80]
    return None


# ---------------------------------------------------------------- tier 2: evidence-weighted ranking

_TOKEN = re.compile(r"[a-z][a-z0-9_]{1,39}")
_STOP = frozenset(
    """the and for not with this that from are was were been being have has had you your our its into than then
    when what which while will would should could can cannot may might must also use used using uses only any all
    some such more most other about over after before between because there their them they these those here
    error errors warning warnings info debug traceback recent call last file line self return raise python site
    packages lib usr local home dist opt root bin venv conda envs anaconda miniconda main module init none true
    false please see try set get run running runs how why does did done one two new old via per each either
    both out off yes see also like just still same instead following above below https http www github com org
    issue issues html htm docs doc md code value values type types args kwargs object objects function class
    method name names result results default please note be to on in is it of at by as or if an we do so up my
    me us""".split()
)
K1 = 1.2
B = 0.5
FIELD_REPEAT = {"key": 2, "symptom": 1}
TAIL_LINES = 60  # the last lines of a long block, kept for tier 2 whatever words they hold
QUERY_LINES_MAX = 600  # error lines kept per input for tier 2 (first 150, then the latest ones)
QUERY_CHARS_MAX = 400_000
PHRASE_DF_MAX = 3  # a two-word phrase found in more articles than this says little about any one of them
# Phrases of the CUDA errors any kernel can end in (a bad access, a failed launch): an article may name them as what
# its failure looks like, but in an error they say nothing of which failure it was (most often the kernel's own bug)
GENERIC_PHRASES = frozenset(
    {
        "illegal memory",
        "memory access",
        "access encountered",
        "unspecified launch",
        "launch failure",
        "cuda kernel",
        # any loader's failure and any CUDA program's device count ("unable to load model", "found 1 CUDA devices")
        "unable load",
        "found cuda",
        "make sure",
        # words any program's error or any install says ("pip install", "trying to build", "must not be empty
        # string", "must be a list of integers", "submission failed: Invalid ...", "a CPU or disk device")
        "pip install",
        "trying build",
        "empty string",
        "list integer",
        "failed invalid",
        "cpu disk",
        # the device plugin's report of any Xid: the number says which failure it is
        "xidcriticalerror xid",
    }
)
LIKELY_MIN = 6.0  # tier-2 score an article needs to be reported as "likely"
LIKELY_PHRASES = 2  # distinctive phrases of the article the error lines must contain (without a hint)
HINT_ALONE = 3.0  # a hint at least this heavy makes an article likely with HINT_MARGIN more of any score
HINT_MARGIN = 1.0
BM25_SHARE = 0.25  # weight of the word-level BM25 in the tier-2 score (phrases and hints carry it)
LIKELY_RATIO = 0.6  # further likely articles must score this share of the best
EVIDENCE_LEAD = 2.0  # words must score this many times a hinted article's total to rank above it
SINGLE_MIN = 6.5  # one distinctive phrase suffices when the article scores this much...
SINGLE_MARGIN = 1.8  # ...and this many times the next article (the text points at one topic only)
NEAREST_N = 3
# Calibrated answer: where nothing above qualified, the first candidate is still "likely" when the text carries
# GPU-stack evidence of at least CALIBRATED_EVIDENCE kinds, reads as an error, is not a model/request/code error,
# scores CALIBRATED_MIN and leads the runner-up CALIBRATED_MARGIN times (chosen by a rotation over the three
# evaluation files of benchmarks/explain_eval: set on two, read on the third).
CALIBRATED_MIN = 3.0
CALIBRATED_MARGIN = 3.0
CALIBRATED_EVIDENCE = 2
_CODE_SPAN = re.compile(r"`([^`\n]{4,300})`")


def _stem(t: str) -> str:
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if len(t) > 4 and t.endswith("s") and not t.endswith(("ss", "us", "as", "is")):
        return t[:-1]
    return t


_NONSPACE = re.compile(r"\S+")
_PLATFORM_TAG = re.compile(r"\.cpython-\d+[\w-]{0,40}|\b(?:x86_64|aarch64|amd64)(?:-linux-gnu)?\b|-linux-gnu\b", re.I)


def collapse_paths(text: str) -> str:
    """Paths reduced to their last component and platform tags dropped: where a file lives (site-packages,
    /usr/lib/x86_64-linux-gnu, a venv) varies from report to report and says nothing about the failure."""
    return _PLATFORM_TAG.sub(" ", _NONSPACE.sub(_last_component, text))


def _last_component(m: re.Match) -> str:
    # split, not a regex over path segments: linear on any token (a long run with no slash cannot backtrack)
    tok = m.group(0)
    if tok[:1] == "-" and len(tok) > 12 and tok.count("-") >= 4:
        return " "  # a compiler's long option ("-forward-unknown-to-host-compiler"): a build line's words, no topic
    if "/" not in tok and "\\" not in tok:
        return tok
    return tok.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def tokens(text: str) -> List[str]:
    """Lower-case word tokens for the ranking: paths collapsed, stop words, one-letter and numeric tokens dropped,
    plurals folded."""
    return [_stem(t) for t in _TOKEN.findall(collapse_paths(text).lower()) if t not in _STOP]


def phrases(text: str) -> set:
    """Two-word phrases (adjacent tokens of one line, after stop words are dropped)."""
    out: set = set()
    for line in text.split("\n"):
        tk = tokens(line)
        out.update(f"{x} {y}" for x, y in zip(tk, tk[1:], strict=False))
    return out


@dataclass
class _Doc:
    slug: str
    title: str
    tf: Dict[str, int]
    length: int
    phrases: set


@dataclass
class _Index:
    docs: List[_Doc]
    idf: Dict[str, float]
    avg: float
    phrase_idf: Dict[str, float]


_INDEX_CACHE: Dict[tuple, _Index] = {}


def _article_text_fields(a: Any) -> Dict[str, str]:
    """key: title, aliases, slug words, signature literals and the error text quoted in Symptom; symptom: prose."""
    lits = []
    for s in a.signatures:
        try:
            lits.extend(_literal_runs(_sre_parse.parse(s, FLAGS))[1])
        except Exception:
            lits.append(s)
    sections = getattr(a, "sections", {}) or {}
    symptom = sections.get("Symptom", "")
    quoted = [m.group(1) for m in _CODE_SPAN.finditer(symptom)]
    return {
        "key": "\n".join([a.title, *a.aliases, a.slug.replace("-", " "), *lits, *quoted]),
        "symptom": symptom,
    }


def _index(articles: Dict[str, Any]) -> _Index:
    key = tuple((slug, a.title, tuple(a.signatures), tuple(a.aliases)) for slug, a in sorted(articles.items()))
    hit = _INDEX_CACHE.get(key)
    if hit is not None:
        return hit
    docs = []
    for slug, a in sorted(articles.items()):
        if not a.signatures:
            # a check-only article describes a state of the machine: no words of its own count, only a hint of
            # evidence that names that state can point at it
            if slug in _HINTED_SLUGS:
                docs.append(_Doc(slug=slug, title=a.title, tf={}, length=1, phrases=set()))
            continue
        tf: Dict[str, int] = {}
        n = 0
        fields = _article_text_fields(a)
        for fname, text in fields.items():
            for t in tokens(text):
                tf[t] = tf.get(t, 0) + FIELD_REPEAT[fname]
                n += FIELD_REPEAT[fname]
        docs.append(_Doc(slug=slug, title=a.title, tf=tf, length=max(n, 1), phrases=phrases(fields["key"])))
    df: Dict[str, int] = {}
    pdf: Dict[str, int] = {}
    for d in docs:
        for t in d.tf:
            df[t] = df.get(t, 0) + 1
        for ph in d.phrases:
            pdf[ph] = pdf.get(ph, 0) + 1
    n_docs = max(len(docs), 1)
    idf = {t: math.log(1 + (n_docs - f + 0.5) / (f + 0.5)) for t, f in df.items()}
    pidf = {ph: math.log(n_docs / f) for ph, f in pdf.items() if f <= PHRASE_DF_MAX and ph not in GENERIC_PHRASES}
    idx = _Index(docs=docs, idf=idf, avg=sum(d.length for d in docs) / n_docs, phrase_idf=pidf)
    _INDEX_CACHE.clear()
    _INDEX_CACHE[key] = idx
    return idx


def _bm25(idx: _Index, q: Iterable[str]) -> Dict[str, tuple]:
    """{slug: (score, [(term, contribution)] best first)} of the distinct query terms against each article."""
    qset = set(q)
    out: Dict[str, tuple] = {}
    for d in idx.docs:
        parts = []
        norm = K1 * (1 - B + B * d.length / idx.avg)
        for t in qset:
            f = d.tf.get(t)
            if f:
                parts.append((t, idx.idf[t] * f * (K1 + 1) / (f + norm)))
        if parts:
            parts.sort(key=lambda p: (-p[1], p[0]))  # ties by name: the same text, the same evidence
            out[d.slug] = (sum(p[1] for p in parts), parts)
    return out


# The advice torch prints under every CUDA error, whatever the error: it says nothing of the cause
_TORCH_CUDA_ADVICE = re.compile(
    r"^(?:CUDA kernel errors might be asynchronously reported|For debugging consider passing CUDA_LAUNCH_BLOCKING"
    r"|Compile with [`'\"]?TORCH_USE_CUDA_DSA)"
)


@dataclass
class _Query:
    """The error lines of one input, bounded: every line of a short paste, else the first and latest error lines
    (without torch's advice lines, which every CUDA error carries)."""

    head: List[tuple] = field(default_factory=list)
    tail: Any = None
    chars: int = 0
    seen: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.tail = collections.deque(maxlen=QUERY_LINES_MAX - QUERY_LINES_MAX // 4)

    def add(self, line_no: int, line: str) -> None:
        s = line.strip()
        if len(s) < 3 or (s[:1] in "CF" and _TORCH_CUDA_ADVICE.match(s)):
            return
        s = s[:2000]
        key = _fold(s)
        if key in self.seen:
            return
        if len(self.seen) < 100_000:
            self.seen.add(key)
        if len(self.head) < QUERY_LINES_MAX // 4 and self.chars < QUERY_CHARS_MAX // 2:
            self.head.append((line_no, s))
            self.chars += len(s)
        else:
            self.tail.append((line_no, s))

    def lines(self) -> List[tuple]:
        return self.head + list(self.tail)


def rank_evidence(
    query_lines: List[tuple], articles: Dict[str, Any], exclude: Iterable[str] = (), lookalike: Iterable[str] = ()
) -> dict:
    """Tier 2 over the error lines: {"likely": [...], "nearest": [...], "evidence": {...}, "vetoed": str|None}.

    Score of an article = the weights of the evidence hints that point at it + the idf of each distinctive
    two-word phrase of its title, aliases, signature literals or quoted Symptom text that the error lines
    contain (a phrase in at most PHRASE_DF_MAX articles) + BM25_SHARE x the word-level BM25. An article a hint of
    HINT_ALONE points at ranks first unless a word-only one scores EVIDENCE_LEAD times more. "likely" needs a
    hint of HINT_ALONE, or LIKELY_MIN with LIKELY_PHRASES distinct phrases, or (first place only) one phrase with
    SINGLE_MIN and SINGLE_MARGIN times the runner-up; words without a hint count only on a line that reads as an
    error. Text that names a model, request or code error keeps it empty. The nearest topics are the best scores
    whatever they are.
    """
    text = "\n".join(s for _, s in query_lines)
    ev = extract_evidence(text)
    keys = evidence_keys(ev)
    q = tokens(text)
    qph = phrases(text)
    for s in ev.get("symbols", []):
        if s.get("demangled"):
            q.extend(tokens(s["demangled"]))
    idx = _index(articles)
    bm = _bm25(idx, q)
    hints = hint_scores(keys, articles)
    skip = set(exclude)
    look = set(lookalike)
    cands = []
    for d in idx.docs:
        if d.slug in skip:
            continue
        b, parts = bm.get(d.slug, (0.0, []))
        h, hkeys = hints.get(d.slug, (0.0, []))
        matched = sorted(
            ((ph, idx.phrase_idf[ph]) for ph in d.phrases & qph if ph in idx.phrase_idf), key=lambda x: (-x[1], x[0])
        )
        ph_score = sum(w for _, w in matched)
        text_score = ph_score + BM25_SHARE * b
        if d.slug in look:  # the article's own excludes matched: the text belongs to a look-alike
            text_score *= EXCLUDE_FACTOR
        total = h + text_score
        if total <= 0:
            continue
        cands.append((total, h, hkeys, matched, d, parts))
    # evidence before words: an article that a hint of HINT_ALONE points at outranks one that only shares words
    # with the text, unless the words score more than EVIDENCE_LEAD times as much
    cands.sort(key=lambda c: (-c[0], c[4].slug))
    if cands and cands[0][1] < HINT_ALONE:
        hinted = next((c for c in cands if c[1] >= HINT_ALONE), None)
        # ... and a CUDA status the text names always outranks words: the status has one meaning
        own_code = hinted is not None and any(k in keys for k in _CODE_ARTICLES.get(hinted[4].slug, ()))
        if hinted is not None and (own_code or EVIDENCE_LEAD * hinted[0] >= cands[0][0]):
            cands.remove(hinted)
            cands.insert(0, hinted)
    vetoed = None if any(k in _UNVETO or k.startswith("soname:") for k in keys) else _not_environment(text, keys)
    likely = []
    allowed = [c for c in cands if _allowed(c[4].slug, keys, text)]
    if not vetoed and allowed:
        best = allowed[0][0]
        runner_up = allowed[1][0] if len(allowed) > 1 else 0.0
        for n, (total, h, hkeys, matched, d, parts) in enumerate(allowed[:NEAREST_N]):
            by_hint = h >= HINT_ALONE and total >= HINT_ALONE + HINT_MARGIN
            by_phrases = total >= LIKELY_MIN and (len(matched) >= LIKELY_PHRASES or (h > 0 and matched))
            # one phrase alone counts only on a line that reads as an error; several only in text that has one
            by_margin = (
                n == 0
                and bool(matched)
                and total >= SINGLE_MIN
                and total >= SINGLE_MARGIN * runner_up
                and _said_as_error(query_lines, {ph for ph, _ in matched})
            )
            by_phrases = (by_phrases and (h > 0 or _said_as_error(query_lines, {ph for ph, _ in matched}))) or by_margin
            if (by_hint or by_phrases) and total >= LIKELY_RATIO * best:
                line_no, excerpt = _evidence_line(query_lines, [ph for ph, _ in matched], {t for t, _ in parts[:8]})
                likely.append(
                    {
                        "slug": d.slug,
                        "score": round(total / (total + LIKELY_MIN), 4),
                        "line": line_no,
                        "excerpt": redact(excerpt[:EXCERPT_MAX]),
                        "tier": "likely",
                        "rank_score": round(total, 3),
                        "evidence": list(hkeys)[:4]
                        + [f'phrase "{ph}" ({w:.2f})' for ph, w in matched[:5]]
                        + [f"term {t} ({c * BM25_SHARE:.2f})" for t, c in parts[:4]],
                    }
                )
    if not vetoed and not likely and allowed:
        total, h, hkeys, matched, d, parts = allowed[0]
        runner_up = allowed[1][0] if len(allowed) > 1 else 0.0
        strength = gpu_evidence(keys, text)
        if (
            total >= CALIBRATED_MIN
            and total >= CALIBRATED_MARGIN * runner_up
            and len(strength) >= CALIBRATED_EVIDENCE
            and any(_ERRORISH.search(s) for _, s in query_lines)
        ):
            line_no, excerpt = _evidence_line(query_lines, [ph for ph, _ in matched], {t for t, _ in parts[:8]})
            likely.append(
                {
                    "slug": d.slug,
                    "score": round(total / (total + LIKELY_MIN), 4),
                    "line": line_no,
                    "excerpt": redact(excerpt[:EXCERPT_MAX]),
                    "tier": "likely",
                    "rank_score": round(total, 3),
                    "evidence": list(hkeys)[:4]
                    + [f'phrase "{ph}" ({w:.2f})' for ph, w in matched[:5]]
                    + [f"term {t} ({c * BM25_SHARE:.2f})" for t, c in parts[:4]]
                    + [
                        f"calibrated: leads the next topic {total / max(runner_up, 1e-9):.1f}x; GPU evidence "
                        + ", ".join(sorted(strength))
                    ],
                }
            )
    nearest = [
        {"slug": d.slug, "title": d.title, "rank_score": round(total, 3)}
        for total, h, hkeys, matched, d, parts in cands[:NEAREST_N]
    ]
    return {"likely": likely, "nearest": nearest, "evidence": ev, "vetoed": vetoed}


_ERRORISH = re.compile(
    r"error|fail|fatal|exception|abort|killed|cannot|can't|could not|unable|unsupported|not supported|invalid|"
    r"refus|denied|no such|not found|missing|mismatch|unknown|unrecognized|undefined|does not|doesn't|illegal|"
    r"too old|requires?\b|warn|not compatible|incompatible|larger than|greater than|exceed|insufficient|legacy|"
    r"too (?:small|large|big|many|few)|no longer|only supported|not available|out of|\bNVRM\b|\bNCCL WARN\b|"
    r"not (?:a )?recogni[sz]ed|not enabled|fall(?:ing)? back|"
    # what a title says of a failure in other words: the process crashed, hung or died
    r"crash|\bhangs?\b|\bhung\b|stuck|freez|segfault|core dump|\bdied\b",
    re.I,
)


_GPU_KEY_KINDS = (
    ("cuda-error", re.compile(r"cuda-error:")),
    ("nccl", re.compile(r"nccl-error:|component:nccl$|nccl-version:")),
    ("toolchain", re.compile(r"tool:(?:nvcc|ptxas|cicc|fatbinary)$|component:nvcc$")),
    ("arch", re.compile(r"arch:sm_")),
    ("library", re.compile(r"soname:|symbol:|libc:")),
    ("signal", re.compile(r"signal:")),
    ("driver", re.compile(r"component:driver$|driver-version:")),
    ("kernel-library", re.compile(r"component:(?:flashinfer|flash-attn|bitsandbytes|triton|xformers)$")),
    ("gpu", re.compile(r"gpu:")),
    ("family", re.compile(r"family:(?!oom:)")),
)
_GPU_WORDS = re.compile(
    r"\bCUDA error|cudaError|CUresult|\bNVRM\b|nvidia-smi|\bNVML\b|libcuda|cudnn|cublas|nvidia[_-](?:uvm|modeset|drm|"
    r"peermem|container)|GPU driver|NVIDIA driver",
    re.I,
)


def gpu_evidence(keys: List[str], text: str) -> set:
    """The kinds of GPU-stack evidence the text carries (CUDA error codes, NCCL, nvcc/ptxas, sm archs, missing
    libraries or symbols, signals, the driver, kernel libraries, a named GPU, an error family, driver words)."""
    kinds = {name for name, rx in _GPU_KEY_KINDS if any(rx.match(k) for k in keys)}
    if _GPU_WORDS.search(text):
        kinds.add("words")
    return kinds


def _said_as_error(query_lines: List[tuple], matched: set) -> bool:
    """Whether a line that holds one of the matched phrases reads as an error (not prose about the topic, not a
    healthy status line): it, or one of the two lines before it (a message's head: "UserWarning:"), says so."""
    for i, (_, s) in enumerate(query_lines):
        if matched & phrases(s) and any(_ERRORISH.search(x) for _, x in query_lines[max(0, i - 2) : i + 1]):
            return True
    return False


def _evidence_line(query_lines: List[tuple], matched: List[str], terms: set) -> tuple:
    """(line number, text) of the error line that holds most of the matched phrases, then terms."""
    best = (0.0, 1, "")
    for no, s in query_lines:
        ph = phrases(s)
        got = sum(1 for m in matched if m in ph) * 10 + len(terms.intersection(tokens(s)))
        if got > best[0]:
            best = (got, no, s)
    if best[0] == 0 and query_lines:
        return query_lines[-1]
    return best[1], best[2]


# ---------------------------------------------------------------- public API


def _default_articles():
    from bwdoctor.knowledge import load_all

    return load_all()


BACKED_MIN = 0.5  # an exact match the evidence backs moves above an unbacked one when it scores at least this
MENTION_MAX = 0.45  # an exact match scoring below this, on a line that only sets a value, is a mention
_ASSIGNMENT = re.compile(
    r"^\s{0,8}(?:[-*]\s{1,4})?(?:export\s{1,4}|ENV\s{1,4}|--)?[A-Za-z_][\w.-]{0,80}\s{0,4}[=:]\s{0,4}[^\s=]{0,200}\s{0,4}$"
)


# torch 2.8 and later ship no CUDA 11 build (CUDA 11.8 dropped: https://github.com/pytorch/pytorch/issues/147383)
OLDEST_CURRENT_CUDA_MAJOR = 12
_UNOPENED_CUDA_LIB = re.compile(
    r"lib(?:cudart|cublas|cublasLt|cusparse|cufft|curand|cusolver|nvrtc|nvJitLink)\.so\.(\d{1,2})(?:\.\d+)*:? "
    r"cannot open",
    re.I,
)
_CUDA_MAJOR_NAMED = re.compile(
    r"(?:\+|\b)cu(1[0-3])\d\b|[-_]cu(1[0-3])\b|\bcuda[ _-]?(?:version|toolkit|runtime|home)?[ :=]{0,3}v?(\d{1,2})\.\d|"
    r"\bcuda[ _-]?(1[0-3])\b|\bmismatch",
    re.I,
)


# an import of a compiled extension in the text ("---> 11 import selective_scan_cuda", "from vllm import cuda_utils",
# "from . import _C"): the library that cannot be opened is one that extension was linked against
_EXTENSION_IMPORT = re.compile(
    r"(?:^|[\s\"'`>])(?:from\s+[\w.]{1,80}\s+)?import\s+\w{0,60}(?:cuda|_C\b|_ext\b|_ops\b|kernels?\b)", re.M
)


def _other_cuda_major(text: str) -> bool:
    """Whether the text names a CUDA major other than that of the libraries it cannot open (or a mismatch), or
    an extension it imports asks for a library of CUDA 11 or older: no current torch wheel ships those, so that
    extension was built for another CUDA than the one installed. The library line alone says only that it is
    missing (a CUDA 11 library off the loader path is the commoner cause in real reports)."""
    opened = {int(m.group(1)) for m in _UNOPENED_CUDA_LIB.finditer(text)}
    if opened and max(opened) <= OLDEST_CURRENT_CUDA_MAJOR - 1 and _EXTENSION_IMPORT.search(text):
        return True
    for m in _CUDA_MAJOR_NAMED.finditer(text):
        if m.group(0).lower() == "mismatch":
            return True
        major = next(int(g) for g in m.groups() if g)
        if major not in opened:
            return True
    return False


def _finish(scanner: "_Scanner", articles: Dict[str, Any]) -> dict:
    exact = scanner.results()
    # a weighted-down signature that matched a line which only sets a value (an environment dump, a config
    # listing: "VLLM_ATTENTION_BACKEND=FLASH_ATTN") says the setting is there, not that anything failed
    exact = [m for m in exact if not (m["score"] < MENTION_MAX and _ASSIGNMENT.match(m["excerpt"]))]
    # the generic allocator message is one signature of the start-up OOM article; where the text places the OOM
    # in a run (a request, a prefill, a script that is not a serving engine), the run's article answers instead
    slugs = {m["slug"] for m in exact}
    said = "\n".join(s for _, s in scanner.query.lines()) if slugs & {"startup-oom", "cuda-major-mismatch"} else ""
    if "startup-oom" in slugs and "runtime-oom" not in slugs:
        # ... and where it places the OOM in loading the weights, the article of a model that does not fit
        if oom_phase(said) == "runtime" or _oom_loading_weights(said):
            exact = [m for m in exact if m["slug"] != "startup-oom"]
    if len(exact) > 1 and exact[0]["slug"] == "cuda-major-mismatch" and "missing-library" in slugs:
        # a CUDA library of one major that cannot be opened, with no other CUDA major named anywhere (a torch
        # +cuXYZ, a "CUDA 11.8", an nvidia-*-cu12 wheel): that the library is missing is all the text says
        if not _other_cuda_major(said):
            lib = next(m for m in exact if m["slug"] == "missing-library")
            exact.remove(lib)
            exact.insert(0, lib)
    tier2 = rank_evidence(
        scanner.query.lines(), articles, exclude=[m["slug"] for m in exact], lookalike=scanner.excluded
    )
    likely = tier2["likely"]
    if exact and all(m["score"] <= WEAK_EXACT for m in exact) and (tier2["vetoed"] or likely):
        # only hint-weight signatures (a flag on a command line...) matched: they do not outrank evidence,
        # and they say nothing about an error that is the model's, the request's or the code's
        exact = []
        if tier2["vetoed"]:
            likely = []
    if len(exact) > 1:
        # a wrapper's message ("Could not load any common_ops library") matched first, and the loader error it wraps
        # (an undefined symbol) matched too: the signature that the symbol's evidence backs ranks first
        backed = hint_scores(evidence_keys(tier2["evidence"]), [m["slug"] for m in exact])

        def by_symbol(slug: str) -> float:
            w, used = backed.get(slug, (0.0, []))
            return w if any(u.startswith("symbol") for u in used) else 0.0

        if not backed.get(exact[0]["slug"]):
            up = next((m for m in exact[1:] if by_symbol(m["slug"]) >= HINT_ALONE and m["score"] >= BACKED_MIN), None)
            if up is not None:
                exact.remove(up)
                exact.insert(0, up)
    if exact:
        # a likely article after exact ones only when it has evidence of its own (a hint), never on a hunch
        likely = [m for m in likely if any(" (+" in e for e in m["evidence"])]
    said_error = None
    if not exact and not likely and not tier2["vetoed"]:
        said_error = any(_ERRORISH.search(s) for _, s in scanner.query.lines())
        learned = _learned(scanner.query.lines(), tier2["evidence"], scanner.excluded) if said_error else None
        if learned is not None:
            likely = [learned]
    matches = exact + likely
    for m in likely:
        m["details"] = extract_details("\n".join(s for _, s in scanner.query.lines()[-200:]), focus=m["excerpt"])
    out: Dict[str, Any] = {"matches": matches, "evidence": _redact_details(tier2["evidence"])}
    if not matches:
        out["nearest"] = tier2["nearest"]
        if tier2["vetoed"]:
            out["not_environment"] = redact(tier2["vetoed"])
        else:
            hint = paste_hint(scanner.query.lines(), bool(said_error))
            if hint:
                out["paste_hint"] = hint
    return out


_TRACEBACK_HEAD = re.compile(r"^Traceback \(most recent call last\):?\s*$")
_FRAME = re.compile(r"^File \"[^\"\n]{1,500}\", line \d+")
# the line that ends a Python traceback: the exception's name (dotted, maybe with a message), or a bare class name
# alone ("StopIteration"; a code line of a frame has a call, an operator or a lower-case name)
_EXCEPTION_LINE = re.compile(
    r"^[A-Za-z_][\w.]{0,120}(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault)\b|^[A-Za-z_][\w.]{0,120}:\s|"
    r"^(?:[a-z_]\w{0,40}\.){0,6}[A-Z]\w{2,80}$"
)


def paste_hint(query_lines: List[tuple], said_error: bool) -> Optional[str]:
    """What to paste instead, when the text cannot name a failure because it holds none: a Python traceback cut
    before its last line (the one that names the error), or text with no line that reads as an error (said_error:
    whether one does, as _ERRORISH reads it)."""
    lines = [s for _, s in query_lines]
    last_tb = max((i for i, s in enumerate(lines) if _TRACEBACK_HEAD.match(s)), default=-1)
    if last_tb >= 0:
        after = lines[last_tb + 1 :]
        last_frame = max((i for i, s in enumerate(after) if _FRAME.match(s)), default=-1)
        if last_frame >= 0 and not any(_EXCEPTION_LINE.match(s) for s in after[last_frame + 1 :]):
            return (
                "the text ends inside a Python traceback, before its last line (the one that names the error, "
                "e.g. 'RuntimeError: ...'): paste the traceback down to that line"
            )
        return None  # a whole traceback is an error report, whatever its words
    if lines and not said_error:
        return (
            "no line of the text reads as an error: paste the lines where the failure is reported (the last "
            "lines of a traceback, the first ERROR line of the log, or the message the command printed)"
        )
    return None


def _learned(query_lines: List[tuple], evidence: dict, lookalike: AbstractSet[str]) -> Optional[dict]:
    """The corpus model's article (explain_model), where the rule tiers are silent and a line reads as an error
    (the caller's test: words of a topic are not a failure): "likely", with the model's probability as the score
    and the features that drove it as the evidence. None below ANSWER_MIN, for the no-article class, and where the
    rules say the article cannot be it: its own excludes matched (a look-alike), it needs evidence the text lacks
    or places in another phase, or the text names a symbol that points at no article. `evidence` is what
    extract_evidence read from these lines (tier 2 already has it)."""
    from bwdoctor import explain_model

    text = "\n".join(s for _, s in query_lines)
    keys = evidence_keys(evidence)
    got = explain_model.predict(text, keys=keys)
    if got is None or got["slug"] == explain_model.NONE_CLASS or got["p"] < explain_model.ANSWER_MIN:
        return None
    if got["slug"] in lookalike or not _allowed(got["slug"], keys, text):
        return None
    if any(k.startswith("symbol:") for k in keys) and not hint_scores(keys, [got["slug"]]):
        # a symbol the evidence rules know nothing of (boost's, a project's own): the words around it
        # ("undefined symbol") are every loader error's, not the article's
        return None
    words = set()
    for f, _ in got["drivers"]:
        if not f.startswith("k:"):
            words.update(f.split())
    line_no, excerpt = _evidence_line(query_lines, [], words)
    return {
        "slug": got["slug"],
        "score": round(got["p"], 4),
        "line": line_no,
        "excerpt": redact(excerpt[:EXCERPT_MAX]),
        "tier": "likely",
        "rank_score": round(got["p"], 4),
        "evidence": [f"corpus model: p={got['p']:.2f}"] + [f"feature {f} ({w:+.2f})" for f, w in got["drivers"][:5]],
    }


def _scan_text(text: str, arts: Dict[str, Any]) -> "_Scanner":
    scanner = _Scanner(_rules(arts))
    if isinstance(text, str) and text.strip():
        scanner.feed(text.replace("\r\n", "\n").replace("\r", "\n"), 1)
    return scanner


def error_lines(text: str, articles: Optional[Dict[str, Any]] = None) -> str:
    """The error lines explain ranks for pasted text (what the corpus model is fitted on and reads)."""
    scanner = _scan_text(text, articles if articles is not None else _default_articles())
    return "\n".join(s for _, s in scanner.query.lines())


def analyse_text(text: str, articles: Optional[Dict[str, Any]] = None) -> dict:
    """{"matches": [...], "evidence": {...}, "nearest": [...] (only when nothing matched)} for pasted text.

    Matches are exact signature hits first ("tier": "exact"), then evidence-weighted candidates ("likely");
    with neither, "nearest" lists the closest topics and the caller says "no match"."""
    arts = articles if articles is not None else _default_articles()
    return _finish(_scan_text(text, arts), arts)


def match_text(text: str, articles: Optional[Dict[str, Any]] = None) -> List[dict]:
    """Matches of pasted error text against the KB, best first (empty list when nothing matches)."""
    if not isinstance(text, str) or not text.strip():
        return []
    return analyse_text(text, articles)["matches"]


def _chunks_from_file(path: Path) -> Iterable[tuple]:
    line = 1
    rest = ""
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        enc = "utf-8"
        for bom, name in _BOMS:
            if head.startswith(bom):
                enc = {"utf-8": "utf-8-sig", "utf-16-le": "utf-16", "utf-16-be": "utf-16"}.get(name, "utf-32")
                break
        else:
            enc = _utf16_without_bom(fh.read(_NUL_SAMPLE)) or "utf-8"
            fh.seek(0)
        reader = io.TextIOWrapper(fh, encoding=enc, errors="replace", newline=None)
        while True:
            block = reader.read(CHUNK_BYTES)
            if not block:
                break
            if "\x00" in block:
                block = block.replace("\x00", "")
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


def analyse_log(
    path_or_lines: Union[str, os.PathLike, Iterable[str]], articles: Optional[Dict[str, Any]] = None
) -> dict:
    """analyse_text for a log file (or an iterable of lines): streamed in chunks, bounded memory."""
    arts = articles if articles is not None else _default_articles()
    scanner = _Scanner(_rules(arts))
    if isinstance(path_or_lines, (str, os.PathLike)):
        chunks = _chunks_from_file(Path(path_or_lines))
    else:
        chunks = _chunks_from_lines(path_or_lines)
    for chunk, first_line in chunks:
        scanner.feed(chunk, first_line)
    return _finish(scanner, arts)


def match_log(
    path_or_lines: Union[str, os.PathLike, Iterable[str]], articles: Optional[Dict[str, Any]] = None
) -> List[dict]:
    """Matches found anywhere in a log file (or an iterable of lines), best first; streams the input."""
    return analyse_log(path_or_lines, articles)["matches"]
