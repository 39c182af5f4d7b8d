"""Client query input (``where``, ``orderBy``, ``fields``) parsed into the filter AST.

Everything here reads JSON from the network, so anything wrong raises
:class:`~minibase.errors.InvalidArgument` naming the offending key, and nothing else
escapes, whatever the nesting. Work is bounded by the limits below, not by the input.

``where`` (Mongo-style)::

    {"done": false, "n": {"$gte": 3, "$lt": 10}, "tag": {"$in": ["a", "b"]},
     "$or": [{"a.b": {"$exists": true}}, {"title": {"$prefix": "buy"}}]}

- A key is a dotted field path (segments ``[A-Za-z_][A-Za-z0-9_]{0,63}``, at most 8) or
  ``$and``/``$or`` (a non-empty list of where objects). Keys are ANDed.
- A scalar value means equality; an object holds operators (ANDed): ``$eq $ne $gt $gte
  $lt $lte $in $nin $exists $prefix $contains $search``. Arrays and objects are not comparison
  values (``$contains`` matches an array element; dotted paths reach nested fields).
- Null and missing (the filters.py semantics, as Mongo): ``{f: null}`` / ``$eq: null`` /
  ``$in: [null]`` match a field that is null *or* missing; ``$ne: null`` matches a field
  that is present and not null; only ``$exists`` tells null from missing. Range operators
  need a non-null value and are type-aware (``{"n": {"$gt": 3}}`` skips strings).
- ``uid`` is refused: the owner is set by the server (the ``owner`` event key filters it).

Cost is bounded before anything runs: at most :data:`MAX_CONDITIONS` conditions, of which
at most :data:`MAX_CONTAINS` ``$contains`` (each scans an array of every candidate
document), and :data:`MAX_VALUES` comparison values in all; a condition repeated under one
``$and``/``$or`` runs once. The stores bound the time a query runs on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final, TypeAlias

from ..errors import InvalidArgument
from ..util.names import is_field_path
from .filters import (
    TRUE,
    And,
    Cmp,
    CmpOp,
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
    conj,
    disj,
)

__all__ = [
    "MAX_CONDITIONS",
    "MAX_CONTAINS",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "MAX_IN",
    "MAX_LIST",
    "MAX_ORDER_KEYS",
    "MAX_SEARCH",
    "MAX_SEGMENTS",
    "MAX_STRING",
    "MAX_VALUES",
    "parse_fields",
    "parse_order_by",
    "parse_path",
    "parse_where",
    "project",
    "search_paths",
]

MAX_SEGMENTS: Final = 8
MAX_CONDITIONS: Final = 100  # leaf conditions plus $and/$or nodes in one where
MAX_DEPTH: Final = 8  # nesting of where objects through $and/$or
MAX_LIST: Final = 50  # items in one $and/$or
MAX_IN: Final = 100  # values in one $in/$nin
MAX_CONTAINS: Final = 10  # $contains conditions in one where (each scans an array per document)
MAX_SEARCH: Final = 5  # $search conditions in one where (each reads the search index)
MAX_VALUES: Final = 1000  # comparison values in one where, $in/$nin lists included
MAX_STRING: Final = 1024  # characters in a where string value
MAX_ORDER_KEYS: Final = 5
MAX_FIELDS: Final = 50

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # what SQLite binds and orjson stores
_UID_REFUSED = "the owner is set by the server; use the `owner` key"


def _show(value: object) -> str:
    """A short, safe rendering of client input for messages."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**60:
        return "a huge integer"  # repr would be slow, or fail past 4300 digits
    text = repr(value) if isinstance(value, str | int | float | bool | None) else type(value).__name__
    return text if len(text) <= 66 else text[:64] + "…"


def parse_path(key: object, where: str) -> Path:
    """A dotted field path; ``where`` names the event key for messages."""
    if isinstance(key, str) and is_field_path(key):
        return tuple(key.split("."))
    if not isinstance(key, str):
        raise InvalidArgument(f"{where}: a field path must be a string, not {_show(key)}")
    segments = key.split(".")
    if len(segments) > MAX_SEGMENTS:
        raise InvalidArgument(f"{where}: field path {_show(key)} has more than {MAX_SEGMENTS} segments")
    raise InvalidArgument(
        f"{where}: field path {_show(key)} is not valid: each dot-separated name must be 1-64 of"
        " [A-Za-z0-9_], not starting with a digit"
    )


def _client_path(key: object, where: str) -> Path:
    path = parse_path(key, where)
    if path == ("uid",):
        raise InvalidArgument(f"{where}: uid: {_UID_REFUSED}")
    return path


def _scalar(value: object, where: str) -> Scalar:
    """A comparison value: null, boolean, finite number, or a storable string."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise InvalidArgument(f"{where}: integer {_show(value)} is out of the 64-bit range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where}: numbers must be finite")
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise InvalidArgument(f"{where}: strings are limited to {MAX_STRING} characters")
        if "\x00" in value:
            raise InvalidArgument(f"{where}: strings must not contain \\u0000")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise InvalidArgument(f"{where}: string is not valid Unicode (lone surrogate)") from None
        return value
    if isinstance(value, list):
        raise InvalidArgument(
            f"{where}: arrays are not comparison values; use $contains to match an element of an array"
        )
    if isinstance(value, dict):
        raise InvalidArgument(
            f"{where}: objects are not comparison values; use a dotted path (a.b) to reach nested fields"
        )
    raise InvalidArgument(f"{where}: unsupported value {_show(value)}")


def _ordered(value: object, where: str) -> Scalar:
    v = _scalar(value, where)
    if v is None:
        raise InvalidArgument(f"{where}: needs a boolean, number or string, not null")
    return v


def _cmp(op: CmpOp) -> Callable[[Path, object, str], Filter]:
    check = _scalar if op in ("eq", "ne") else _ordered
    return lambda path, arg, where: Cmp(path, op, check(arg, where))


def _values(arg: object, where: str) -> tuple[Scalar, ...]:
    if not isinstance(arg, list):
        raise InvalidArgument(f"{where}: needs an array of values")
    if len(arg) > MAX_IN:
        raise InvalidArgument(f"{where}: at most {MAX_IN} values")
    return tuple(_scalar(v, f"{where}[{i}]") for i, v in enumerate(arg))


def _in(path: Path, arg: object, where: str) -> Filter:
    return In(path, _values(arg, where))


def _nin(path: Path, arg: object, where: str) -> Filter:
    return Not(In(path, _values(arg, where)))


def _exists(path: Path, arg: object, where: str) -> Filter:
    if not isinstance(arg, bool):
        raise InvalidArgument(f"{where}: needs true or false")
    return Exists(path, arg)


def _prefix(path: Path, arg: object, where: str) -> Filter:
    if not isinstance(arg, str) or not arg:
        raise InvalidArgument(f"{where}: needs a non-empty string")
    return Prefix(path, str(_scalar(arg, where)))


def _contains(path: Path, arg: object, where: str) -> Filter:
    return Contains(path, _scalar(arg, where))


def _search(path: Path, arg: object, where: str) -> Filter:
    if not isinstance(arg, str) or not arg:
        raise InvalidArgument(f"{where}: needs a non-empty string")
    return Search(path, str(_scalar(arg, where)))


_OPERATORS: Final[dict[str, Callable[[Path, object, str], Filter]]] = {
    "$eq": _cmp("eq"),
    "$ne": _cmp("ne"),
    "$gt": _cmp("gt"),
    "$gte": _cmp("gte"),
    "$lt": _cmp("lt"),
    "$lte": _cmp("lte"),
    "$in": _in,
    "$nin": _nin,
    "$exists": _exists,
    "$prefix": _prefix,
    "$contains": _contains,
    "$search": _search,
}
_OPERATOR_LIST = " ".join(_OPERATORS)


class _Budget:
    __slots__ = ("contains", "left", "search", "values")

    def __init__(self) -> None:
        self.left = MAX_CONDITIONS
        self.contains = MAX_CONTAINS
        self.search = MAX_SEARCH
        self.values = MAX_VALUES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise InvalidArgument(
                f"where: more than {MAX_CONDITIONS} conditions", max=MAX_CONDITIONS, path="where"
            )

    def spend_values(self, f: Filter) -> None:
        """Count the values and ``$contains`` of one parsed (and deduplicated) condition."""
        if isinstance(f, In):
            self.values -= len(f.values)
        elif isinstance(f, Not):
            return self.spend_values(f.item)
        elif isinstance(f, Cmp | Prefix | Contains | Search):
            self.values -= 1
        if isinstance(f, Search):
            self.search -= 1
            if self.search < 0:
                raise InvalidArgument(
                    f"where: more than {MAX_SEARCH} $search conditions", max=MAX_SEARCH, path="where"
                )
        if isinstance(f, Contains):
            self.contains -= 1
            if self.contains < 0:
                raise InvalidArgument(
                    f"where: more than {MAX_CONTAINS} $contains conditions (each scans an array)",
                    max=MAX_CONTAINS,
                    path="where",
                )
        if self.values < 0:
            raise InvalidArgument(
                f"where: more than {MAX_VALUES} comparison values in all", max=MAX_VALUES, path="where"
            )
        return None


def search_paths(f: Filter) -> set[Path]:
    """The fields ``f`` searches with ``$search`` (each needs a declared search index)."""
    if isinstance(f, Search):
        return {f.path}
    if isinstance(f, And | Or):
        return set().union(*(search_paths(g) for g in f.items))
    if isinstance(f, Not):
        return search_paths(f.item)
    return set()


def _unique(parts: list[Filter]) -> list[Filter]:
    """``parts`` without repeats. Keyed by repr, which tells ``1`` from ``true`` (as
    dataclass equality does not), so only truly identical conditions merge."""
    return list({repr(f): f for f in parts}.values())


def parse_where(where: object, at: str = "where") -> Filter:
    """A client ``where`` as a filter; ``None`` (absent) matches everything. ``at`` names
    it in messages."""
    if where is None:
        return TRUE
    return _where(where, at, 1, _Budget())


def _where(obj: object, at: str, depth: int, budget: _Budget) -> Filter:
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{at}: must be an object")
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"{at}: $and/$or are nested deeper than {MAX_DEPTH} levels")
    parts: list[Filter] = []
    for key, value in obj.items():
        if key == "$and" or key == "$or":
            budget.spend()
            sub = f"{at}.{key}"
            if not isinstance(value, list) or not value:
                raise InvalidArgument(f"{sub}: needs a non-empty array of where objects")
            if len(value) > MAX_LIST:
                raise InvalidArgument(f"{sub}: at most {MAX_LIST} items")
            items = _unique([_where(v, f"{sub}[{i}]", depth + 1, budget) for i, v in enumerate(value)])
            parts.append(conj(*items) if key == "$and" else disj(*items))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidArgument(f"{at}: unknown operator {_show(key)} (use $and, $or, or a field path)")
        else:
            path = _client_path(key, at)
            parts.append(_field(path, value, f"{at}.{key}", budget))
    parts = _unique(parts)
    return parts[0] if len(parts) == 1 else conj(*parts)


def _field(path: Path, value: object, at: str, budget: _Budget) -> Filter:
    if not isinstance(value, dict):
        budget.spend()
        f: Filter = Cmp(path, "eq", _scalar(value, at))
        budget.spend_values(f)
        return f
    if not value:
        raise InvalidArgument(f"{at}: empty object; give a value or operators ({_OPERATOR_LIST})")
    parts: list[Filter] = []
    for op, arg in value.items():
        parse = _OPERATORS.get(op) if isinstance(op, str) else None
        if parse is None:
            if isinstance(op, str) and not op.startswith("$"):
                raise InvalidArgument(
                    f"{at}: objects are not comparison values; use a dotted path"
                    f" ({'.'.join(path)}.{_show(op)[1:-1]}) to reach nested fields"
                )
            raise InvalidArgument(f"{at}: unknown operator {_show(op)} (one of: {_OPERATOR_LIST})")
        budget.spend()
        f = parse(path, arg, f"{at}.{op}")
        budget.spend_values(f)
        parts.append(f)
    return parts[0] if len(parts) == 1 else conj(*parts)


_DIRECTIONS: Final = {"asc": False, "desc": True}


def parse_order_by(order_by: object) -> tuple[OrderKey, ...]:
    """``[[field, "asc"|"desc"], …]``; an item may be a bare field (ascending) or ``[field]``.

    A bare ``"field"`` and a single pair ``["field", "desc"]`` are accepted too (the latter
    is what a client means; to sort by a field named ``asc``/``desc`` second, write pairs).
    """
    if order_by is None:
        return ()
    if isinstance(order_by, str) or (
        isinstance(order_by, list)
        and len(order_by) == 2
        and isinstance(order_by[0], str)
        and isinstance(order_by[1], str)
        and order_by[1] in _DIRECTIONS
    ):
        order_by = [order_by]
    if not isinstance(order_by, list):
        raise InvalidArgument('orderBy: must be an array of [field, "asc"|"desc"] pairs')
    if len(order_by) > MAX_ORDER_KEYS:
        raise InvalidArgument(f"orderBy: at most {MAX_ORDER_KEYS} keys")
    keys: list[OrderKey] = []
    seen: set[Path] = set()
    for i, item in enumerate(order_by):
        at = f"orderBy[{i}]"
        if isinstance(item, str):
            field, direction = item, "asc"
        elif isinstance(item, list) and len(item) in (1, 2):
            field = item[0]
            direction = item[1] if len(item) == 2 else "asc"
        else:
            raise InvalidArgument(f'{at}: must be a field or a [field, "asc"|"desc"] pair')
        path = _client_path(field, at)
        if not isinstance(direction, str) or direction not in _DIRECTIONS:
            raise InvalidArgument(f'{at}: direction must be "asc" or "desc", not {_show(direction)}')
        if path in seen:
            raise InvalidArgument(f"{at}: {'.'.join(path)} is already in orderBy")
        seen.add(path)
        keys.append(OrderKey(path, _DIRECTIONS[direction]))
    return tuple(keys)


def parse_fields(fields: object) -> tuple[Path, ...] | None:
    """A projection: the paths to return (``id`` and ``uid`` always are); None = all."""
    if fields is None:
        return None
    if not isinstance(fields, list):
        raise InvalidArgument("fields: must be an array of field paths")
    if len(fields) > MAX_FIELDS:
        raise InvalidArgument(f"fields: at most {MAX_FIELDS} paths")
    # uid is fine here: it is always returned anyway.
    paths = [parse_path(f, f"fields[{i}]") for i, f in enumerate(fields)]
    return tuple(dict.fromkeys(paths))


# A projection tree: segment -> None (keep the whole value) or a subtree.
_Tree: TypeAlias = dict[str, "_Tree | None"]


@lru_cache(maxsize=256)
def _tree(fields: tuple[Path, ...]) -> _Tree:
    root: _Tree = {}
    for path in fields:
        node = root
        for seg in path[:-1]:
            child = node.get(seg, {})
            if child is None:  # an ancestor is kept whole
                break
            node[seg] = child
            node = child
        else:
            node[path[-1]] = None
    return root


def _pick(doc: dict[str, Any], tree: _Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for seg, sub in tree.items():
        if seg not in doc:
            continue
        value = doc[seg]
        if sub is None:
            out[seg] = value
        elif isinstance(value, dict):
            picked = _pick(value, sub)
            if picked:
                out[seg] = picked
    return out


def project(doc: dict[str, Any], fields: tuple[Path, ...] | None) -> dict[str, Any]:
    """``doc`` with only ``fields`` (nesting kept; a parent with no listed child present is
    left out), plus ``id`` and ``uid``. ``None`` returns ``doc`` itself."""
    if fields is None:
        return doc
    out: dict[str, Any] = {k: doc[k] for k in ("id", "uid") if k in doc}
    out.update(_pick(doc, _tree(fields)))
    return out
