"""The SQL compiler against the reference evaluator, on real databases.

The differential check is written against a tiny :class:`Backend` protocol; the
``backend`` fixture runs it on SQLite (in memory) and on PostgreSQL (a fresh database with
the store's own ``documents`` table, jsonb bodies, positions decoded as the store does).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibase.data.filters import (
    TRUE,
    And,
    Cmp,
    Contains,
    Exists,
    Filter,
    In,
    Or,
    OrderKey,
    Path,
    Prefix,
    Scalar,
)
from minibase.data.query import parse_where
from minibase.data.sql import (
    POSTGRES,
    SQLITE,
    Params,
    compile_filter,
    compile_query,
    index_ddl,
)
from minibase.errors import InvalidArgument
from tests.support.sql import (
    CLIENT_WHERE,
    COLLECTION,
    FILTERS,
    ORDERS,
    REUSED_BACKEND,
    ROWS,
    Backend,
    PostgresBackend,
    Row,
    SQLiteBackend,
    check_differential,
    check_placeholders,
)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    # Function scope (pg_url is a fresh database per test): the hypothesis tests reuse one
    # backend for all their examples, which is fine as ``load`` replaces the whole table.
    if request.param == "sqlite":
        lite = SQLiteBackend()
        yield lite
        lite.conn.close()
    else:
        pg = PostgresBackend(request.getfixturevalue("pg_url"))
        yield pg
        pg.close()


# --------------------------------------------------------------- generated data


@settings(REUSED_BACKEND, max_examples=200)
@given(ROWS, FILTERS, ORDERS, st.integers(1, 4))
def test_matches_reference(
    backend: Backend, rows: list[Row], where: Filter, order: list[OrderKey], limit: int
) -> None:
    check_differential(backend, rows, where, order, limit)


@settings(REUSED_BACKEND, max_examples=100)
@given(ROWS, CLIENT_WHERE)
def test_parsed_client_where_matches_reference(backend: Backend, rows: list[Row], where: Any) -> None:
    try:
        f = parse_where(where)
    except InvalidArgument:
        return
    check_differential(backend, rows, f, [OrderKey(("n",), True)], 3)


# ------------------------------------------------------------------ unit checks


def test_folding_drops_parameters_of_dropped_parts() -> None:
    # Or(...) is TRUE (ne on a key column with a number), so the bound 1 must go too.
    f = And((Or((Cmp(("a",), "eq", 1), Cmp(("id",), "ne", 5))), Cmp(("b",), "eq", "x")))
    for dialect in (SQLITE, POSTGRES):
        p = Params(dialect)
        sql = compile_filter(f, dialect, p)
        assert p.values == ["x"]
        check_placeholders(dialect, sql, p.values)
        p = Params(dialect)
        assert compile_filter(And((Cmp(("a",), "eq", 1), Contains(("id",), 1))), dialect, p) == "1=0"
        assert p.values == []


def test_where_values_are_never_in_sql_text() -> None:
    evil = "x' OR 1=1 --"
    f = Or((Cmp(("a",), "eq", evil), Prefix(("b",), evil), In(("id",), (evil, "y")), Contains(("c",), evil)))
    for dialect in (SQLITE, POSTGRES):
        sql, params = compile_query(dialect, evil, f, [OrderKey(("a",))], 10, None)
        assert evil not in sql
        assert params.count(evil) == 5


@pytest.mark.parametrize("path", [("a'",), ("a.b",), ("",), ("1a",), ("a",) * 9, ("a b",), (), ("a}",)])
def test_compiler_refuses_unchecked_paths(path: Path) -> None:
    for dialect in (SQLITE, POSTGRES):
        with pytest.raises(InvalidArgument):
            compile_filter(Exists(path), dialect, Params(dialect))


def test_postgres_sql_shape() -> None:
    f = And((Cmp(("a", "b"), "gte", 2), Prefix(("t",), "ab"), Exists(("x",))))
    sql, params = compile_query(POSTGRES, "t", f, [OrderKey(("a", "b"), True)], 5, [2, 3, "", "u", "i"])
    check_placeholders(POSTGRES, sql, params)
    assert "body #> '{a,b}'" in sql
    assert "jsonb_typeof(body #> '{a,b}')" in sql
    assert ' COLLATE "C"' in sql
    assert params[0] == "t"
    assert params[-1] == 5
    assert "ab" in params and "ac" in params


@pytest.mark.parametrize(
    "after",
    [
        [],
        [2, 1, "", "u"],
        [2, 1, "", "u", "i", "x"],
        [True, 1, "", "u", "i"],
        [2, "1", "", "u", "i"],
        [2, 1, 5, "u", "i"],
        [2, 1, "", None, "i"],
        [2, 2**64, "", "u", "i"],
        [2, float("inf"), "", "u", "i"],
        [2, 1, "", "u", "i\ud800"],
        [2, 1, "", "u", "i\x00"],  # owner and id: no control characters (issue 18.6)
        [2, 1, "", "u\n", "i"],
        [2, 1, "", "u", "\x7f"],
        [2, 1, "a\x00", "u", "i"],  # no stored string holds U+0000
        [2, 1, "", "u", {"i": 1}],
        "21ui",
    ],
)
def test_bad_cursor_positions(after: Any) -> None:
    with pytest.raises(InvalidArgument, match="cursor"):
        compile_query(SQLITE, "t", TRUE, [OrderKey(("n",))], 10, after)


def test_cursor_positions_per_dialect() -> None:
    # jsonb numbers are numeric: an integral 1e30 comes back as a big int, fine to bind there.
    big = [2, 10**30, "", "u", "i"]
    compile_query(POSTGRES, "t", TRUE, [OrderKey(("n",))], 10, big)
    with pytest.raises(InvalidArgument, match="cursor"):
        compile_query(SQLITE, "t", TRUE, [OrderKey(("n",))], 10, big)


def test_mixed_directions_page_through(backend: Backend) -> None:
    rows: list[Row] = [
        (COLLECTION, {"id": f"d{i}", "uid": f"u{i % 2}", "n": i % 3, "s": "xyz"[i % 3 - 1]})
        for i in range(20)
    ]
    order = [OrderKey(("n",), True), OrderKey(("s",)), OrderKey(("id",), True)]
    for limit in (1, 3, 7, 50):
        check_differential(backend, rows, TRUE, order, limit)


def test_extreme_numbers_page_through(backend: Backend) -> None:
    # jsonb keeps 1e20 as the integer 100000000000000000000: its position must still
    # round-trip through a cursor (orjson stops at 64 bits) and resume exactly there.
    values: list[Scalar] = [1e20, 2**63 - 1, -(2**63), 2**53 + 1, 2**53, 0.25, -0.0, 0, 1e20, -1.5]
    rows: list[Row] = [(COLLECTION, {"id": f"d{i}", "uid": "u", "n": v}) for i, v in enumerate(values)]
    for desc in (False, True):
        for limit in (1, 2, 3):
            check_differential(backend, rows, TRUE, [OrderKey(("n",), desc)], limit)
            check_differential(backend, rows, Cmp(("n",), "gte", 2**53), [OrderKey(("n",), desc)], limit)


# ---------------------------------------------------------------------- indexes


def _plan(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> str:
    return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


@pytest.fixture
def indexed() -> Iterator[sqlite3.Connection]:
    """The store's own table shape (WITHOUT ROWID), with statistics as ANALYZE leaves them."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(
        "CREATE TABLE documents (collection TEXT NOT NULL, uid TEXT NOT NULL, id TEXT NOT NULL,"
        " version INTEGER NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, body TEXT NOT NULL,"
        " PRIMARY KEY (collection, uid, id)) WITHOUT ROWID"
    )
    conn.execute(index_ddl(SQLITE, COLLECTION, "ix_n", [("n",)], owner_first=False))
    conn.execute(index_ddl(SQLITE, COLLECTION, "ix_owner_ob", [("o", "b")], owner_first=True))
    # IF NOT EXISTS: creating it again is harmless.
    conn.execute(index_ddl(SQLITE, COLLECTION, "ix_n", [("n",)], owner_first=False))
    docs = [{"id": f"d{i}", "uid": f"u{i % 20}", "n": i, "o": {"b": str(i)}} for i in range(400)]
    conn.executemany(
        "INSERT INTO documents VALUES (?, ?, ?, 1, '', '', ?)",
        [(c, d["uid"], d["id"], orjson.dumps(d).decode()) for c in (COLLECTION, "other") for d in docs],
    )
    conn.execute("ANALYZE")
    yield conn
    conn.close()


@pytest.mark.parametrize("value", [7, "7", True])
def test_index_serves_equality(indexed: sqlite3.Connection, value: Scalar) -> None:
    sql, params = compile_query(SQLITE, COLLECTION, Cmp(("n",), "eq", value), [], 10, None)
    assert "USING INDEX ix_n (collection=? AND <expr>=? AND <expr>=?" in _plan(indexed, sql, params)


def _no_full_sort(plan: str, desc: bool) -> None:
    # Descending keys still break ties by uid, id ascending: the index gives the key
    # order and SQLite sorts only runs of equal keys ("RIGHT PART"), never everything.
    if desc:
        assert "TEMP B-TREE FOR ORDER BY" not in plan
    else:
        assert "TEMP B-TREE" not in plan


def test_index_serves_order_by_and_cursor(indexed: sqlite3.Connection) -> None:
    for desc in (False, True):
        order = [OrderKey(("n",), desc)]
        sql, params = compile_query(SQLITE, COLLECTION, TRUE, order, 10, None)
        plan = _plan(indexed, sql, params)
        assert "USING INDEX ix_n (collection=?)" in plan
        _no_full_sort(plan, desc)
        rows = indexed.execute(sql, params).fetchall()
        assert [r[1] for r in rows] == (list(range(10)) if not desc else list(range(399, 389, -1)))
        sql, params = compile_query(SQLITE, COLLECTION, TRUE, order, 10, list(rows[-1][:5]))
        plan = _plan(indexed, sql, params)
        # A cursor page is one branch per sort column, each a seek (equality prefix + one
        # range) read in index order; only the merge of their few rows is sorted.
        lines = plan.split(" | ")
        searches = [line for line in lines if line.startswith("SEARCH")]
        assert len(searches) == 5
        assert all(
            line.startswith("SEARCH documents USING INDEX ix_n (collection=? AND <expr>") for line in searches
        )
        for i, line in enumerate(lines):
            if "TEMP B-TREE" in line:
                assert lines[i - 1].startswith("SCAN (subquery"), plan
        assert [r[1] for r in indexed.execute(sql, params).fetchall()] == (
            list(range(10, 20)) if not desc else list(range(389, 379, -1))
        )


def test_owner_first_index_serves_owner_queries(indexed: sqlite3.Connection) -> None:
    owner = Cmp(("uid",), "eq", "u3")
    sql, params = compile_query(SQLITE, COLLECTION, And((owner, Prefix(("o", "b"), "1"))), [], 10, None)
    assert (
        "USING INDEX ix_owner_ob (collection=? AND uid=? AND <expr>=? AND <expr>=? AND <expr>>? AND <expr><?)"
        in (_plan(indexed, sql, params))
    )
    sql, params = compile_query(SQLITE, COLLECTION, owner, [OrderKey(("o", "b"), True)], 10, None)
    plan = _plan(indexed, sql, params)
    assert "USING INDEX ix_owner_ob (collection=? AND uid=?)" in plan
    _no_full_sort(plan, True)
    got = [r[4] for r in indexed.execute(sql, params)]
    assert got == sorted((f"d{i}" for i in range(3, 400, 20)), key=lambda s: s[1:], reverse=True)[:10]


def test_index_ddl_validates_names() -> None:
    with pytest.raises(ValueError, match="index name"):
        index_ddl(SQLITE, COLLECTION, 'x"; DROP TABLE documents; --', [("n",)], owner_first=False)
    with pytest.raises(ValueError, match="collection"):
        index_ddl(SQLITE, "no'pe", "ix", [("n",)], owner_first=False)
    with pytest.raises(ValueError, match="at least one path"):
        index_ddl(SQLITE, COLLECTION, "ix", [], owner_first=False)
    with pytest.raises(InvalidArgument):
        index_ddl(POSTGRES, COLLECTION, "ix", [("n'",)], owner_first=False)
    ddl = index_ddl(POSTGRES, COLLECTION, "ix", [("a", "b"), ("id",)], owner_first=True)
    assert ddl.startswith('CREATE INDEX IF NOT EXISTS "ix" ON documents (collection, uid, (CASE')
    assert ddl.endswith('id COLLATE "C", id COLLATE "C")')
