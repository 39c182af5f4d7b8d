"""Helpers shared by tests (from tests/data/test_sql.py)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import asyncpg
import orjson
from hypothesis import HealthCheck, settings
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
from minibase.data.sql import (
    POSTGRES,
    SQLITE,
    Dialect,
    compile_count,
    compile_query,
)
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


# Anything JSON can carry, and a few things only a Python caller could pass (NaN, inf,
# integers past 64 bits): the parsers promise InvalidArgument for those too.
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
)


JSON = st.recursive(
    JSON_SCALARS,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=15,
)


_LITERAL = re.compile(r"'(?:[^']|'')*'")


_SEG = r"[A-Za-z_][A-Za-z0-9_]{0,63}"


_PATH_LITERAL = re.compile(rf"'\$(?:\.{_SEG}){{1,8}}'|'\{{{_SEG}(?:,{_SEG}){{0,7}}\}}'")


_TYPE_LITERALS = {
    f"'{t}'"
    for t in (
        "integer",
        "real",
        "text",
        "true",
        "false",
        "array",
        "object",
        "null",
        "number",
        "string",
        "boolean",
        "",
        "[null]",
    )
}


_NUMBER = re.compile(r"(?<![\w$.])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def assert_only_bound(sql: str) -> None:
    """The SQL text holds no client value: its only string literals are JSON paths and type
    names, and its only numbers are small constants (ranks, ORDER BY column positions)."""
    for lit in _LITERAL.findall(sql):
        assert lit in _TYPE_LITERALS or _PATH_LITERAL.fullmatch(lit), lit
    for num in _NUMBER.findall(_LITERAL.sub("''", sql)):
        assert num.isdigit() and int(num) < 64, num


def client_values(f: Filter) -> Iterator[object]:
    if isinstance(f, Cmp | Contains):
        yield f.value
    elif isinstance(f, In):
        yield from f.values
    elif isinstance(f, Prefix):
        yield f.prefix
    elif isinstance(f, And | Or):
        for item in f.items:
            yield from client_values(item)
    elif isinstance(f, Not):
        yield from client_values(f.item)


def compile_everywhere(f: Filter, order: tuple[OrderKey, ...]) -> None:
    """Both dialects: only bound values, placeholders numbered right, every value bound."""
    for dialect in (SQLITE, POSTGRES):
        for sql, params in (
            compile_query(dialect, COLLECTION, f, order, 7, None),
            compile_count(dialect, COLLECTION, f),
        ):
            assert_only_bound(sql)
            check_placeholders(dialect, sql, params)
            for v in client_values(f):
                if isinstance(v, str) and len(v) >= 3:
                    assert v not in sql
