"""A plain-Python reading of the filter semantics (minibase/data/filters.py), written
independently of the SQL compiler so backends can be checked against it.

- Paths walk through objects only; anything else on the way means missing.
- Type ranks: missing/null 0, boolean 1, number 2, string 3, array 4, object 5.
- ``eq`` is type-aware; ``eq None`` matches null or missing; ``ne`` is ``not eq``.
- Ranges compare within one rank only (false < true, numbers by value, strings by code
  point); within rank 0 everything is equal, so ``gte``/``lte None`` hold there.
- ``Exists`` alone tells null from missing; ``Contains`` needs an array with an element
  equal (type-aware) to the value; ``Prefix`` needs a string.
- Sort: per key (rank, number, string), arrays and objects tie; then uid, id ascending.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from minibase.data.filters import (
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
)

__all__ = ["MISSING", "get", "matches", "rank", "sort_key", "sorted_docs"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def get(doc: dict[str, Any], path: Path) -> Any:
    node: Any = doc
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return MISSING
        node = node[name]
    return node


def rank(value: Any) -> int:
    if value is MISSING or value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, list):
        return 4
    if isinstance(value, dict):
        return 5
    raise TypeError(f"not a JSON value: {value!r}")


def _same(a: Any, b: Scalar) -> bool:
    """Type-aware equality of a stored value and a filter scalar (null only equals null)."""
    ra, rb = rank(a), rank(b)
    if ra != rb or ra > 3:
        return False
    return ra == 0 or a == b


def _order_cmp(a: Any, b: Scalar, op: str) -> bool:
    if rank(a) != rank(b):
        return False
    if rank(a) == 0:
        return op in ("gte", "lte")
    if op == "gt":
        return bool(a > b)
    if op == "gte":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


def matches(doc: dict[str, Any], f: Filter) -> bool:
    if isinstance(f, Const):
        return f.value
    if isinstance(f, And):
        return all(matches(doc, g) for g in f.items)
    if isinstance(f, Or):
        return any(matches(doc, g) for g in f.items)
    if isinstance(f, Not):
        return not matches(doc, f.item)
    value = get(doc, f.path)
    if isinstance(f, Cmp):
        if f.op == "eq":
            return _same(value, f.value)
        if f.op == "ne":
            return not _same(value, f.value)
        return _order_cmp(value, f.value, f.op)
    if isinstance(f, In):
        return any(_same(value, v) for v in f.values)
    if isinstance(f, Exists):
        return (value is not MISSING) == f.present
    if isinstance(f, Prefix):
        return isinstance(value, str) and value.startswith(f.prefix)
    if isinstance(f, Contains):
        if not isinstance(value, list):
            return False
        return any(_same(e, f.value) for e in value)
    raise TypeError(f"not a filter: {f!r}")


def _field_key(value: Any) -> tuple[int, int | float, str]:
    r = rank(value)
    if r == 1:
        return (1, int(value), "")
    if r == 2:
        return (2, value, "")
    if r == 3:
        return (3, 0, value)
    return (r, 0, "")


@functools.total_ordering
class _Reversed:
    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.key == other.key

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.key < self.key)

    def __hash__(self) -> int:
        return hash(self.key)


def sort_key(doc: dict[str, Any], order: Sequence[OrderKey]) -> tuple[Any, ...]:
    """The document's place in ``order``; ties broken by uid then id, in the direction of
    the last order key (ascending without one)."""
    parts: list[Any] = []
    for k in order:
        key = _field_key(get(doc, k.path))
        parts.append(_Reversed(key) if k.descending else key)
    tie = (doc["uid"], doc["id"])
    parts.append(_Reversed(tie) if order and order[-1].descending else tie)
    return tuple(parts)


def sorted_docs(
    docs: Sequence[dict[str, Any]], where: Filter, order: Sequence[OrderKey]
) -> list[dict[str, Any]]:
    return sorted((d for d in docs if matches(d, where)), key=lambda d: sort_key(d, order))
