"""The rule language's tokens (see :mod:`minibase.data.rules` for the grammar): a lazy
tokenizer that reports the first problem in the text with its position."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from typing import Final, Literal, TypeAlias

from ..util.record import record
from .filters import Scalar

__all__ = ["HINTS", "MAX_SEGMENT_LENGTH", "RuleError", "Tok", "describe", "tokenize"]

MAX_SEGMENT_LENGTH: Final = 64
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


class RuleError(ValueError):
    """A malformed rule; ``str(e)`` is ``"at <position>: <reason>"``."""

    def __init__(self, position: int, reason: str) -> None:
        self.position = position
        self.reason = reason
        super().__init__(f"at {position}: {reason}")

    def __reduce__(self) -> tuple[type[RuleError], tuple[int, str]]:
        return (RuleError, (self.position, self.reason))


_Kind: TypeAlias = Literal["op", "name", "str", "num", "end"]
_DIGITS = frozenset("0123456789")
_IDENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_IDENT = _IDENT_START | _DIGITS
_SPACE = frozenset(" \t\r\n")
_OPS2 = frozenset({"==", "!=", "<=", ">=", "&&", "||"})
_OPS1 = frozenset("<>!()[],")
HINTS = {
    "=": "use '==' to compare",
    "&": "use '&&'",
    "|": "use '||'",
    "and": "use '&&'",
    "or": "use '||'",
    "not": "use '!'",
}


@record
class Tok:
    """A token of a rule expression, with its position for messages."""

    kind: _Kind
    pos: int
    end: int
    value: Scalar = None  # the literal's value ("str", "num"), the operator ("op")
    segs: tuple[str, ...] = ()  # "name": the dotted segments
    seg_pos: tuple[int, ...] = ()


def tokenize(s: str) -> Iterator[Tok]:
    """Lazily, so the parser reports whichever problem comes first in the text."""
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in _SPACE:
            i += 1
            continue
        if c == '"' or c == "'":
            tok = _string(s, i)
        elif c in _DIGITS or (c == "-" and i + 1 < n and s[i + 1] in _DIGITS):
            tok = _number(s, i)
        elif c in _IDENT_START:
            tok = _name(s, i)
        elif s[i : i + 2] in _OPS2:
            tok = Tok("op", i, i + 2, s[i : i + 2])
        elif c in _OPS1:
            tok = Tok("op", i, i + 1, c)
        elif c in HINTS:
            raise RuleError(i, f"unexpected '{c}' ({HINTS[c]})")
        else:
            raise RuleError(i, f"unexpected character {c!r}")
        yield tok
        i = tok.end
    while True:
        yield Tok("end", n, n)


def _string(s: str, start: int) -> Tok:
    quote = s[start]
    buf: list[str] = []
    i, n = start + 1, len(s)
    while i < n:
        c = s[i]
        if c == quote:
            return Tok("str", start, i + 1, "".join(buf))
        if c == "\\":
            if i + 1 < n and s[i + 1] in "\"'\\":
                buf.append(s[i + 1])
                i += 2
                continue
            raise RuleError(i, "unsupported escape in string (only \\\", \\' and \\\\ are allowed)")
        cat = unicodedata.category(c)
        if cat == "Cc":
            raise RuleError(i, "control character in string")
        if cat == "Cs":  # a lone surrogate is not text: no database can bind it
            raise RuleError(i, "lone surrogate in string (not valid Unicode)")
        buf.append(c)
        i += 1
    raise RuleError(start, "unterminated string")


def _number(s: str, start: int) -> Tok:
    i, n = start + 1, len(s)
    while i < n and s[i] in _DIGITS:
        i += 1
    value: int | float
    if i < n and s[i] == ".":
        i += 1
        if i >= n or s[i] not in _DIGITS:
            raise RuleError(i, "expected digits after the decimal point")
        while i < n and s[i] in _DIGITS:
            i += 1
        value = float(s[start:i])
        if not math.isfinite(value):
            raise RuleError(start, "number is too large")
    else:
        value = int(s[start:i])
        if not _INT_MIN <= value <= _INT_MAX:
            raise RuleError(start, "integer does not fit in 64 bits")
    if i < n and s[i] in _IDENT:
        raise RuleError(i, f"unexpected {s[i]!r} after a number")
    return Tok("num", start, i, value)


def _name(s: str, start: int) -> Tok:
    segs: list[str] = []
    seg_pos: list[int] = []
    i, n = start, len(s)
    while True:
        j = i
        while i < n and s[i] in _IDENT:
            i += 1
        if i - j > MAX_SEGMENT_LENGTH:
            raise RuleError(j, f"name longer than {MAX_SEGMENT_LENGTH} characters")
        segs.append(s[j:i])
        seg_pos.append(j)
        if i >= n or s[i] != ".":
            return Tok("name", start, i, None, tuple(segs), tuple(seg_pos))
        i += 1
        if i >= n or s[i] not in _IDENT_START:
            raise RuleError(i, "expected a field name ([A-Za-z_][A-Za-z0-9_]*) after '.'")


def describe(tok: Tok, text: str) -> str:
    if tok.kind == "end":
        return "end of rule"
    src = text[tok.pos : tok.end]
    return f"'{src}'" if len(src) <= 24 else f"'{src[:21]}...'"
