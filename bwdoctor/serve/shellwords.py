"""Shell-style words with positions: quotes, backslash continuations, $VAR / ${VAR:-default}, arrays.

Not a shell: enough of POSIX sh / bash word rules to recover the argv a serve script or a systemd
ExecStart= passes to vLLM, with the file:line:column of every word. Control flow is read straight
through (both branches of an `if` set their variables, the later one wins), which is what a person
reading the script top to bottom sees too.
"""

from __future__ import annotations

import bisect
import re
from typing import Optional

from bwdoctor.serve.config import Token

from .. import lazyre
from ..records import dataclass, field

NAME_RE = lazyre.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ASSIGN_RE = lazyre.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
PLAIN_RE = lazyre.compile(r"[^\s'\"\\$;&|<>()#`]+")
REDIR_RE = lazyre.compile(r"[0-9]*(>>|>&|<<<|<<-|<<|<&|>\||>|<)([0-9]+-?|-)?")
SEPARATORS = (";;", "&&", "||", ";", "&", "|", "(", ")")


class Positions:
    """Offset → (line, column), both 1-based, for one text."""

    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> tuple:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1


@dataclass
class Var:
    """A shell variable: scalar value or array elements, where it was set, and whether it is exported."""

    value: str
    origin: Optional[tuple] = None
    items: Optional[list] = None  # Tokens of an array
    exported: bool = False


@dataclass
class Word:
    """One lexed word: Token(s) it expands to, plus what the interpreter needs to know."""

    tokens: list
    raw: str
    assign: Optional[tuple] = None  # (name, append) when the word is NAME=value / NAME+=value
    array: bool = False
    redirect: bool = False
    value_at: Optional[tuple] = None  # (path, line, column) where the value of NAME=value starts
    at: tuple = (1, 1)  # (line, column) where the word starts


@dataclass
class Lexer:
    """Lexes one text command by command, expanding variables from `vars` as it goes."""

    text: str
    path: str
    vars: dict = field(default_factory=dict)
    systemd: bool = False
    pos: int = 0

    def __post_init__(self):
        self.positions = Positions(self.text)
        self.heredocs: list = []

    # -- expansion -------------------------------------------------------------------------
    def lookup(self, name: str) -> Optional[Var]:
        return self.vars.get(name)

    def _expand_braced(self, i: int, quoted: bool):
        """Expand ${...} starting at text[i] == '$'; give (pieces, end) with pieces [(text, origin, items)]."""
        depth, j = 0, i + 1
        n = len(self.text)
        while j < n:
            c = self.text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            elif c == "\\":
                j += 1
            j += 1
        if j >= n:  # unterminated: keep the rest literally
            return [(self.text[i:], None, None)], n
        inner = self.text[i + 2 : j]
        end = j + 1
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])(\[[@*]\])?(:?[-=+?])?", inner)
        if not m:
            return [(self.text[i:end], None, None)], end
        name, subscript, op = m.group(1), m.group(2), m.group(3)
        var = self.lookup(name)
        if subscript and var is not None and var.items is not None and not op:
            return [(None, None, var.items)], end
        if var is not None and var.items is not None:
            var = Var(var.items[0].text if var.items else "", var.items[0].origin if var.items else None)
        word_start = i + 2 + m.end()
        default_text = inner[m.end() :]  # == text[word_start:j]
        empty = var is None or (op and op.startswith(":") and var.value == "")
        if op and op.lstrip(":") in ("-", "=") and empty:
            value, origin = self.expand_string(word_start, j)  # the default is text[word_start:j]
            if op.lstrip(":") == "=":
                self.vars[name] = Var(value, origin)
            return [(value, origin, None)], end
        if op and op.lstrip(":") == "+":
            return [("" if empty else default_text, None, None)], end
        if var is None:
            return [(self.text[i:end], None, None)], end  # unknown: keep ${NAME} visible
        return [(var.value, var.origin, None)], end

    def expand_string(self, start: int, end: int) -> tuple:
        """Expand text[start:end] as a double-quoted-like string; give (value, origin of a sole variable)."""
        out, origins, pieces = [], [], 0
        i = start
        lit_start = start
        while i < end:
            c = self.text[i]
            if c == "$" and i + 1 < end:
                exp, i2 = self._dollar(i, True)
                for text, origin, items in exp:
                    out.append(text if text is not None else " ".join(t.text for t in items))
                    origins.append(origin)
                    pieces += 1
                i = i2
            elif c in "\"'":
                i += 1
            else:
                j = i
                while j < end and self.text[j] not in "$\"'":
                    j += 1
                out.append(self.text[i:j])
                pieces += 1
                i = j
        value = "".join(out)
        origin = origins[0] if len(origins) == 1 and pieces == 1 else None
        if origin is None and lit_start < end:
            origin = (self.path, *self.positions.at(lit_start))
        return value, origin

    def _dollar(self, i: int, quoted: bool):
        """Expand the $-construct at text[i]; give (pieces, end)."""
        t = self.text
        nxt = t[i + 1] if i + 1 < len(t) else ""
        if nxt == "{":
            return self._expand_braced(i, quoted)
        if nxt == "(":
            depth, j = 0, i + 1
            while j < len(t):
                if t[j] == "(":
                    depth += 1
                elif t[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            return [(t[i : j + 1], None, None)], min(j + 1, len(t))
        if nxt == "$" and self.systemd:
            return [("$", None, None)], i + 2
        m = NAME_RE.match(t, i + 1)
        if m:
            var = self.lookup(m.group(0))
            if var is None:
                return [(t[i : m.end()], None, None)], m.end()
            if var.items is not None:
                return [(var.items[0].text if var.items else "", None, None)], m.end()
            return [(var.value, var.origin, None)], m.end()
        if nxt and (nxt.isdigit() or nxt in "@*#?!-"):
            return [(t[i : i + 2], None, None)], i + 2
        return [("$", None, None)], i + 1

    # -- lexing ------------------------------------------------------------------------------
    def _skip_blank(self) -> Optional[str]:
        """Skip blanks, continuations and comments; give a separator found ('\\n', ';', ...) or None."""
        t, n = self.text, len(self.text)
        while self.pos < n:
            c = t[self.pos]
            if c in " \t\r":
                self.pos += 1
            elif c == "\\" and t.startswith("\n", self.pos + 1):
                self.pos += 2
                if self.systemd:  # systemd drops comment lines inside a continued ExecStart=
                    while True:
                        m = re.match(r"[ \t]*[#;][^\n]*\n", t[self.pos : self.pos + 65536])
                        if not m:
                            break
                        self.pos += m.end()
            elif c == "\n":
                self.pos += 1
                if self.heredocs:
                    self._skip_heredocs()
                return "\n"
            elif c == "#" and not self.systemd:
                nl = t.find("\n", self.pos)
                self.pos = n if nl < 0 else nl
            elif not self.systemd and c in ";&|()":
                for sep in SEPARATORS:
                    if t.startswith(sep, self.pos):
                        self.pos += len(sep)
                        return sep
            else:
                return None
        return "\n"

    def _skip_heredocs(self):
        t = self.text
        for delim, strip in self.heredocs:
            while self.pos < len(t):
                nl = t.find("\n", self.pos)
                line = t[self.pos : nl if nl >= 0 else len(t)]
                self.pos = len(t) if nl < 0 else nl + 1
                if (line.lstrip("\t") if strip else line) == delim:
                    break
        self.heredocs = []

    def next_command(self) -> Optional[list]:
        """Give the Words of the next simple command ([] for a blank line), or None at the end."""
        if self.pos >= len(self.text):
            return None
        words: list = []
        while True:
            sep = self._skip_blank()
            if sep is not None:
                return words
            w = self._word()
            if w.redirect:
                if w.raw[-1:] in ">&<-" and self._skip_blank() is None:
                    target = self._word()
                    if w.raw in ("<<", "<<-"):
                        self.heredocs.append((target.raw.strip("'\""), w.raw == "<<-"))
                continue
            if (
                w.assign
                and not words
                or (w.assign and words and words[0].raw in ("export", "local", "declare", "readonly", "typeset", "env"))
            ):
                if self.text.startswith("(", self.pos) and not self.systemd:
                    w.array = True
                    self.pos += 1
                    w.tokens = self._array_items()
            words.append(w)

    def _array_items(self) -> list:
        items = []
        while self.pos < len(self.text):
            while True:
                sep = self._skip_blank()
                if sep is None or sep == ")":
                    break
            if self.pos >= len(self.text) or sep == ")":
                break
            if self.text.startswith(")", self.pos):
                self.pos += 1
                break
            items.extend(self._word().tokens)
        return items

    def _word(self) -> Word:
        """Lex one word at self.pos (which is not blank)."""
        t, n = self.text, len(self.text)
        start = self.pos
        if not self.systemd:
            m = REDIR_RE.match(t, start)
            if m:
                self.pos = m.end()
                return Word([], m.group(1), redirect=True)
        assign = None
        m = ASSIGN_RE.match(t, start)
        if m:
            assign = (m.group(1), bool(m.group(2)))
            self.pos = m.end()
        value_start = self.pos
        parts = []  # (text, origin, items, splittable)
        while self.pos < n:
            c = t[self.pos]
            if c in " \t\r\n" or (not self.systemd and c in ";&|()<>"):
                break
            if c == "\\":
                if t.startswith("\n", self.pos + 1):
                    if self.pos == value_start and assign is None:
                        break
                    self.pos += 2
                    continue
                parts.append((t[self.pos + 1 : self.pos + 2], None, None, False))
                self.pos += 2
            elif c == "'":
                end = t.find("'", self.pos + 1)
                end = n if end < 0 else end
                parts.append((t[self.pos + 1 : end], None, None, False))
                self.pos = end + 1
            elif c == '"':
                self.pos += 1
                while self.pos < n and t[self.pos] != '"':
                    ch = t[self.pos]
                    if ch == "\\" and self.pos + 1 < n:
                        nx = t[self.pos + 1]
                        if nx == "\n":
                            self.pos += 2
                            continue
                        parts.append((nx if nx in '$`"\\' else "\\" + nx, None, None, False))
                        self.pos += 2
                    elif ch == "$":
                        exp, self.pos = self._dollar(self.pos, True)
                        parts.extend((a, b, c2, False) for a, b, c2 in exp)
                    else:
                        j = self.pos
                        while j < n and t[j] not in '"\\$':
                            j += 1
                        parts.append((t[self.pos : j], None, None, False))
                        self.pos = j
                self.pos += 1
            elif c == "$":
                exp, self.pos = self._dollar(self.pos, False)
                parts.extend((a, b, c2, assign is None) for a, b, c2 in exp)
            elif c == "`":
                end = t.find("`", self.pos + 1)
                end = n if end < 0 else end
                parts.append((t[self.pos : end + 1], None, None, False))
                self.pos = end + 1
            else:
                m2 = PLAIN_RE.match(t, self.pos)
                j = m2.end() if m2 else self.pos + 1
                parts.append((t[self.pos : j], None, None, False))
                self.pos = j
        raw = t[start : self.pos]
        line, col = self.positions.at(start)
        value_at = (self.path, *self.positions.at(value_start)) if assign else None
        return Word(self._join(parts, line, col), raw, assign, value_at=value_at, at=(line, col))

    def _join(self, parts: list, line: int, col: int) -> list:
        """Tokens of one word: literal and expanded parts joined, unquoted expansions word-split."""
        if len(parts) == 1 and parts[0][2] is not None:
            return list(parts[0][2])  # "${ARR[@]}": the array's own tokens and locations
        texts, origin, out, splitting = [], None, [], False
        sole = [p for p in parts if p[0]]
        if len(sole) == 1 and sole[0][1]:
            origin = sole[0][1]
        for text, _org, items, split in parts:
            if items is not None:
                text = " ".join(x.text for x in items)
                split = True
            if split and text and any(ch.isspace() for ch in text):
                pieces = text.split()
                if not text[0].isspace() and pieces:
                    texts.append(pieces.pop(0))
                    if pieces or text[-1].isspace():
                        out.append("".join(texts))
                        texts = []
                elif texts:
                    out.append("".join(texts))
                    texts = []
                for p in pieces[:-1]:
                    out.append(p)
                if pieces:
                    texts = [pieces[-1]] if not text[-1].isspace() else []
                    if text[-1].isspace():
                        out.append(pieces[-1])
                splitting = True
            else:
                texts.append(text or "")
        if texts or not out and not splitting:
            out.append("".join(texts))
        return [Token(s, self.path, line, col, origin) for s in out]


def assignment_value(word: Word) -> tuple:
    """(value, origin) of a NAME=value word: origin is the sole variable it copies, else the value itself."""
    if not word.tokens:
        return "", word.value_at
    tok = word.tokens[0]
    return " ".join(t.text for t in word.tokens), tok.origin or word.value_at
