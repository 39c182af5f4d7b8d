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
- ``Search``: a string containing the text when A-Z are read as a-z (nothing else folds).
- :func:`aggregate` reads a client pipeline as docs/data.md#aggregation describes it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from fractions import Fraction
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
    Search,
)

__all__ = ["MISSING", "aggregate", "get", "matches", "rank", "sort_key", "sorted_docs"]


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
    if isinstance(f, Search):
        return isinstance(value, str) and _fold(f.text) in _fold(value)
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


def _fold(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


# ---------------------------------------------------------------- aggregation


class Overflow(Exception):
    """A $sum beyond the double range (the server answers InvalidArgument)."""


def _exact(value: int | float) -> Fraction:
    # A float as written: the shortest decimal that reads back as it (what the stores keep).
    return Fraction(value) if isinstance(value, int) else Fraction(repr(value))


def _number(total: Fraction, any_float: bool) -> int | float:
    if not any_float and -(2**63) <= total <= 2**63 - 1:
        return int(total)
    try:
        return float(total)
    except OverflowError:
        raise Overflow() from None


def _scalar_order(value: Any) -> tuple[Any, ...]:
    if isinstance(value, dict):
        return (9, tuple(_scalar_order(v) for v in value.values()))
    return _field_key(MISSING if value is None else value)


def aggregate(
    docs: Sequence[dict[str, Any]], where: Filter, pipeline: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The groups of ``docs`` matching ``where`` under a valid client ``pipeline`` (its
    ``$match`` is ``where``, already parsed)."""
    stages = {k: v for stage in pipeline for k, v in stage.items()}
    spec = stages["$group"]
    key_spec = spec["_id"]
    if key_spec is None:
        names: list[str] | None = None
        refs: list[str] = []
    elif isinstance(key_spec, dict):
        names, refs = list(key_spec), list(key_spec.values())
    else:
        names, refs = None, [key_spec]
    paths = [tuple(r[1:].split(".")) for r in refs]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for doc in docs:
        if not matches(doc, where):
            continue
        values = [get(doc, p) for p in paths]
        if any(isinstance(v, list | dict) for v in values):
            continue
        # rank then value: true and 1 differ, 1 and 1.0 are one number
        ident = tuple((rank(v), None if v is MISSING else v) for v in values)
        groups.setdefault(ident, []).append(doc)
    out: list[dict[str, Any]] = []
    for ident, members in groups.items():
        key = []
        for j, (r, v) in enumerate(ident):
            if r == 2 and any(isinstance(get(m, paths[j]), float) for m in members):
                v = float(v)
            key.append(v)
        row: dict[str, Any] = {}
        if names is not None:
            row["_id"] = dict(zip(names, key, strict=True))
        else:
            row["_id"] = key[0] if key else None
        for name, acc in spec.items():
            if name == "_id":
                continue
            [(op, ref)] = acc.items()
            if op == "$count":
                row[name] = len(members)
                continue
            vals = [get(m, tuple(ref[1:].split("."))) for m in members]
            nums = [v for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
            if op == "$sum":
                row[name] = _number(
                    sum((_exact(v) for v in nums), Fraction(0)), any(isinstance(v, float) for v in nums)
                )
            elif op == "$avg":
                row[name] = float(sum((_exact(v) for v in nums), Fraction(0)) / len(nums)) if nums else None
            else:
                typed = [v for v in vals if rank(v) in (1, 2, 3)]
                pick = min if op == "$min" else max
                row[name] = pick(typed, key=_field_key) if typed else None
        out.append(row)
    out.sort(key=lambda g: _scalar_order(g["_id"]))
    for field, direction in reversed(list(stages.get("$sort", {}).items())):
        head, _, sub = field.partition(".")
        out.sort(key=lambda g, h=head, s=sub: _scalar_order(g[h][s] if s else g[h]), reverse=direction == -1)
    if "$limit" in stages:
        out = out[: stages["$limit"]]
    return out
