"""Fuzzing the client query input: ``where``, ``orderBy``, ``fields``, cursors, and the
``update`` operators, from arbitrary JSON and from near-valid generated input.

Properties:

- parsing returns a value or raises :class:`InvalidArgument`; nothing else escapes;
- whatever parses compiles for both dialects to SQL whose text holds no client value
  (every one is a bound parameter) and runs on a real database (SQLite in memory and
  PostgreSQL) without a database error, giving what the reference evaluator gives;
- a forged cursor position is refused or runs; a patch applies or is refused, and what it
  produces can be stored as JSON unchanged.

Reproducible and bounded for CI: every test is derandomized with a fixed example budget
(no example database), so a run costs the same and fails the same way every time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minibase.data import cursor
from minibase.data.patch import parse_patch
from minibase.data.query import parse_fields, parse_order_by, parse_where
from minibase.data.sql import SQLITE, compile_query
from minibase.errors import InvalidArgument
from tests.support.sql import (
    COLLECTION,
    JSON,
    JSON_SCALARS,
    ROWS,
    Backend,
    PostgresBackend,
    Row,
    SQLiteBackend,
    assert_only_bound,
    check_differential,
    check_placeholders,
    compile_everywhere,
)

CI = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    # One backend for all examples of a test: `load` replaces the whole table each time.
    if request.param == "sqlite":
        lite = SQLiteBackend()
        yield lite
        lite.conn.close()
    else:
        pg = PostgresBackend(request.getfixturevalue("pg_url"))
        yield pg
        pg.close()


# ------------------------------------------------------------------ strategies


# Values on the edges of what the parser accepts.
EDGE_STRINGS = [
    "",
    "a",
    "é",
    "😀",
    "\U0010ffff",
    "a\U0010ffff",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "'; DROP TABLE documents; --",
    "$1",
    "?",
    "x" * 1024,
    "x" * 1025,
]
EDGE_NUMBERS = [2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64, 10**400, 5e-324, -0.0, 1e308, 2**53 + 1]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from(EDGE_NUMBERS),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(EDGE_STRINGS),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "a",
            "n",
            "o.a",
            "o.b",
            "id",
            "uid",
            "_x",
            "a" * 64,
            "a" * 65,
            "1a",
            "a..b",
            "a.",
            ".".join("s" * 8),
            ".".join("s" * 9),
            "",
            "$and",
            "$or",
            "$nor",
            "$where",
        ]
    ),
    st.text(max_size=6),
)
OPERATORS = st.sampled_from(
    [
        *("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$prefix", "$contains"),
        *("$regex", "$not", "", "eq", "a"),
    ]
)
OPERANDS = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(st.text(max_size=3), SCALARS, max_size=2)
)


def _wheres(depth: int) -> st.SearchStrategy[Any]:
    field_value = st.one_of(SCALARS, st.dictionaries(OPERATORS, OPERANDS, max_size=3))
    if depth == 0:
        return st.dictionaries(KEYS, field_value, max_size=3)
    sub = st.lists(_wheres(depth - 1), max_size=3)
    return st.dictionaries(KEYS, st.one_of(field_value, sub), max_size=3)


NEAR_WHERE = _wheres(3)

# Valid where objects (every value in range), so compile-and-run sees many of them.
OK_STRINGS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
    st.sampled_from(["", "a", "b", "é", "😀", "\U0010ffff", "a\U0010ffff", "'; --", "x" * 1024]),
)
OK_NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**63 - 1, -(2**63), 2**53 + 1, 5e-324, -0.0, 0.25, 1e308, -1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
)
OK_SCALARS = st.one_of(st.none(), st.booleans(), OK_NUMBERS, OK_STRINGS)
OK_ORDERED = st.one_of(st.booleans(), OK_NUMBERS, OK_STRINGS)
OK_PATHS = st.sampled_from(["a", "b", "n", "o", "o.a", "o.b", "id", "zz"])
OK_CONDITION = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne", "$contains"]), OK_SCALARS),
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), OK_ORDERED),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(OK_SCALARS, max_size=4)),
    st.tuples(st.just("$exists"), st.booleans()),
    st.tuples(st.just("$prefix"), OK_STRINGS.filter(bool)),
)
OK_FIELD = st.one_of(OK_SCALARS, st.lists(OK_CONDITION, min_size=1, max_size=3).map(dict))
VALID_WHERE = st.recursive(
    st.dictionaries(OK_PATHS, OK_FIELD, max_size=3),
    lambda c: st.dictionaries(
        st.one_of(OK_PATHS, st.sampled_from(["$and", "$or"])),
        st.one_of(OK_FIELD, st.lists(c, min_size=1, max_size=3)),
        max_size=3,
    ).filter(lambda w: all(isinstance(v, list) == k.startswith("$") for k, v in w.items())),
    max_leaves=8,
)
ORDERS = st.one_of(
    st.lists(
        st.one_of(KEYS, st.lists(st.one_of(KEYS, st.sampled_from(["asc", "desc", "ASC", ""])), max_size=3)),
        max_size=6,
    ),
    KEYS,
    JSON,
)
# Well-formed orders over the paths the rows use, for the compile-and-run properties.
VALID_ORDERS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "n", "o", "o.a", "id", "zz"]), st.sampled_from(["asc", "desc"])),
    max_size=3,
    unique_by=lambda k: k[0],
).map(lambda ks: [list(k) for k in ks])


# --------------------------------------------------------------- SQL hygiene


# ------------------------------------------------------------------- parsing


@settings(CI, max_examples=300)
@given(st.one_of(JSON, NEAR_WHERE, VALID_WHERE))
def test_where_parses_or_refuses(where: Any) -> None:
    with contextlib.suppress(InvalidArgument):
        parse_where(where)


@settings(CI, max_examples=200)
@given(ORDERS)
def test_order_by_parses_or_refuses(order_by: Any) -> None:
    try:
        keys = parse_order_by(order_by)
    except InvalidArgument:
        return
    assert len({k.path for k in keys}) == len(keys)


@settings(CI, max_examples=200)
@given(st.one_of(JSON, st.lists(KEYS, max_size=60)), st.dictionaries(st.text(max_size=4), JSON, max_size=4))
def test_fields_parse_or_refuse_and_project(fields: Any, doc: dict[str, Any]) -> None:
    try:
        paths = parse_fields(fields)
    except InvalidArgument:
        return
    from minibase.data.query import project

    out = project({**doc, "id": "a", "uid": "u"}, paths)
    assert out["id"] == "a" and out["uid"] == "u"


# ------------------------------------------------- compile and run everywhere


@settings(CI, max_examples=150)
@given(ROWS, st.one_of(VALID_WHERE, VALID_WHERE, NEAR_WHERE), VALID_ORDERS)
@example(rows=[], where={"a": "'; DROP TABLE documents; --"}, order_by=[])
@example(rows=[], where={"a": {"$prefix": "\U0010ffff"}}, order_by=[])
def test_parsed_where_compiles_and_runs(backend: Backend, rows: list[Row], where: Any, order_by: Any) -> None:
    try:
        f = parse_where(where)
    except InvalidArgument:
        return
    order = parse_order_by(order_by)
    compile_everywhere(f, order)
    check_differential(backend, rows, f, order, 3)


@settings(CI, max_examples=150)
@given(ROWS, VALID_ORDERS, st.lists(JSON_SCALARS | st.sampled_from(EDGE_NUMBERS + EDGE_STRINGS), max_size=20))
def test_forged_cursor_positions_are_refused_or_run(
    backend: Backend, rows: list[Row], order_by: Any, position: list[Any]
) -> None:
    """A cursor is client input: whatever position it decodes to is refused or runs."""
    order = parse_order_by(order_by)
    try:
        after = cursor.decode(cursor.encode(position))
    except (InvalidArgument, TypeError):  # orjson cannot encode it: no client could send it
        return
    backend.load(rows)
    for dialect in {SQLITE, backend.dialect}:
        try:
            sql, params = compile_query(dialect, COLLECTION, parse_where(None), order, 5, after)
        except InvalidArgument:
            continue
        assert_only_bound(sql)
        check_placeholders(dialect, sql, params)
        if dialect is backend.dialect:
            backend.execute(sql, params)


@settings(CI, max_examples=300)
@given(st.one_of(st.text(max_size=40), JSON, st.text(max_size=40).map(lambda t: "c1." + t)))
@example("c1.")
@example("c1.bnVsbA")  # "null"
@example("c1.W10")  # "[]"
def test_cursor_decodes_or_refuses(text: Any) -> None:
    with contextlib.suppress(InvalidArgument):
        assert isinstance(cursor.decode(text), list)


# ------------------------------------------------------------------- patches

PATCH_KEYS = st.one_of(
    st.sampled_from(["n", "f", "tags", "o.p", "o.q.r", "s", "id", "uid", "_version", "a..b", ""]),
    st.text(max_size=4),
)
PATCH_VALUES = st.one_of(
    SCALARS, JSON, st.fixed_dictionaries({"$each": st.one_of(st.lists(SCALARS, max_size=3), JSON)})
)
PATCH_SPEC = st.one_of(
    st.dictionaries(PATCH_KEYS, PATCH_VALUES, max_size=3),
    st.lists(st.one_of(PATCH_KEYS, JSON), max_size=3),
    JSON,
)
STORED = st.fixed_dictionaries(
    {"id": st.just("a"), "uid": st.just("u"), "_version": st.just(3)},
    optional={
        "n": st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, 1e308, -1e308, "1", True, None]),
        "f": st.floats(allow_nan=False, allow_infinity=False),
        "tags": st.lists(st.sampled_from([1, 1.0, True, "x", None, [1], {"a": 1}]), max_size=4),
        "o": st.one_of(
            st.dictionaries(st.sampled_from(["p", "q"]), st.integers(-3, 3), max_size=2), st.integers()
        ),
        "s": st.text(max_size=3),
    },
)


def _storable(value: Any) -> bool:
    """JSON the store writes and reads back unchanged (orjson: 64-bit ints, finite floats)."""
    try:
        return orjson.loads(orjson.dumps(value)) == value
    except TypeError:
        return False


@settings(CI, max_examples=400)
@given(
    st.fixed_dictionaries({}, optional={k: PATCH_SPEC for k in ("set", "unset", "inc", "push", "pull")}),
    STORED,
)
@example(event={"unset": [{}]}, doc={"id": "a", "uid": "u", "_version": 3})  # was a TypeError (500)
@example(event={"unset": [["n"]]}, doc={"id": "a", "uid": "u", "_version": 3})
@example(event={"inc": {"n": 1}}, doc={"id": "a", "uid": "u", "_version": 3, "n": 2**63 - 1})  # past 64 bits
@example(event={"inc": {"n": 1}}, doc={"id": "a", "uid": "u", "_version": 3, "n": 2**64 - 1})  # orjson: 500
@example(event={"inc": {"n": 1e308}}, doc={"id": "a", "uid": "u", "_version": 3, "n": 1e308})  # inf → null
@example(event={"inc": {"n": 10**30}}, doc={"id": "a", "uid": "u", "_version": 3})
def test_patch_applies_or_refuses_and_stays_storable(event: dict[str, Any], doc: dict[str, Any]) -> None:
    try:
        out = parse_patch(event).apply(doc)
    except InvalidArgument:
        return
    assert not set(out) & {"id", "uid", "_version"}
    # What a client can send (JSON) onto what the store holds gives what the store can
    # write back unchanged: no int past 64 bits (orjson refuses), no inf (orjson: null).
    if _storable(event) and _storable(doc):
        assert _storable(out), out
