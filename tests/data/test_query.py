from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibase.data.filters import (
    TRUE,
    And,
    Cmp,
    Contains,
    Exists,
    In,
    Not,
    Or,
    OrderKey,
    Prefix,
)
from minibase.data.query import parse_fields, parse_order_by, parse_where, project
from minibase.data.sql import POSTGRES, SQLITE, Params, compile_filter
from minibase.errors import InvalidArgument

# ------------------------------------------------------------------------- where

GOOD_WHERE: list[tuple[Any, Any]] = [
    (None, TRUE),
    ({}, TRUE),
    ({"done": False}, Cmp(("done",), "eq", False)),
    ({"a.b": 1}, Cmp(("a", "b"), "eq", 1)),
    ({"a": None}, Cmp(("a",), "eq", None)),
    ({"a": 1.5}, Cmp(("a",), "eq", 1.5)),
    ({"id": "x"}, Cmp(("id",), "eq", "x")),
    ({"_version": {"$gt": 1}}, Cmp(("_version",), "gt", 1)),
    ({"n": {"$gte": 3, "$lt": 10}}, And((Cmp(("n",), "gte", 3), Cmp(("n",), "lt", 10)))),
    ({"n": {"$ne": None}}, Cmp(("n",), "ne", None)),
    ({"n": {"$eq": "x"}}, Cmp(("n",), "eq", "x")),
    ({"n": {"$lte": True}}, Cmp(("n",), "lte", True)),
    ({"t": {"$in": ["a", 1, None]}}, In(("t",), ("a", 1, None))),
    ({"t": {"$in": []}}, In(("t",), ())),
    ({"t": {"$nin": ["a"]}}, Not(In(("t",), ("a",)))),
    ({"t": {"$exists": False}}, Exists(("t",), False)),
    ({"t": {"$prefix": "ab"}}, Prefix(("t",), "ab")),
    ({"tags": {"$contains": "x"}}, Contains(("tags",), "x")),
    ({"$or": [{"a": 1}, {"b": 2}]}, Or((Cmp(("a",), "eq", 1), Cmp(("b",), "eq", 2)))),
    ({"$and": [{"a": 1}], "b": 2}, And((Cmp(("a",), "eq", 1), Cmp(("b",), "eq", 2)))),
    ({"$or": [{}]}, TRUE),
    ({"a.b.c.d.e.f.g.h": 1}, Cmp(("a", "b", "c", "d", "e", "f", "g", "h"), "eq", 1)),
    ({"x" * 64: "é😀"}, Cmp(("x" * 64,), "eq", "é😀")),
    ({"a": "x" * 1024}, Cmp(("a",), "eq", "x" * 1024)),
    ({"a": 2**63 - 1}, Cmp(("a",), "eq", 2**63 - 1)),
]


@pytest.mark.parametrize(("where", "expected"), GOOD_WHERE)
def test_parse_where_good(where: Any, expected: Any) -> None:
    assert parse_where(where) == expected


def _nested(depth: int) -> dict[str, Any]:
    where: dict[str, Any] = {"a": 1}
    for _ in range(depth - 1):
        where = {"$and": [where]}
    return where


BAD_WHERE: list[tuple[Any, str]] = [
    ("x", "where: must be an object"),
    ([], "where: must be an object"),
    ({"uid": "u"}, "the owner is set by the server; use the `owner` key"),
    ({"$or": [{"uid": {"$ne": "u"}}]}, "uid: the owner is set by the server"),
    ({"$and": {"a": 1}}, "where.$and: needs a non-empty array"),
    ({"$or": []}, "where.$or: needs a non-empty array"),
    ({"$or": [1]}, "where.$or[0]: must be an object"),
    ({"$or": [{}] * 51}, "where.$or: at most 50 items"),
    ({"$nor": [{"a": 1}]}, "unknown operator '$nor'"),
    ({"$where": "1"}, "unknown operator '$where'"),
    ({"a": {"$regex": "x"}}, "where.a: unknown operator '$regex'"),
    ({"a": {"b": 1}}, "where.a: objects are not comparison values; use a dotted path (a.b)"),
    ({"a": {"$gt": 1, "b": 2}}, "where.a: objects are not comparison values"),
    ({"a": {}}, "where.a: empty object"),
    ({"a": [1]}, "where.a: arrays are not comparison values; use $contains"),
    ({"a": {"$eq": [1]}}, "where.a.$eq: arrays are not comparison values; use $contains"),
    ({"a": {"$ne": {"x": 1}}}, "where.a.$ne: objects are not comparison values"),
    ({"a": {"$contains": [1]}}, "where.a.$contains: arrays"),
    ({"a": {"$gt": None}}, "where.a.$gt: needs a boolean, number or string, not null"),
    ({"a": {"$lte": [1]}}, "where.a.$lte: arrays"),
    ({"a": {"$in": "x"}}, "where.a.$in: needs an array of values"),
    ({"a": {"$nin": {"x": 1}}}, "where.a.$nin: needs an array of values"),
    ({"a": {"$in": [1, [1]]}}, "where.a.$in[1]: arrays"),
    ({"a": {"$in": list(range(101))}}, "where.a.$in: at most 100 values"),
    ({"a": {"$exists": 1}}, "where.a.$exists: needs true or false"),
    ({"a": {"$prefix": ""}}, "where.a.$prefix: needs a non-empty string"),
    ({"a": {"$prefix": 1}}, "where.a.$prefix: needs a non-empty string"),
    ({"a": math.nan}, "where.a: numbers must be finite"),
    ({"a": {"$gt": math.inf}}, "where.a.$gt: numbers must be finite"),
    ({"a": 2**63}, "where.a: integer 9223372036854775808 is out of the 64-bit range"),
    ({"a": -(2**63) - 1}, "out of the 64-bit range"),
    ({"a": "x" * 1025}, "where.a: strings are limited to 1024 characters"),
    ({"a": "a\x00"}, "where.a: strings must not contain \\u0000"),
    ({"a": {"$prefix": "\ud800"}}, "where.a.$prefix: string is not valid Unicode"),
    ({"1a": 1}, "where: field path '1a' is not valid"),
    ({"a..b": 1}, "field path 'a..b' is not valid"),
    ({"": 1}, "field path '' is not valid"),
    ({"a-b": 1}, "field path 'a-b' is not valid"),
    ({"a.": 1}, "field path 'a.' is not valid"),
    ({"x" * 65: 1}, "is not valid"),
    ({"a.b.c.d.e.f.g.h.i": 1}, "has more than 8 segments"),
    ({1: 2}, "where: a field path must be a string, not 1"),
    (_nested(9), "nested deeper than 8 levels"),
    ({f"f{i}": 1 for i in range(101)}, "where: more than 100 conditions"),
    ({"a": {"$in": [1]}, "b": {"x": object()}}, "where.b: objects are not comparison values"),
    ({"a": object()}, "where.a: unsupported value object"),
    ({"a": 10**5000}, "where.a: integer a huge integer is out of the 64-bit range"),
    ({10**5000: 1}, "where: a field path must be a string, not a huge integer"),
    ({"$or": [{(1, 2): 1}]}, "where.$or[0]: a field path must be a string, not tuple"),
    # Cost bounds (issue 18: 97 $contains under $or held a SQLite server 6 s).
    ({"$or": [{"t": {"$contains": i}} for i in range(11)]}, "where: more than 10 $contains conditions"),
    ({"$and": [{"a": {"$contains": 1}}] * 11}, "where: more than 10 $contains conditions"),
    ({f"f{i}": {"$in": list(range(100))} for i in range(11)}, "where: more than 1000 comparison values"),
    ({f"f{i}": {"$nin": list(range(100))} for i in range(10)} | {"x": 1}, "more than 1000 comparison values"),
]


@pytest.mark.parametrize(("where", "message"), BAD_WHERE)
def test_parse_where_bad(where: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_where(where)
    assert message in info.value.message


def test_parse_where_nesting_at_the_limit() -> None:
    assert parse_where(_nested(8)) == Cmp(("a",), "eq", 1)
    assert parse_where({f"f{i}": 1 for i in range(100)}) != TRUE


def test_cost_bounds_at_the_limit_and_repeats_merge() -> None:
    ten = parse_where({"$or": [{"t": {"$contains": i}} for i in range(10)]})
    assert ten == Or(tuple(Contains(("t",), i) for i in range(10)))
    assert parse_where({f"f{i}": {"$in": list(range(100))} for i in range(10)}) != TRUE
    # A repeated condition runs once; 1 and true stay apart (JSON types differ).
    assert parse_where({"$or": [{"a": 1}, {"a": 1}, {"a": True}]}) == Or(
        (Cmp(("a",), "eq", 1), Cmp(("a",), "eq", True))
    )
    assert parse_where({"$and": [{"a": {"$contains": "x"}}] * 5}) == Contains(("a",), "x")


def test_cost_bound_errors_name_the_limit() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_where({"$or": [{"t": {"$contains": i}} for i in range(11)]})
    assert info.value.details == {"max": 10, "path": "where"}


def test_long_keys_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_where({"-" * 10_000: 1})
    assert len(info.value.message) < 300


# ---------------------------------------------------------------------- order by

GOOD_ORDER: list[tuple[Any, tuple[OrderKey, ...]]] = [
    (None, ()),
    ([], ()),
    ("n", (OrderKey(("n",)),)),
    (["n", "desc"], (OrderKey(("n",), True),)),
    (["n", "asc"], (OrderKey(("n",)),)),
    (["a", "b"], (OrderKey(("a",)), OrderKey(("b",)))),
    ([["n", "desc"], ["t"]], (OrderKey(("n",), True), OrderKey(("t",)))),
    ([["a.b", "desc"], "id"], (OrderKey(("a", "b"), True), OrderKey(("id",)))),
    (
        [["a", "asc"], ["b", "desc"], "c", ["d"], ["e", "asc"]],
        tuple(OrderKey((c,), c == "b") for c in "abcde"),
    ),
]


@pytest.mark.parametrize(("order_by", "expected"), GOOD_ORDER)
def test_parse_order_by_good(order_by: Any, expected: tuple[OrderKey, ...]) -> None:
    assert parse_order_by(order_by) == expected


BAD_ORDER: list[tuple[Any, str]] = [
    (5, "orderBy: must be an array"),
    ({"n": "asc"}, "orderBy: must be an array"),
    ([["uid", "asc"]], "orderBy[0]: uid: the owner is set by the server"),
    ("uid", "the owner is set by the server"),
    ([["n", "up"]], 'orderBy[0]: direction must be "asc" or "desc", not \'up\''),
    ([["n", "DESC"]], "direction must be"),
    ([["n", 1]], "direction must be"),
    ([["n", "desc"], ["n"]], "orderBy[1]: n is already in orderBy"),
    (["a", "b", "c", "d", "e", "f"], "orderBy: at most 5 keys"),
    ([[]], 'orderBy[0]: must be a field or a [field, "asc"|"desc"] pair'),
    ([["a", "asc", "x"]], "orderBy[0]: must be a field"),
    ([1], "orderBy[0]: must be a field"),
    ([[1, "asc"]], "orderBy[0]: a field path must be a string"),
    ([["a b"]], "orderBy[0]: field path 'a b' is not valid"),
]


@pytest.mark.parametrize(("order_by", "message"), BAD_ORDER)
def test_parse_order_by_bad(order_by: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_order_by(order_by)
    assert message in info.value.message


# ------------------------------------------------------------------------ fields


def test_parse_fields() -> None:
    assert parse_fields(None) is None
    assert parse_fields([]) == ()
    assert parse_fields(["a", "b.c", "a", "uid"]) == (("a",), ("b", "c"), ("uid",))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("a", "fields: must be an array"),
        ([1], "fields[0]: a field path must be a string"),
        (["ok", "no way"], "fields[1]: field path 'no way' is not valid"),
        ([f"f{i}" for i in range(51)], "fields: at most 50 paths"),
    ],
)
def test_parse_fields_bad(fields: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_fields(fields)
    assert message in info.value.message


DOC = {"id": "x", "uid": "u", "a": 1, "b": {"c": 2, "d": {"e": 3}}, "n": None, "arr": [{"c": 1}]}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (None, DOC),
        ([], {"id": "x", "uid": "u"}),
        (["a", "b.c"], {"id": "x", "uid": "u", "a": 1, "b": {"c": 2}}),
        (["b.d.e", "n"], {"id": "x", "uid": "u", "b": {"d": {"e": 3}}, "n": None}),
        (["b.c", "b"], {"id": "x", "uid": "u", "b": DOC["b"]}),
        (["b", "b.c"], {"id": "x", "uid": "u", "b": DOC["b"]}),
        (["b.x", "a.x", "arr.c", "zz"], {"id": "x", "uid": "u"}),
        (["id", "uid"], {"id": "x", "uid": "u"}),
    ],
)
def test_project(fields: Any, expected: dict[str, Any]) -> None:
    before = repr(DOC)
    assert project(DOC, parse_fields(fields)) == expected
    assert repr(DOC) == before


# --------------------------------------------------------- arbitrary client input

_KEYS = st.one_of(
    st.sampled_from(
        [
            *("a", "b.c", "uid", "id", "$and", "$or", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"),
            *("$nin", "$exists", "$prefix", "$contains", "$x", "asc", "desc", "a.b.c.d.e.f.g.h.i", "1x", ""),
        ]
    ),
    st.text(max_size=6),
)
_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=8),
        st.sampled_from(["asc", "desc", "a", "uid", "\ud800", "a\x00", "x" * 1100, 10**400, 2**63]),
    ),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_only_invalid_argument_escapes(value: Any) -> None:
    for parse in (parse_where, parse_order_by, parse_fields):
        with contextlib.suppress(InvalidArgument):
            parse(value)
    try:
        f = parse_where(value)
    except InvalidArgument:
        return
    for dialect in (SQLITE, POSTGRES):
        compile_filter(f, dialect, Params(dialect))
