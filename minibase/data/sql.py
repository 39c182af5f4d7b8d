"""Filters, orders and indexes compiled to SQL for SQLite (json1) and PostgreSQL (jsonb).

Every client value is a bound parameter. Field paths appear in SQL text as literals, built
only from segments checked here against ``[A-Za-z_][A-Za-z0-9_]{0,63}`` (no quote, dot,
comma or brace can get in). They are literals, not parameters, on purpose: an expression
index is only used when the query repeats its expression exactly, and neither SQLite nor
a PostgreSQL generic plan can match an index expression against ``json_extract(body, ?)``.

Each field is read through three non-NULL sort expressions, the same text in filters,
ORDER BY and index DDL, so one ``(collection, rank, num, txt)`` index serves both:

- ``rank``: missing/null 0, boolean 1, number 2, string 3, array 4, object 5;
- ``num``: the number, or 0/1 for false/true, else 0;
- ``txt``: the string, else ``''`` (PostgreSQL compares it ``COLLATE "C"``: code points).

The key columns ``id`` and ``uid`` are strings (rank 3) read from their columns.

Null and missing follow :mod:`minibase.data.filters` (and Mongo): ``eq None`` (and
``In`` with ``None``) matches null *or* missing (``rank = 0``); ``ne None`` matches present,
non-null values; only :class:`Exists` tells them apart. Ranges are type-aware within a rank:
``gte``/``lte None`` equal ``eq None``, ``gt``/``lt None`` match nothing. Every compiled
condition is a non-NULL boolean, so ``NOT`` is exact (``ne`` matches missing fields).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

from ..errors import InvalidArgument
from ..util.names import NAME_RE, SEGMENT_RE
from ..util.record import record
from .filters import (
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

__all__ = [
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "Params",
    "compile_count",
    "compile_filter",
    "compile_query",
    "index_ddl",
    "search_index_ddl",
    "search_index_name",
]

_TRUE: Final = "1=1"
_FALSE: Final = "1=0"
_SEGMENT = SEGMENT_RE
_COLLECTION = NAME_RE
_INDEX_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MAX_SEGMENTS: Final = 8
_SYMBOLS: Final = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


@record(compiled=True)
class _Field:
    """The SQL that reads one path."""

    rank: str
    num: str
    txt: str  # ordered string expression (PostgreSQL: COLLATE "C")
    column: str | None  # the bare key column, for equality, when the path is id/uid
    present: str  # the field exists (JSON null counts); unused for columns
    absent: str


class Dialect:
    """How one database spells the compiled SQL. Use :data:`SQLITE` or :data:`POSTGRES`."""

    __slots__ = ("collate", "int64", "name", "numbered")

    def __init__(self, name: str, *, numbered: bool, collate: str, int64: bool) -> None:
        self.name = name
        self.numbered = numbered  # $1, $2… instead of ?
        self.collate = collate  # appended to string columns compared by code point
        self.int64 = int64  # bound integers must fit 64 bits

    def __repr__(self) -> str:
        return f"<Dialect {self.name}>"

    def _body_field(self, path: Path) -> _Field:
        raise NotImplementedError

    def _contains(self, path: Path, rank: str, value: Scalar, params: Params) -> str:
        raise NotImplementedError

    def _search(self, path: Path, text: str, params: Params) -> str:
        raise NotImplementedError

    def _float_flag(self, path: Path) -> str:
        """An aggregate: true when a number in the group was written as a float."""
        raise NotImplementedError

    def _sum(self, num: str) -> str:
        """An aggregate: the exact sum of the non-NULL ``num`` values as decimal text."""
        raise NotImplementedError


# A search term this long (characters) or longer is looked up in SQLite's trigram index;
# FTS5 cannot look up shorter ones, which scan the candidates instead.
TRIGRAM = 3


class _SQLite(Dialect):
    def _body_field(self, path: Path) -> _Field:
        lit = "'$." + ".".join(path) + "'"
        jt = f"json_type(body, {lit})"
        jx = f"json_extract(body, {lit})"
        return _Field(
            rank=(
                f"CASE {jt} WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 WHEN 'true' THEN 1"
                " WHEN 'false' THEN 1 WHEN 'array' THEN 4 WHEN 'object' THEN 5 ELSE 0 END"
            ),
            num=f"CASE {jt} WHEN 'integer' THEN {jx} WHEN 'real' THEN {jx} WHEN 'true' THEN 1 ELSE 0 END",
            txt=f"CASE {jt} WHEN 'text' THEN {jx} ELSE '' END",
            column=None,
            present=f"{jt} IS NOT NULL",
            absent=f"{jt} IS NULL",
        )

    def _contains(self, path: Path, rank: str, value: Scalar, params: Params) -> str:
        # rank = 4 first: json_each would also walk an object's members or a scalar.
        if value is None:
            cond = "type = 'null'"
        elif isinstance(value, bool):
            cond = f"type = {params.add('true' if value else 'false')}"
        elif isinstance(value, int | float):
            cond = f"type IN ('integer', 'real') AND value = {params.add(value)}"
        else:
            cond = f"type = 'text' AND value = {params.add(value)}"
        lit = "'$." + ".".join(path) + "'"
        return f"{rank} = 4 AND EXISTS (SELECT 1 FROM json_each(body, {lit}) WHERE {cond})"  # noqa: S608 - validated paths, bound values

    def _search(self, path: Path, text: str, params: Params) -> str:
        fld = self._body_field(path)
        lit = "'$." + ".".join(path) + "'"
        index = ""
        if len(text) >= TRIGRAM:
            # The trigram index (kept by triggers, store/sqlite_search.py) narrows the rows;
            # it folds case more widely than ASCII, so the exact test below still decides.
            phrase = '"' + text.replace('"', '""') + '"'
            index = (
                "(collection, uid, id) IN (SELECT collection, uid, id FROM search_rows"  # noqa: S608 - validated paths, bound values
                f" WHERE field = {lit} AND rowid IN (SELECT rowid FROM doc_search WHERE doc_search MATCH"
                f" {params.add(phrase)})) AND "
            )
        # lower() is ASCII-only in SQLite (without ICU), as the operator's semantics are.
        return f"{index}{fld.rank} = 3 AND instr(lower({fld.txt}), {params.add(ascii_lower(text))}) > 0"

    def _float_flag(self, path: Path) -> str:
        return f"max(json_type(body, '$.{'.'.join(path)}') = 'real')"

    def _sum(self, num: str) -> str:
        return f"mb_sum({num})"  # registered on every connection: data/aggregate.py


class _Postgres(Dialect):
    def _body_field(self, path: Path) -> _Field:
        lit = "'{" + ",".join(path) + "}'"
        v = f"(body #> {lit})"
        jt = f"jsonb_typeof{v}"
        return _Field(
            rank=(
                f"CASE {jt} WHEN 'number' THEN 2 WHEN 'string' THEN 3 WHEN 'boolean' THEN 1"
                " WHEN 'array' THEN 4 WHEN 'object' THEN 5 ELSE 0 END"
            ),
            num=f"CASE {jt} WHEN 'number' THEN {v}::numeric WHEN 'boolean' THEN {v}::boolean::int ELSE 0 END",
            txt=f"(CASE {jt} WHEN 'string' THEN body #>> {lit} ELSE '' END){self.collate}",
            column=None,
            present=f"{v} IS NOT NULL",  # #> gives jsonb 'null' for a JSON null, SQL NULL if missing
            absent=f"{v} IS NULL",
        )

    def _contains(self, path: Path, rank: str, value: Scalar, params: Params) -> str:
        # jsonb containment is type-aware: [1] does not contain true or "1"; rank = 4 keeps
        # it to arrays and makes it non-NULL when the field is missing.
        if value is None:
            elem = "'[null]'::jsonb"
        elif isinstance(value, bool):
            elem = f"jsonb_build_array({params.add(value)}::boolean)"
        elif isinstance(value, int | float):
            elem = f"jsonb_build_array({params.add(value)}::numeric)"
        else:
            elem = f"jsonb_build_array({params.add(value)}::text)"
        return f"{rank} = 4 AND (body #> '{{{','.join(path)}}}') @> {elem}"

    def _search(self, path: Path, text: str, params: Params) -> str:
        fld = self._body_field(path)
        pattern = "%" + ascii_lower(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # The expression of the trigram index (search_index_ddl): lower() under "C" is
        # ASCII-only, and LIKE under "C" compares code points, so this is exact.
        return f"{fld.rank} = 3 AND {_pg_search_expr(path)} LIKE {params.add(pattern)}"

    def _float_flag(self, path: Path) -> str:
        # orjson writes every float with a point or an exponent, which jsonb keeps as scale.
        v = f"(body #> '{{{','.join(path)}}}')"
        return f"bool_or(CASE jsonb_typeof{v} WHEN 'number' THEN scale({v}::numeric) > 0 END)"

    def _sum(self, num: str) -> str:
        return f"(sum({num}))::text"


def _pg_search_expr(path: Path) -> str:
    return f"lower((body #>> '{{{','.join(path)}}}') COLLATE \"C\")"


SQLITE: Final[Dialect] = _SQLite("sqlite", numbered=False, collate="", int64=True)
POSTGRES: Final[Dialect] = _Postgres("postgres", numbered=True, collate=' COLLATE "C"', int64=False)


class Params:
    """Bound values in placeholder order; :meth:`add` returns the placeholder to write."""

    __slots__ = ("_numbered", "values")

    def __init__(self, dialect: Dialect) -> None:
        self.values: list[object] = []
        self._numbered = dialect.numbered

    def add(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self._numbered else "?"


@lru_cache(maxsize=2048)
def _field(d: Dialect, path: Path) -> _Field:
    if path == ("id",) or path == ("uid",):
        col = path[0]
        return _Field("3", "0", col + d.collate, col, _TRUE, _FALSE)
    if not 1 <= len(path) <= _MAX_SEGMENTS or not all(
        isinstance(s, str) and _SEGMENT.fullmatch(s) for s in path
    ):
        raise InvalidArgument(f"invalid field path {'.'.join(map(str, path))[:80]!r}")
    return d._body_field(path)


def compile_filter(f: Filter, dialect: Dialect, params: Params) -> str:
    """A SQL boolean expression for ``f`` (never NULL), binding values into ``params``."""
    return _compile(f, dialect, params)


def _compile(f: Filter, d: Dialect, p: Params) -> str:
    # Invariant: a constant result (_TRUE/_FALSE) has bound nothing, so And/Or may drop it.
    if isinstance(f, Cmp):
        if f.op == "ne":
            return _negate(_cmp(f.path, "eq", f.value, d, p))
        return _cmp(f.path, f.op, f.value, d, p)
    if isinstance(f, And | Or):
        stop, skip = (_FALSE, _TRUE) if isinstance(f, And) else (_TRUE, _FALSE)
        mark = len(p.values)
        parts: list[str] = []
        for item in f.items:
            s = _compile(item, d, p)
            if s == stop:
                del p.values[mark:]
                return stop
            if s != skip:
                parts.append(s)
        if not parts:
            return skip
        if len(parts) == 1:
            return parts[0]
        if stop == _FALSE:
            return "(" + " AND ".join(parts) + ")"
        return "((" + ") OR (".join(parts) + "))"
    if isinstance(f, Not):
        return _negate(_compile(f.item, d, p))
    if isinstance(f, In):
        return _in(f.path, f.values, d, p)
    if isinstance(f, Exists):
        fld = _field(d, f.path)
        if fld.column is not None:
            return _TRUE if f.present else _FALSE
        return fld.present if f.present else fld.absent
    if isinstance(f, Prefix):
        return _prefix(f.path, f.prefix, d, p)
    if isinstance(f, Search):
        if _field(d, f.path).column is not None:  # also checks the path
            raise InvalidArgument("$search works on document fields, not on id or uid")
        return d._search(f.path, f.text, p)
    if isinstance(f, Contains):
        fld = _field(d, f.path)
        if fld.column is not None:
            return _FALSE
        return d._contains(f.path, fld.rank, f.value, p)
    if isinstance(f, Const):
        return _TRUE if f.value else _FALSE
    raise TypeError(f"not a filter: {f!r}")


def _negate(s: str) -> str:
    if s == _TRUE:
        return _FALSE
    if s == _FALSE:
        return _TRUE
    return f"NOT ({s})"


def _cmp(path: Path, op: str, value: Scalar, d: Dialect, p: Params) -> str:
    fld = _field(d, path)
    sym = _SYMBOLS[op]
    if value is None:
        # Within rank 0 everything is equal: >= / <= hold, > / < never do.
        if op == "gt" or op == "lt" or fld.column is not None:
            return _FALSE
        return f"{fld.rank} = 0"
    if isinstance(value, str):
        if fld.column is not None:
            return f"{fld.column if op == 'eq' else fld.txt} {sym} {p.add(value)}"
        # num = 0 is always true for strings; it lets a (rank, num, txt) index seek on txt.
        return f"{fld.rank} = 3 AND {fld.num} = 0 AND {fld.txt} {sym} {p.add(value)}"
    if fld.column is not None:
        return _FALSE
    if isinstance(value, bool):
        return f"{fld.rank} = 1 AND {fld.num} {sym} {p.add(int(value))}"
    return f"{fld.rank} = 2 AND {fld.num} {sym} {p.add(value)}"


def _placeholders(values: Sequence[object], p: Params) -> str:
    return ", ".join(p.add(v) for v in values)


def _in(path: Path, values: tuple[Scalar, ...], d: Dialect, p: Params) -> str:
    fld = _field(d, path)
    null = False
    bools: dict[int, None] = {}
    nums: dict[int | float, None] = {}
    strs: dict[str, None] = {}
    for v in values:  # grouped by type: True == 1 must not merge
        if v is None:
            null = True
        elif isinstance(v, bool):
            bools[int(v)] = None
        elif isinstance(v, str):
            strs[v] = None
        else:
            nums[v] = None
    parts: list[str] = []
    if fld.column is not None:
        if not strs:
            return _FALSE
        if len(strs) == 1:
            return f"{fld.column} = {p.add(next(iter(strs)))}"
        return f"{fld.column} IN ({_placeholders(list(strs), p)})"
    if null:
        parts.append(f"{fld.rank} = 0")
    if len(bools) == 2:
        parts.append(f"{fld.rank} = 1")
    elif bools:
        parts.append(f"{fld.rank} = 1 AND {fld.num} = {p.add(next(iter(bools)))}")
    if len(nums) == 1:
        parts.append(f"{fld.rank} = 2 AND {fld.num} = {p.add(next(iter(nums)))}")
    elif nums:
        parts.append(f"{fld.rank} = 2 AND {fld.num} IN ({_placeholders(list(nums), p)})")
    if len(strs) == 1:
        parts.append(f"{fld.rank} = 3 AND {fld.num} = 0 AND {fld.txt} = {p.add(next(iter(strs)))}")
    elif strs:
        parts.append(f"{fld.rank} = 3 AND {fld.num} = 0 AND {fld.txt} IN ({_placeholders(list(strs), p)})")
    if not parts:
        return _FALSE
    return parts[0] if len(parts) == 1 else "((" + ") OR (".join(parts) + "))"


def _after_prefix(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix`` (code-point order)."""
    i = len(prefix)
    while i:
        c = ord(prefix[i - 1]) + 1
        if c <= 0x10FFFF:
            if 0xD800 <= c <= 0xDFFF:  # surrogates are not characters in UTF-8 text
                c = 0xE000
            return prefix[: i - 1] + chr(c)
        i -= 1
    return None


def _prefix(path: Path, prefix: str, d: Dialect, p: Params) -> str:
    fld = _field(d, path)
    head = "" if fld.column is not None else f"{fld.rank} = 3 AND {fld.num} = 0"
    if not prefix:
        return head or _TRUE
    rng = f"{fld.txt} >= {p.add(prefix)}"
    upper = _after_prefix(prefix)
    if upper is not None:
        rng += f" AND {fld.txt} < {p.add(upper)}"
    return f"{head} AND {rng}" if head else rng


# ------------------------------------------------------------------------ queries


@record(compiled=True)
class _Order:
    """Everything about an ORDER BY that does not depend on values (cached per order)."""

    select: str  # the sort columns, then uid, id
    order_by: str
    width: int  # values in a cursor position
    # "Strictly after a position": SQL with placeholders, and which position value each
    # placeholder binds. PostgreSQL's is a str.format template for the $n numbers.
    after_sql: str
    after_index: tuple[int, ...]
    keys: tuple[tuple[str, bool, int], ...] = ()  # (expression, descending, position index)


_SLOT: Final = "\x00"  # placeholder stand-in while building a template


@lru_cache(maxsize=256)
def _order(d: Dialect, order: tuple[OrderKey, ...]) -> _Order:
    select: list[str] = []
    keys: list[tuple[str, bool, int]] = []  # (expression, descending, index in a position)
    for k in order:
        fld = _field(d, k.path)
        at = len(select)
        select += (fld.rank, fld.num, fld.txt)
        if fld.column is not None:
            # rank and num are constants here; never put them in ORDER BY (SQLite reads an
            # integer literal there as a column number).
            keys.append((fld.txt, k.descending, at + 2))
        else:
            keys += (
                (fld.rank, k.descending, at),
                (fld.num, k.descending, at + 1),
                (fld.txt, k.descending, at + 2),
            )
    n = len(select)
    # Ties break by (uid, id) in the direction of the last key, so a descending order is
    # one backward scan of an index (which ends in the primary key), never a re-sort.
    tie_desc = order[-1].descending if order else False
    keys += (("uid" + d.collate, tie_desc, n), ("id" + d.collate, tie_desc, n + 1))
    select += ("uid", "id")
    order_by = ", ".join(e + (" DESC" if desc else "") for e, desc, _ in keys)
    index: list[int] = []
    template = _keyset(keys, index)
    if d.numbered:
        template = template.replace("{", "{{").replace("}", "}}").replace(_SLOT, "${}")
    else:
        template = template.replace(_SLOT, "?")
    return _Order(", ".join(select), order_by, n + 2, template, tuple(index), tuple(keys))


def _keyset(keys: list[tuple[str, bool, int]], index: list[int]) -> str:
    """Rows strictly after a position in ORDER BY order, as a template (see :class:`_Order`).

    Runs of keys with one direction compare as row values, mixed directions nest:
    ``k1 >= v1 AND (run1 > v1 OR (run1 = v1 AND (run2 < v2 OR …)))``. The leading
    single-key term is implied by the rest; it is there because SQLite seeks an
    expression index only with a scalar range, not a row value.
    """
    runs: list[tuple[bool, list[str], list[int]]] = []
    for expr, desc, i in keys:
        if not runs or runs[-1][0] != desc:
            runs.append((desc, [], []))
        runs[-1][1].append(expr)
        runs[-1][2].append(i)

    def cmp(exprs: list[str], at: list[int], op: str) -> str:
        index.extend(at)
        if len(exprs) == 1:
            return f"{exprs[0]} {op} {_SLOT}"
        return f"({', '.join(exprs)}) {op} ({', '.join([_SLOT] * len(at))})"

    def chain(j: int) -> str:
        desc, exprs, at = runs[j]
        strict = cmp(exprs, at, "<" if desc else ">")
        if j == len(runs) - 1:
            return strict
        equal = cmp(exprs, at, "=")
        return f"({strict} OR ({equal} AND {chain(j + 1)}))"

    expr, desc, i = keys[0]
    head = cmp([expr], [i], "<=" if desc else ">=")
    return f"{head} AND {chain(0)}"


def _check_position(after: Sequence[object], shape: _Order, dialect: Dialect) -> None:
    """A cursor position is client input (decoded from an opaque cursor): check it
    before binding, so a forged one is InvalidArgument rather than a driver error."""
    if not isinstance(after, list | tuple) or len(after) != shape.width:
        raise _bad_cursor()
    last = shape.width - 2
    for i, v in enumerate(after):
        if i >= last or i % 3 == 2:
            if type(v) is not str:
                raise _bad_cursor()
            if i >= last and not v.isprintable():
                raise _bad_cursor()  # owner and id: never hold control characters
            if "\x00" in v:
                raise _bad_cursor()  # no stored string holds U+0000 (validate.json_value)
            if not v.isascii():
                try:
                    v.encode()
                except UnicodeEncodeError:
                    raise _bad_cursor() from None
        elif type(v) is int:
            # PostgreSQL numbers are numeric (any size); SQLite binds 64-bit integers only.
            if dialect.int64 and not _INT_MIN <= v <= _INT_MAX:
                raise _bad_cursor()
        elif type(v) is not float or not math.isfinite(v):
            raise _bad_cursor()


def _bad_cursor() -> InvalidArgument:
    return InvalidArgument("cursor is not one this server returned")


def compile_query(
    dialect: Dialect,
    collection: str,
    where: Filter,
    order: Sequence[OrderKey],
    limit: int,
    after: Sequence[object] | None,
) -> tuple[str, list[object]]:
    """``SELECT <sort columns>, uid, id, body … LIMIT n`` and its parameters.

    A row is ``(rank, num, txt per order key…, uid, id, body)``; pass a row's leading
    values (all but ``body``) as ``after`` to get the rows strictly after it. Ties beyond
    ``order`` break by ``uid``, then ``id``, in the direction of the last order key
    (ascending without one).
    """
    shape = _order(dialect, tuple(order))
    p = Params(dialect)
    sql = f"SELECT {shape.select}, body FROM documents WHERE collection = {p.add(collection)}"  # noqa: S608 - validated paths, bound values
    cond = _compile(where, dialect, p)
    if cond != _TRUE:
        sql += f" AND {cond}"
    if after is not None and not dialect.numbered:
        _check_position(after, shape, dialect)
        return _sqlite_after(sql, p.values, shape, after, limit)
    if after is not None:
        _check_position(after, shape, dialect)
        values = p.values
        base = len(values)
        values.extend([after[i] for i in shape.after_index])
        if dialect.numbered:
            sql += " AND " + shape.after_sql.format(*range(base + 1, len(values) + 1))
        else:
            sql += " AND " + shape.after_sql
    sql += f" ORDER BY {shape.order_by} LIMIT {p.add(limit)}"
    return sql, p.values


def _sqlite_after(
    base: str, base_values: list[object], shape: _Order, after: Sequence[object], limit: int
) -> tuple[str, list[object]]:
    """SQLite: "strictly after a position" as one branch per sort column, each an equality
    prefix plus one range, so each seeks the index (SQLite seeks an expression index only
    on such a prefix; as one OR/row-value condition it would scan from the start of the
    range, making deep pages O(n)). Each branch reads at most ``limit`` rows in order; the
    outer query merges them. The branches are disjoint and together exactly the rows after.
    """
    branches: list[str] = []
    values: list[object] = []
    for j, (expr, desc, at) in enumerate(shape.keys):
        conds = [f"{e} = ?" for e, _, _ in shape.keys[:j]]
        conds.append(f"{expr} {'<' if desc else '>'} ?")
        # The keys fixed by equality stay out of ORDER BY: with them in, SQLite sorts the
        # whole range instead of reading the index in order.
        order = ", ".join(e + (" DESC" if d else "") for e, d, _ in shape.keys[j:])
        branch = f"{base} AND {' AND '.join(conds)} ORDER BY {order} LIMIT ?"
        branches.append(f"SELECT * FROM ({branch})")  # noqa: S608 - validated paths, bound values
        values += base_values
        values += [after[i] for _, _, i in shape.keys[:j]]
        values += [after[at], limit]
    outer = ", ".join(f"{at + 1}" + (" DESC" if desc else "") for _, desc, at in shape.keys)
    return " UNION ALL ".join(branches) + f" ORDER BY {outer} LIMIT ?", [*values, limit]


def compile_count(dialect: Dialect, collection: str, where: Filter) -> tuple[str, list[object]]:
    p = Params(dialect)
    sql = f"SELECT count(*) FROM documents WHERE collection = {p.add(collection)}"  # noqa: S608 - validated paths, bound values
    cond = _compile(where, dialect, p)
    if cond != _TRUE:
        sql += f" AND {cond}"
    return sql, p.values


def index_name(paths: Sequence[Path], *, owner_first: bool) -> str:
    """A stable name for an index definition. The collection is not part of it: an index
    (collection, …) serves every collection, so two collections declaring the same fields
    share one index instead of each writing its own copy."""
    import hashlib

    text = ",".join(".".join(p) for p in paths) + ("|owner" if owner_first else "")
    return "ix_" + hashlib.sha256(text.encode()).hexdigest()[:16]


def index_ddl(
    dialect: Dialect, collection: str, name: str, paths: Sequence[Path], *, owner_first: bool
) -> str:
    """``CREATE INDEX IF NOT EXISTS`` over ``(collection, [uid,] rank, num, txt per path…,
    [uid,] id)``: equality on the paths (and owner) seeks, ORDER BY them scans in order.

    ``collection`` is the first column rather than a partial-index predicate: neither
    database can use a partial index for ``collection = <bound parameter>`` reliably.
    The index serves every collection; ``collection`` is only validated here.
    """
    if not _COLLECTION.fullmatch(collection):
        raise ValueError(f"invalid collection name {collection!r}")
    if not _INDEX_NAME.fullmatch(name):
        raise ValueError(f"invalid index name {name!r}")
    if not paths:
        raise ValueError("an index needs at least one path")
    cols = ["collection"]
    if owner_first:
        cols.append("uid")  # no COLLATE: equality must match the column's own collation
    for path in paths:
        fld = _field(dialect, path)
        if fld.column is not None:
            cols.append(fld.txt)
        else:
            cols += (f"({fld.rank})", f"({fld.num})", f"({fld.txt})")
    if not owner_first:
        cols.append("uid" + dialect.collate)
    cols.append("id" + dialect.collate)
    return f'CREATE INDEX IF NOT EXISTS "{name}" ON documents ({", ".join(cols)})'


def search_index_name(path: Path) -> str:
    import hashlib

    return "sx_" + hashlib.sha256(".".join(path).encode()).hexdigest()[:16]


def search_index_ddl(name: str, path: Path) -> str:
    """PostgreSQL: ``CREATE INDEX IF NOT EXISTS`` of the trigram index ``$search`` on
    ``path`` uses (pg_trgm, GIN), on exactly the expression the compiled filter tests.
    Shared by every collection declaring the path, like :func:`index_ddl`'s."""
    if not _INDEX_NAME.fullmatch(name):
        raise ValueError(f"invalid index name {name!r}")
    if _field(POSTGRES, path).column is not None:
        raise ValueError("id and uid take no search index")
    return (
        f'CREATE INDEX IF NOT EXISTS "{name}" ON documents USING gin (({_pg_search_expr(path)}) gin_trgm_ops)'
    )
