"""Filters and sort positions evaluated in Python, for the TableStore backend.

TableStore's own filters only see top-level columns, while documents are one JSON column,
so the TableStore store reads an owner's partition and decides here. The semantics are
those of :mod:`minibase.data.filters` and of the SQL compiler (:mod:`minibase.data.sql`):
type ranks missing/null 0 < boolean 1 < number 2 < string 3 < array 4 < object 5; ``eq``
is type-aware and ``eq None`` matches null or missing; ranges compare within one rank;
``ne`` is ``not eq``. A sort position is what the SQL stores return, so cursors look the
same on every backend: ``(rank, num, txt)`` per order key, then ``uid``, ``id``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ..data.filters import (
    And,
    Cmp,
    Const,
    Contains,
    Exists,
    Filter,
    In,
    Not,
    Or,
    OrderKey,
    Path,
    Prefix,
    Scalar,
    Search,
    ascii_lower,
)
from ..errors import InvalidArgument
from .writes import deadline_exceeded

__all__ = ["check_position", "matches", "partition", "position", "position_key"]

_MISSING: Any = object()


def _get(doc: dict[str, Any], path: Path) -> Any:
    node: Any = doc
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return _MISSING
        node = node[name]
    return node


def _rank(value: Any) -> int:
    if value is _MISSING or value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, list):
        return 4
    return 5


def _same(value: Any, scalar: Scalar) -> bool:
    """Type-aware equality of a stored value and a filter scalar (null equals missing)."""
    r = _rank(value)
    if r != _rank(scalar) or r > 3:
        return False
    return r == 0 or bool(value == scalar)


def _ordered(value: Any, scalar: Scalar, op: str) -> bool:
    r = _rank(value)
    if r != _rank(scalar):
        return False
    if r == 0:
        return op in ("gte", "lte")
    if op == "gt":
        return bool(value > scalar)
    if op == "gte":
        return bool(value >= scalar)
    if op == "lt":
        return bool(value < scalar)
    return bool(value <= scalar)


def matches(doc: dict[str, Any], f: Filter) -> bool:
    """Whether the stored document ``doc`` (system fields included) matches ``f``."""
    if isinstance(f, Const):
        return f.value
    if isinstance(f, And):
        return all(matches(doc, g) for g in f.items)
    if isinstance(f, Or):
        return any(matches(doc, g) for g in f.items)
    if isinstance(f, Not):
        return not matches(doc, f.item)
    value = _get(doc, f.path)
    if isinstance(f, Cmp):
        if f.op == "eq":
            return _same(value, f.value)
        if f.op == "ne":
            return not _same(value, f.value)
        return _ordered(value, f.value, f.op)
    if isinstance(f, In):
        return any(_same(value, v) for v in f.values)
    if isinstance(f, Exists):
        return (value is not _MISSING) == f.present
    if isinstance(f, Prefix):
        return isinstance(value, str) and value.startswith(f.prefix)
    if isinstance(f, Search):  # no index here: the owner's partition is scanned anyway
        return isinstance(value, str) and ascii_lower(f.text) in ascii_lower(value)
    if isinstance(f, Contains):
        # ``in`` runs at C speed and type-aware equality implies ``==``: no ``==``, no match.
        return isinstance(value, list) and f.value in value and any(_same(e, f.value) for e in value)
    raise TypeError(f"not a filter: {f!r}")


def position(doc: dict[str, Any], order: Sequence[OrderKey]) -> list[Any]:
    """The document's sort position: (rank, num, txt) per order key, then uid, id."""
    out: list[Any] = []
    for k in order:
        v = _get(doc, k.path)
        r = _rank(v)
        if r == 1:
            out += (1, int(v), "")
        elif r == 2:
            out += (2, v, "")
        elif r == 3:
            out += (3, 0, v)
        else:
            out += (r, 0, "")
    out += (doc["uid"], doc["id"])
    return out


@functools.total_ordering
class _Desc:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and bool(self.v == other.v)

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.v < self.v)

    def __hash__(self) -> int:  # pragma: no cover - never hashed, here for total_ordering
        return hash(self.v)


def position_key(order: Sequence[OrderKey]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A sort key over positions: each key's three values in its direction; ties (uid, id)
    in the direction of the last key (ascending without one), as the SQL stores order."""
    dirs: list[bool] = []
    for k in order:
        dirs += (k.descending,) * 3
    tie = order[-1].descending if order else False
    dirs += (tie, tie)

    def key(pos: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(_Desc(v) if d else v for v, d in zip(pos, dirs, strict=True))

    return key


def check_position(after: Sequence[Any], order: Sequence[OrderKey]) -> None:
    """A cursor position is client input (decoded from an opaque cursor): check its shape."""
    width = 3 * len(order) + 2
    if not isinstance(after, list | tuple) or len(after) != width:
        raise _bad_cursor()
    for i, v in enumerate(after):
        slot = i % 3 if i < width - 2 else 2
        if slot == 2:
            # As the SQL compiler's check: owner and id never hold control characters, and
            # no stored string holds U+0000.
            ok = type(v) is str and "\x00" not in v and (i < width - 2 or v.isprintable())
        elif slot == 0:
            ok = type(v) is int and 0 <= v <= 5
        else:
            ok = type(v) is int or (type(v) is float and math.isfinite(v))
        if not ok:
            raise _bad_cursor()


def _bad_cursor() -> InvalidArgument:
    return InvalidArgument("cursor is not one this server returned")


def select(
    bodies: Sequence[str],
    where: Filter,
    order: Sequence[OrderKey],
    want: int | None,
    end: float,
    budget: float,
) -> list[tuple[list[Any], bytes]]:
    """(position, body) of each of ``bodies`` that matches ``where``, up to ``want``;
    DeadlineExceeded once ``time.monotonic()`` passes ``end`` (checked per document: one
    document's evaluation is bounded by the where's cost limits, data/query.py)."""
    out: list[tuple[list[Any], bytes]] = []
    for body in bodies:
        if time.monotonic() > end:
            raise deadline_exceeded(budget)
        doc = orjson.loads(body)
        if matches(doc, where):
            out.append((position(doc, order), body.encode()))
            if want is not None and len(out) >= want:
                break
    return out


# ------------------------------------------------------------------ owner analysis


def partition(collection: str, where: Filter) -> str | None:
    """The one owner ``where`` restricts to (TableStore reads one owner's partition); None
    when nothing can match; InvalidArgument when it is not restricted to one owner."""
    owner = _owner(where)
    if owner is _ANY:
        raise InvalidArgument(
            "TableStore cannot serve this query efficiently: it is not restricted to one owner"
            f" and would scan every user's documents in {collection!r} (TableStore has no"
            " secondary index for it). Query your own documents (read rule 'owner', or"
            " where uid == your uid), or use the SQLite or PostgreSQL backend."
        )
    return None if owner is _NONE else str(owner)


_ANY: Any = object()  # not restricted to one owner
_NONE: Any = object()  # matches nothing


def _owner(f: Filter) -> Any:
    """The single uid every document matching ``f`` has, ``_ANY`` if unknown, ``_NONE``
    if nothing can match."""
    if isinstance(f, Const):
        return _ANY if f.value else _NONE
    if isinstance(f, Cmp) and f.path == ("uid",) and f.op == "eq":
        return f.value if isinstance(f.value, str) else _NONE
    if isinstance(f, In) and f.path == ("uid",):
        strs = {v for v in f.values if isinstance(v, str)}
        if not strs:
            return _NONE
        return next(iter(strs)) if len(strs) == 1 else _ANY
    if isinstance(f, And):
        found: Any = _ANY
        for item in f.items:
            o = _owner(item)
            if o is _NONE:
                return _NONE
            if o is _ANY:
                continue
            if found is not _ANY and found != o:
                return _NONE  # two different owners at once
            found = o
        return found
    if isinstance(f, Or):
        owners = [_owner(item) for item in f.items]
        live = [o for o in owners if o is not _NONE]
        if not live:
            return _NONE
        if any(o is _ANY for o in live) or len(set(live)) != 1:
            return _ANY
        return live[0]
    return _ANY
