"""The SQL compiler against the reference evaluator, on real databases.

The differential check is written against a tiny :class:`Backend` protocol; the
``backend`` fixture runs it on SQLite (in memory) and on PostgreSQL (a fresh database with
the store's own ``documents`` table, jsonb bodies, positions decoded as the store does).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minibase.data import cursor
from minibase.data.filters import (
    FALSE,
    TRUE,
    And,
    Cmp,
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
from minibase.data.query import parse_where
from minibase.data.sql import (
    POSTGRES,
    SQLITE,
    Dialect,
    Params,
    compile_count,
    compile_filter,
    compile_query,
    index_ddl,
)
from minibase.errors import InvalidArgument
from minibase.store.postgres import MIGRATIONS
from minibase.store.postgres_docs import init_connection as _init_connection
from minibase.store.postgres_docs import position_value as _position_value
from tests.support.reference import sorted_docs

COLLECTION = "t"

# (collection, document); the document holds its own "id" and "uid", as stored.
Row = tuple[str, dict[str, Any]]


class Backend(Protocol):
    dialect: Dialect

    def load(self, rows: Sequence[Row]) -> None:
        """Replace the ``documents`` table's contents."""

    def execute(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """Rows as tuples; position values must survive a JSON round trip."""


class SQLiteBackend:
    dialect = SQLITE

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.execute(
            "CREATE TABLE documents (collection TEXT, uid TEXT, id TEXT, version INTEGER, created TEXT,"
            " updated TEXT, body TEXT, PRIMARY KEY (collection, uid, id))"
        )

    def load(self, rows: Sequence[Row]) -> None:
        self.conn.execute("DELETE FROM documents")
        self.conn.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, 1, '', '', ?)",
            [(col, doc["uid"], doc["id"], orjson.dumps(doc).decode()) for col, doc in rows],
        )

    def execute(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()


class PostgresBackend:
    """The store's own schema (its migrations, so ``COLLATE "C"`` keys and a jsonb body) in
    a fresh database, on one connection with the store's numeric codec, driven on a loop of
    its own so that it stays usable across hypothesis examples."""

    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.conn: asyncpg.Connection = self.loop.run_until_complete(self._connect(url))
        except BaseException:
            self.loop.close()
            raise

    @staticmethod
    async def _connect(url: str) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(url)
        try:
            for _, sql in MIGRATIONS:
                await conn.execute(sql)
            await _init_connection(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    def load(self, rows: Sequence[Row]) -> None:
        async def load() -> None:
            async with self.conn.transaction():
                await self.conn.execute("TRUNCATE documents")
                await self.conn.executemany(
                    "INSERT INTO documents VALUES ($1, $2, $3, 1, '', '', $4::text::jsonb)",
                    [(col, doc["uid"], doc["id"], orjson.dumps(doc).decode()) for col, doc in rows],
                )

        self.loop.run_until_complete(load())

    def execute(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        rows = self.loop.run_until_complete(self.conn.fetch(sql, *params))
        # As PostgresStore.query: numbers arrive as int/float (the codec), and ints beyond
        # 64 bits become floats (the body column, text, passes through unchanged).
        return [tuple(_position_value(v) for v in row) for row in rows]

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.conn.close())
        finally:
            self.loop.close()


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


# The backend fixture outlives single examples on purpose (see above).
REUSED_BACKEND = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def fetch_pages(
    backend: Backend, where: Filter, order: Sequence[OrderKey], limit: int
) -> list[tuple[str, str]]:
    """(uid, id) of every match, page by page through cursors (JSON round-tripped)."""
    width = 3 * len(order) + 2
    out: list[tuple[str, str]] = []
    after: list[Any] | None = None
    for _ in range(1000):
        sql, params = compile_query(backend.dialect, COLLECTION, where, order, limit, after)
        check_placeholders(backend.dialect, sql, params)
        rows = backend.execute(sql, params)
        assert len(rows) <= limit
        for row in rows:
            assert len(row) == width + 1
            out.append((row[width - 2], row[width - 1]))
        if len(rows) < limit:
            return out
        after = cursor.decode(cursor.encode(list(rows[-1][:width])))
    raise AssertionError("paging did not end")


def check_differential(
    backend: Backend, rows: Sequence[Row], where: Filter, order: Sequence[OrderKey], limit: int
) -> None:
    backend.load(rows)
    docs = [doc for col, doc in rows if col == COLLECTION]
    expected = [(d["uid"], d["id"]) for d in sorted_docs(docs, where, order)]
    assert fetch_pages(backend, where, order, limit) == expected
    sql, params = compile_count(backend.dialect, COLLECTION, where)
    check_placeholders(backend.dialect, sql, params)
    assert backend.execute(sql, params) == [(len(expected),)]


def check_placeholders(dialect: Dialect, sql: str, params: Sequence[object]) -> None:
    if dialect is SQLITE:
        assert sql.count("?") == len(params)
    else:
        assert sorted({int(n) for n in re.findall(r"\$(\d+)", sql)}) == list(range(1, len(params) + 1))


# --------------------------------------------------------------- generated data

STRINGS = [
    "",
    "a",
    "A",
    "ab",
    "b",
    "é",
    "😀",
    "\U0010ffff",
    "a\U0010ffff",
    "\ud7ff",
    "\ud7ffz",
    "\ue000",
    "1",
]
SCALARS: st.SearchStrategy[Scalar] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([2**53 + 1, 2**63 - 1, -(2**63)]),
    # Exactly representable, so every JSON parser reads them back bit for bit.
    st.sampled_from([-1.5, -0.0, 0.0, 0.25, 1.0, 3.0, 1e20]),
    st.sampled_from(STRINGS),
)
VALUES = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["a", "b"]), c, max_size=2),
    max_leaves=5,
)
FIELDS = st.dictionaries(st.sampled_from(["a", "b", "n", "o"]), VALUES, max_size=4)
ROWS: st.SearchStrategy[list[Row]] = st.lists(
    st.tuples(
        st.sampled_from([COLLECTION, COLLECTION, "other"]),
        st.sampled_from(["u1", "u2", "ü"]),
        st.sampled_from(["a", "b", "c", "B", "é", "😀", "a1"]),
        FIELDS,
    ),
    max_size=12,
    unique_by=lambda r: r[:3],
).map(lambda rs: [(col, {**fields, "id": id_, "uid": uid}) for col, uid, id_, fields in rs])

PATHS: st.SearchStrategy[Path] = st.sampled_from(
    [("a",), ("b",), ("n",), ("o",), ("o", "a"), ("o", "b"), ("a", "b"), ("id",), ("uid",), ("zz",)]
)
LEAVES: st.SearchStrategy[Filter] = st.one_of(
    st.builds(Cmp, PATHS, st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), SCALARS),
    st.builds(In, PATHS, st.lists(SCALARS, max_size=4).map(tuple)),
    st.builds(Exists, PATHS, st.booleans()),
    st.builds(Prefix, PATHS, st.sampled_from(STRINGS)),
    st.builds(Contains, PATHS, SCALARS),
    st.sampled_from([TRUE, FALSE]),
)
FILTERS: st.SearchStrategy[Filter] = st.recursive(
    LEAVES,
    lambda c: st.one_of(
        st.builds(And, st.lists(c, max_size=3).map(tuple)),
        st.builds(Or, st.lists(c, max_size=3).map(tuple)),
        st.builds(Not, c),
    ),
    max_leaves=6,
)
ORDERS = st.lists(st.builds(OrderKey, PATHS, st.booleans()), max_size=3, unique_by=lambda k: k.path)


@settings(REUSED_BACKEND, max_examples=200)
@given(ROWS, FILTERS, ORDERS, st.integers(1, 4))
def test_matches_reference(
    backend: Backend, rows: list[Row], where: Filter, order: list[OrderKey], limit: int
) -> None:
    check_differential(backend, rows, where, order, limit)


CLIENT_WHERE = st.dictionaries(
    st.sampled_from(["a", "n", "o.a", "id", "$or", "$and"]),
    st.one_of(
        SCALARS,
        st.dictionaries(
            st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]),
            st.one_of(SCALARS, st.lists(SCALARS, max_size=3)),
            max_size=2,
        ),
        st.lists(st.dictionaries(st.sampled_from(["a", "n"]), SCALARS, max_size=2), max_size=2),
    ),
    max_size=3,
)


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
