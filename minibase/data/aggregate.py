"""The ``aggregate`` op (docs/data.md#aggregation): a bounded pipeline over the documents a
caller may read.

::

    [{"$match": {where}},                                   optional, first
     {"$group": {"_id": "$field" | {"name": "$field", …} | null,
                 "out": {"$count": {}} | {"$sum" | "$avg" | "$min" | "$max": "$field"}, …}},
     {"$sort": {"out": -1, "_id": 1}},                      optional
     {"$limit": n}]                                         optional, last

The grouping runs in the database, as one statement with the caller's read rule compiled
into its filter (``data/sql.py``: :func:`~minibase.data.sql.compile_aggregate`), and forms
at most :data:`MAX_GROUPS` groups; sorting and limiting them happen here. Stores without
SQL group in memory over the same bounded scan as their queries (:func:`group_documents`).

Numbers follow the store's semantics: ``$sum`` and ``$avg`` add the numbers exactly as
written (decimal), then round once to a double, so every backend answers the same; a sum of
integers stays an integer while it fits 64 bits. Integers and floats of equal value are one
number (one group; which of the two a ``$min``/``$max`` tie returns is unspecified).
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any, Final

from ..errors import InvalidArgument
from ..util.names import SEGMENT_RE
from ..util.record import record
from .filters import TRUE, Filter, Path, Scalar
from .query import parse_path, parse_where

__all__ = [
    "ACCUMULATORS",
    "MAX_ACCUMULATORS",
    "MAX_GROUPS",
    "MAX_KEYS",
    "MAX_LIMIT",
    "MAX_SORT_KEYS",
    "Accumulator",
    "ExactSum",
    "Group",
    "Pipeline",
    "decode_rows",
    "group_documents",
    "parse_pipeline",
]

MAX_GROUPS: Final = 1000  # groups one aggregate may form (else InvalidArgument)
MAX_LIMIT: Final = 1000
MAX_KEYS: Final = 5  # fields in a compound _id
MAX_ACCUMULATORS: Final = 20
MAX_SORT_KEYS: Final = 5
ACCUMULATORS: Final = ("$count", "$sum", "$avg", "$min", "$max")
_STAGES: Final = ("$match", "$group", "$sort", "$limit")
_INT64: Final = (-(2**63), 2**63 - 1)


@record
class Accumulator:
    name: str
    op: str  # count, sum, avg, min, max
    path: Path | None  # None for count


@record
class Group:
    """What the store computes: group by ``keys`` (paths), fold ``accumulators``."""

    keys: tuple[Path, ...]
    accumulators: tuple[Accumulator, ...]


# One group as a store answers it: its key values (scalars), then one value per
# accumulator (count: int; sum: int | float; avg, min, max: a scalar or None).
GroupRow = tuple[tuple[Scalar, ...], list[Any]]


@record
class Pipeline:
    where: Filter
    group: Group
    names: tuple[str, ...] | None  # the _id object's names; None: _id is one field or null
    sort: tuple[tuple[str, bool], ...]  # (output field, descending)
    limit: int | None

    def finish(self, rows: Sequence[GroupRow]) -> list[dict[str, Any]]:
        """The answer: one object per group, sorted (then by ``_id``) and limited."""
        accs = self.group.accumulators
        keyed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for key, values in rows:
            if self.names is not None:
                _id: Any = dict(zip(self.names, key, strict=True))
            else:
                _id = key[0] if key else None
            out = {"_id": _id, **{a.name: v for a, v in zip(accs, values, strict=True)}}
            order = tuple(_order_key(v) for v in key)
            keyed.append((order, out))
        keyed.sort(key=lambda kv: kv[0])  # _id ascending: the tie-break of every sort
        docs = [out for _, out in keyed]
        for field, desc in reversed(self.sort):  # stable sorts, last key first
            docs.sort(key=_sort_key(field), reverse=desc)
        return docs if self.limit is None else docs[: self.limit]


def _order_key(value: Any) -> tuple[int, Any, str]:
    """The one order across types (docs/data.md): null < booleans < numbers < strings."""
    if value is None:
        return (0, 0, "")
    if isinstance(value, bool):
        return (1, int(value), "")
    if isinstance(value, int | float):
        return (2, value, "")
    if isinstance(value, str):
        return (3, 0, value)
    if isinstance(value, dict):  # a compound _id: its fields in order
        return (4, tuple(_order_key(v) for v in value.values()), "")
    raise TypeError(f"not a group value: {value!r}")


def _sort_key(field: str) -> Callable[[dict[str, Any]], tuple[int, Any, str]]:
    head, _, sub = field.partition(".")
    if sub:
        return lambda doc: _order_key(doc[head][sub])
    return lambda doc: _order_key(doc[head])


# ------------------------------------------------------------------------ parsing


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str | int | float | bool | None) else type(value).__name__
    return text if len(text) <= 66 else text[:64] + "…"


def _ref(value: object, at: str) -> Path:
    """A field reference, ``"$a.b"``."""
    if not isinstance(value, str) or not value.startswith("$"):
        raise InvalidArgument(
            f'{at}: a field reference is a string "$field" (e.g. "$price"), not {_show(value)}'
        )
    return parse_path(value[1:], at)


def _name(value: object, at: str) -> str:
    if not isinstance(value, str) or not SEGMENT_RE.fullmatch(value):
        raise InvalidArgument(
            f"{at}: {_show(value)} is not a name: 1-64 of [A-Za-z0-9_], not starting with a digit"
        )
    return value


def parse_pipeline(pipeline: object) -> Pipeline:
    """A client ``pipeline``; anything wrong is InvalidArgument naming the stage."""
    if not isinstance(pipeline, list) or not pipeline:
        raise InvalidArgument(
            "pipeline: needs a non-empty array of stages ($match, $group, $sort, $limit)", path="pipeline"
        )
    if len(pipeline) > len(_STAGES):
        raise InvalidArgument(
            f"pipeline: at most {len(_STAGES)} stages ($match, $group, $sort, $limit, each once, in that order)",
            max=len(_STAGES),
            path="pipeline",
        )
    where: Filter = TRUE
    group: tuple[Group, tuple[str, ...] | None] | None = None
    sort: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None
    last = -1
    for i, stage in enumerate(pipeline):
        at = f"pipeline[{i}]"
        if not isinstance(stage, dict) or len(stage) != 1:
            raise InvalidArgument(
                f"{at}: a stage is an object with one key ($match, $group, $sort or $limit)"
            )
        [(kind, arg)] = stage.items()
        if kind not in _STAGES:
            raise InvalidArgument(f"{at}: unknown stage {_show(kind)} (one of: {', '.join(_STAGES)})")
        pos = _STAGES.index(kind)
        if pos <= last:
            raise InvalidArgument(f"{at}: {kind} must come once, in the order {', '.join(_STAGES)}")
        last = pos
        if kind == "$match":
            where = parse_where(arg, f"{at}.$match")
        elif kind == "$group":
            group = _group(arg, f"{at}.$group")
        elif group is None:
            raise InvalidArgument(f"{at}: {kind} comes after $group")
        elif kind == "$sort":
            sort = _sort(arg, f"{at}.$sort", group[0], group[1])
        else:
            if isinstance(arg, bool) or not isinstance(arg, int) or not 1 <= arg <= MAX_LIMIT:
                raise InvalidArgument(f"{at}.$limit: needs an integer from 1 to {MAX_LIMIT}", max=MAX_LIMIT)
            limit = arg
    if group is None:
        raise InvalidArgument("pipeline: needs a $group stage", path="pipeline")
    return Pipeline(where, group[0], group[1], sort, limit)


def _group(arg: object, at: str) -> tuple[Group, tuple[str, ...] | None]:
    if not isinstance(arg, dict) or "_id" not in arg:
        raise InvalidArgument(f'{at}: needs an object with "_id" (null, "$field" or {{"name": "$field", …}})')
    _id = arg["_id"]
    names: tuple[str, ...] | None = None
    if _id is None:
        keys: tuple[Path, ...] = ()
    elif isinstance(_id, dict):
        if not 1 <= len(_id) <= MAX_KEYS:
            raise InvalidArgument(f"{at}._id: groups by 1 to {MAX_KEYS} fields", max=MAX_KEYS)
        names = tuple(_name(k, f"{at}._id") for k in _id)
        keys = tuple(_ref(v, f"{at}._id.{k}") for k, v in _id.items())
    else:
        keys = (_ref(_id, f"{at}._id"),)
    accs: list[Accumulator] = []
    for name, spec in arg.items():
        if name == "_id":
            continue
        where = f"{at}.{name}"
        _name(name, at)
        if not isinstance(spec, dict) or len(spec) != 1:
            raise InvalidArgument(
                f'{where}: an accumulator is one of {{"$count": {{}}}} or {{"$sum": "$field"}} …'
            )
        [(op, operand)] = spec.items()
        if op not in ACCUMULATORS:
            raise InvalidArgument(
                f"{where}: unknown accumulator {_show(op)} (one of: {' '.join(ACCUMULATORS)})"
            )
        if op == "$count":
            if operand != {}:
                raise InvalidArgument(f"{where}.$count: takes {{}}")
            accs.append(Accumulator(name, "count", None))
        else:
            accs.append(Accumulator(name, op[1:], _ref(operand, f"{where}.{op}")))
    if len(accs) > MAX_ACCUMULATORS:
        raise InvalidArgument(f"{at}: at most {MAX_ACCUMULATORS} accumulators", max=MAX_ACCUMULATORS)
    return Group(keys, tuple(accs)), names


def _sort(arg: object, at: str, group: Group, names: tuple[str, ...] | None) -> tuple[tuple[str, bool], ...]:
    if not isinstance(arg, dict) or not arg:
        raise InvalidArgument(f'{at}: needs an object of output fields and 1 or -1, e.g. {{"total": -1}}')
    if len(arg) > MAX_SORT_KEYS:
        raise InvalidArgument(f"{at}: at most {MAX_SORT_KEYS} keys", max=MAX_SORT_KEYS)
    fields = {"_id", *(a.name for a in group.accumulators), *(f"_id.{n}" for n in names or ())}
    out: list[tuple[str, bool]] = []
    for field, direction in arg.items():
        if field not in fields:
            raise InvalidArgument(
                f"{at}: {_show(field)} is not an output field (one of: {', '.join(sorted(fields))})"
            )
        if type(direction) is not int or direction not in (1, -1):
            raise InvalidArgument(f"{at}.{field}: must be 1 (ascending) or -1 (descending)")
        out.append((field, direction == -1))
    return tuple(out)


# ------------------------------------------------------------------ exact numbers


# Decimal addition of decimals is exact while the digits fit the precision: with the
# largest one it always is (a sum of doubles as written needs at most ~800 digits).
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[decimal.Inexact]
)


class ExactSum:
    """The sum of numbers as written: integers exactly, floats as their shortest decimal
    (what orjson wrote and jsonb keeps). Also SQLite's ``mb_sum`` aggregate: its answer is
    the decimal text PostgreSQL's ``sum(numeric)::text`` gives."""

    __slots__ = ("floats", "ints", "seen")

    def __init__(self) -> None:
        self.ints = 0
        self.floats: decimal.Decimal | None = None
        self.seen = False

    def step(self, value: Any) -> None:
        if value is None:
            return
        self.seen = True
        if type(value) is int:
            self.ints += value
        elif self.floats is None:
            self.floats = _EXACT.add(_ZERO, decimal.Decimal(repr(value)))  # +0: no -0
        else:
            self.floats = _EXACT.add(self.floats, decimal.Decimal(repr(value)))

    def finalize(self) -> str | None:
        if not self.seen:
            return None
        if self.floats is None:
            return str(self.ints)
        text = format(_EXACT.add(self.floats, decimal.Decimal(self.ints)), "f")
        return text if "." in text else text + ".0"


_ZERO = decimal.Decimal(0)


def _sum_value(text: str | None, where: str) -> int | float:
    """A store's decimal sum as the answer's number (a sum of nothing is 0)."""
    if text is None:
        return 0
    if "." not in text:
        n = int(text)
        return n if _INT64[0] <= n <= _INT64[1] else float(n)
    value = float(text)  # correctly rounded from the exact decimal
    if not math.isfinite(value):
        raise InvalidArgument(f"{where}: the sum is beyond the range of a double", path="pipeline")
    return value


def _avg_value(text: str | None, n: int) -> float | None:
    if text is None or not n:
        return None
    return float(Fraction(text) / n)


# ------------------------------------------------------------------------ rows


def decode_rows(rows: Iterable[Sequence[Any]], group: Group) -> list[GroupRow]:
    """Rows of :func:`~minibase.data.sql.compile_aggregate` (either dialect) as groups."""
    out: list[GroupRow] = []
    for row in rows:
        i = 0
        key: list[Scalar] = []
        for _ in group.keys:
            rank, num, txt, is_float = row[i : i + 4]
            i += 4
            key.append(_key_value(int(rank), num, txt, bool(is_float)))
        values: list[Any] = []
        for acc in group.accumulators:
            if acc.op == "count":
                values.append(int(row[i]))
                i += 1
            elif acc.op == "sum":
                values.append(_sum_value(row[i], acc.name))
                i += 1
            elif acc.op == "avg":
                values.append(_avg_value(row[i], int(row[i + 1])))
                i += 2
            else:
                b, n, s = row[i : i + 3]
                i += 3
                values.append(_extreme(acc.op, None if b is None else bool(b), n, s))
        out.append((tuple(key), values))
    return out


def _key_value(rank: int, num: Any, txt: Any, is_float: bool) -> Scalar:
    if rank == 0:
        return None
    if rank == 1:
        return bool(num)
    if rank == 2:
        return float(num) if is_float else int(num)
    return str(txt)


def _extreme(op: str, b: bool | None, n: Any, s: str | None) -> Scalar:
    """The least (min) or greatest (max) of a group's least/greatest boolean, number and
    string, in the order booleans < numbers < strings."""
    candidates = (b, n, s) if op == "min" else (s, n, b)
    return next((v for v in candidates if v is not None), None)


# --------------------------------------------------------------- in memory


def _get(doc: Mapping[str, Any], path: Path) -> Any:
    node: Any = doc
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return None
        node = node[name]
    return node


class _Fold:
    __slots__ = ("acc", "best", "count", "numbers", "sum")

    def __init__(self, acc: Accumulator) -> None:
        self.acc = acc
        self.count = 0
        self.numbers = 0
        self.sum = ExactSum()
        self.best: list[Any] = [None, None, None]  # boolean, number, string

    def add(self, doc: Mapping[str, Any]) -> None:
        self.count += 1
        if self.acc.path is None:
            return
        v = _get(doc, self.acc.path)
        if isinstance(v, bool):
            slot = 0
        elif isinstance(v, int | float):
            slot = 1
            self.numbers += 1
            self.sum.step(v)
        elif isinstance(v, str):
            slot = 2
        else:
            return
        cur = self.best[slot]
        if cur is None or (v < cur if self.acc.op == "min" else v > cur):
            self.best[slot] = v

    def value(self) -> Any:
        op = self.acc.op
        if op == "count":
            return self.count
        if op == "sum":
            return _sum_value(self.sum.finalize(), self.acc.name)
        if op == "avg":
            return _avg_value(self.sum.finalize(), self.numbers)
        return _extreme(op, *self.best)


def _as_float(v: Scalar) -> Scalar:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


def group_documents(docs: Iterable[Mapping[str, Any]], group: Group, limit: int) -> list[GroupRow]:
    """The groups of ``docs`` (already filtered), computed in memory with the semantics of
    :func:`~minibase.data.sql.compile_aggregate`; at most ``limit`` of them (as its LIMIT:
    pass one more than allowed to learn there are too many)."""
    groups: dict[tuple[Any, ...], tuple[list[Scalar], list[bool], list[_Fold]]] = {}
    for doc in docs:
        values = [_get(doc, p) for p in group.keys]
        if any(isinstance(v, list | dict) for v in values):
            continue
        # (rank, value): true is not 1, while 1 and 1.0 are one number.
        ident = tuple((_order_key(v)[0], v) for v in values)
        entry = groups.get(ident)
        if entry is None:
            if len(groups) >= limit:
                break
            entry = (values, [False] * len(values), [_Fold(a) for a in group.accumulators])
            groups[ident] = entry
        for j, v in enumerate(values):
            if isinstance(v, float):
                entry[1][j] = True
        for f in entry[2]:
            f.add(doc)
    out: list[GroupRow] = []
    for values, floats, folds in groups.values():
        key = tuple(_as_float(v) if fl else v for v, fl in zip(values, floats, strict=True))
        out.append((key, [f.value() for f in folds]))
    return out
