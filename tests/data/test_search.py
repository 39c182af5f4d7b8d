"""``$search`` (docs/data.md#text-search) on the real stores.

- Generated writes (insert, put, update, remove, batches) then generated searches: every
  answer is the reference evaluator's, so the index (SQLite FTS5 trigram rows kept by
  triggers, PostgreSQL pg_trgm) stays in step with every kind of write, deletes included.
- Documents stored before a field was declared are found once it is (indexed at start),
  and a declaration removed drops its index rows.
- The index serves the query (the plans say so); an undeclared field is refused with
  400 ``NotIndexed`` over HTTP, on every backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minibase.app import create_app
from minibase.config import Config
from minibase.core import Minibase
from minibase.data.filters import Cmp, Filter, Search, conj, disj
from minibase.data.query import parse_where
from minibase.data.sql import POSTGRES, SQLITE, compile_query
from minibase.errors import InvalidArgument
from minibase.store.postgres import PostgresStore
from minibase.store.records import Key
from minibase.store.sqlite import SQLiteStore
from minibase.store.writes import Insert, Put, Remove, Update
from tests.support import reference
from tests.support.config import Live
from tests.support.data import data_config, is_tablestore
from tests.support.live import run_uvicorn

T0 = "2026-01-01T00:00:00.000Z"
COL = "posts"
DECLARED = {COL: [("title",), ("meta", "s")]}

Store = SQLiteStore | PostgresStore


class Loop:
    """A store on an event loop of its own, usable across hypothesis examples."""

    def __init__(self, store: Store) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = store
        self.run(store.open())
        self.run(store.ensure_search(DECLARED))

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loop]:
    if request.param == "sqlite":
        s: Store = SQLiteStore(tmp_path / "db.sqlite")
    else:
        s = PostgresStore(str(request.getfixturevalue("pg_url")))
    loop = Loop(s)
    yield loop
    loop.close()


# Case pairs, characters Unicode folds but ASCII does not (long s folds to s, the Kelvin
# sign to k, dotted/dotless i), LIKE and FTS5 syntax, and characters beyond the BMP.
ALPHABET = "aAbBsS \u017f\u212akK\u0130\u0131%_\\\"'*é😀"
TEXTS = st.text(st.sampled_from(ALPHABET), max_size=8)
VALUES = st.one_of(TEXTS, TEXTS, TEXTS, st.integers(-2, 2), st.none(), st.lists(TEXTS, max_size=2))
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "title": VALUES,
        "meta": st.one_of(st.fixed_dictionaries({}, optional={"s": VALUES}), TEXTS),
        "other": TEXTS,
    },
)
KEYS = st.tuples(st.sampled_from(["u1", "u2"]), st.sampled_from(["a", "b", "c", "d"]))
WRITES = st.lists(
    st.tuples(st.sampled_from(["insert", "put", "update", "remove"]), KEYS, FIELDS), min_size=1, max_size=12
)
TERMS = st.one_of(
    st.text(st.sampled_from(ALPHABET), min_size=1, max_size=5), st.sampled_from(["aaa", "SSS", "%_"])
)

CI = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def apply(loop: Loop, model: dict[tuple[str, str], dict[str, Any]], writes: list[Any]) -> None:
    """Each write on its own (as a batch where it is one), mirrored into ``model``."""
    for op, (uid, doc_id), fields in writes:
        key = Key(COL, uid, doc_id)
        if op == "insert":
            if (uid, doc_id) in model:
                continue
            w: Any = Insert(key, fields)
        elif op == "put":
            w = Put(key, fields)
        elif op == "update":
            if (uid, doc_id) not in model:
                continue
            w = Update(
                key, lambda old, f=fields: {**{k: v for k, v in old.items() if not k.startswith("_")}, **f}
            )
        else:
            w = Remove(key)
        loop.run(loop.store.write([w], T0))
        if op == "remove":
            model.pop((uid, doc_id), None)
        elif op == "update":
            model[(uid, doc_id)] = {**model[(uid, doc_id)], **fields}
        else:
            model[(uid, doc_id)] = {"id": doc_id, "uid": uid, **fields}


def search(loop: Loop, where: Filter) -> list[tuple[str, str]]:
    rows = loop.run(loop.store.query(COL, where, (), 100, None))
    return sorted((d["uid"], d["id"]) for d in (orjson.loads(b) for _, b in rows))


@settings(CI, max_examples=60)
@given(
    WRITES, st.lists(st.tuples(st.sampled_from([("title",), ("meta", "s")]), TERMS), min_size=1, max_size=4)
)
@example(
    writes=[("insert", ("u1", "a"), {"title": "SSS"}), ("put", ("u1", "a"), {"title": "\u017f\u017f\u017f"})],
    searches=[(("title",), "sss")],
)  # the replaced string is no longer found, and long s is not s
@example(writes=[("insert", ("u1", "a"), {"title": "a%_b"})], searches=[(("title",), "%_")])
def test_search_matches_reference_through_writes(
    store: Loop, writes: list[Any], searches: list[tuple[tuple[str, ...], str]]
) -> None:
    model: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        apply(store, model, writes)
        # Terms drawn from what is stored too (so most searches find something), case flipped.
        stored = [d.get("title") for d in model.values() if isinstance(d.get("title"), str)]
        terms = list(searches) + [(("title",), t[1:4].swapcase()) for t in stored if len(t) > 1]
        for path, term in terms:
            f = Search(path, term)
            # Alone, under an owner rule, and in an $or (the index lookup is one branch).
            either = disj(f, Cmp(("other",), "eq", "a"))
            for where in (
                f,
                conj(f, Cmp(("uid",), "eq", "u1")),
                either,
                conj(either, Cmp(("uid",), "ne", "u2")),
            ):
                want = sorted((d["uid"], d["id"]) for d in model.values() if reference.matches(d, where))
                assert search(store, where) == want, (path, term)
    finally:
        # An empty collection for the next example: deletes through the same triggers.
        for uid, doc_id in list(model):
            store.run(store.store.write([Remove(Key(COL, uid, doc_id))], T0))
    assert search(store, Search(("title",), "a")) == []


def test_stored_documents_are_indexed_when_declared_and_dropped_when_not(tmp_path: Path, pg_url: str) -> None:
    for make in (lambda: SQLiteStore(tmp_path / "db.sqlite"), lambda: PostgresStore(pg_url)):
        loop = Loop(make())
        try:
            loop.run(loop.store.ensure_search({}))  # as a start without the declaration
            loop.run(loop.store.write([Put(Key("late", "u1", "x"), {"title": "Hello World"})], T0))
        finally:
            loop.close()
        loop = Loop(make())
        try:
            loop.run(loop.store.ensure_search({"late": [("title",)]}))  # the next start declares it
            rows = loop.run(loop.store.query("late", Search(("title",), "o wor"), (), 10, None))
            assert [orjson.loads(b)["id"] for _, b in rows] == ["x"]
            if isinstance(loop.store, SQLiteStore):
                loop.run(loop.store.ensure_search({}))  # the declaration is gone: so are its rows
                left = "SELECT (SELECT count(*) FROM search_rows), (SELECT count(*) FROM doc_search)"
                assert loop.run(loop.store.run_read(lambda c, q=left: c.execute(q).fetchone())) == (0, 0)
        finally:
            loop.close()


def test_sqlite_plan_reads_the_trigram_index(tmp_path: Path) -> None:
    loop = Loop(SQLiteStore(tmp_path / "db.sqlite"))
    try:
        sql, params = compile_query(SQLITE, COL, Search(("title",), "milk"), (), 10, None)
        plan = loop.run(
            loop.store.run_read(lambda c: c.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        )
        text = " | ".join(r[3] for r in plan)
        assert "doc_search VIRTUAL TABLE" in text and "SEARCH documents USING PRIMARY KEY" in text, text
    finally:
        loop.close()


def test_postgres_plan_reads_the_trigram_index(pg_url: str) -> None:
    loop = Loop(PostgresStore(pg_url))
    loop.close()
    sql, params = compile_query(POSTGRES, COL, Search(("title",), "milk"), (), 10, None)

    async def plan() -> str:
        conn = await asyncpg.connect(pg_url)
        try:
            # Enough rows for the planner to prefer an index over reading the collection.
            await conn.execute(
                "INSERT INTO documents SELECT 'posts', 'u' || (i % 50), 'd' || i, 1, '', '',"
                " jsonb_build_object('title', md5(i::text)) FROM generate_series(1, 20000) i"
            )
            await conn.execute("ANALYZE documents")
            rows = await conn.fetch("EXPLAIN " + sql, *params)
            return "\n".join(r[0] for r in rows)
        finally:
            await conn.close()

    text = asyncio.run(plan())
    assert "Bitmap Index Scan on sx_" in text, text


def test_a_sqlite_without_the_trigram_tokenizer_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from minibase.errors import ConfigError
    from minibase.store import sqlite_search

    # As a build without it answers: "no such tokenizer: trigram…".
    ddl = [s.replace("tokenize = 'trigram'", "tokenize = 'trigram_missing'") for s in sqlite_search._DDL]
    monkeypatch.setattr(sqlite_search, "_DDL", ddl)
    store = SQLiteStore(tmp_path / "db.sqlite")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(store.open())
        with pytest.raises(
            ConfigError, match=r"collections\.posts\.search: needs SQLite's FTS5 with the trigram"
        ):
            loop.run_until_complete(store.ensure_search(DECLARED))
        loop.run_until_complete(store.ensure_search({}))  # without a declaration: fine
    finally:
        loop.run_until_complete(store.close())
        loop.close()


@pytest.mark.parametrize("term", [None, "", 3, ["a"], "x" * 1025])
def test_bad_search_terms_are_invalid(term: Any) -> None:
    with pytest.raises(InvalidArgument):
        parse_where({"title": {"$search": term}})


def test_at_most_five_searches() -> None:
    parse_where({"$and": [{"title": {"$search": f"t{i}"}} for i in range(5)]})
    with pytest.raises(InvalidArgument, match=r"more than 5 \$search"):
        parse_where({"$and": [{"title": {"$search": f"t{i}"}} for i in range(6)]})


@pytest.fixture
def search_live(make_config: Callable[..., Config], backend: str, db_url: str | None) -> Iterator[Live]:
    """The data suite's server plus a collection declaring search fields (only here: the
    index setup at start is not every data test's cost)."""
    config = data_config(
        make_config,
        backend,
        db_url,
        posts={"search": ["title", "meta.s"]},
        shelf={"search": ["title"], "read": "doc.uid == auth.uid || doc.shared == true", "write": "owner"},
    )
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        server = Live(url, core)
        try:
            yield server
        finally:
            for c in server.clients:
                c.close()


def test_search_over_http(search_live: Live) -> None:
    data_live = search_live
    alice = data_live.client("dev:alice")
    for i, title in enumerate(["Buy MILK", "milkshake", "bread", "汉字搜索"]):
        alice.invoke("db", {"op": "insert", "collection": "posts", "obj": {"id": f"p{i}", "title": title}})
    q: Callable[[dict[str, Any]], list[str]] = lambda where: sorted(  # noqa: E731
        d["id"] for d in alice.invoke("db", {"op": "query", "collection": "posts", "where": where})["data"]
    )
    assert q({"title": {"$search": "milk"}}) == ["p0", "p1"]
    assert q({"title": {"$search": "字搜"}}) == ["p3"]  # two characters: no trigram, still exact
    got = alice.invoke(
        "db",
        {
            "op": "aggregate",
            "collection": "posts",
            "pipeline": [
                {"$match": {"title": {"$search": "MILK"}}},
                {"$group": {"_id": None, "n": {"$count": {}}}},
            ],
        },
    )["data"]
    assert got == [{"_id": None, "n": 2}]
    headers = {"Authorization": f"Bearer {alice.session_id}"}
    for event in (
        {"op": "query", "collection": "posts", "where": {"body": {"$search": "milk"}}},
        {"op": "count", "collection": "notes", "where": {"$or": [{"a": 1}, {"title": {"$search": "milk"}}]}},
        {
            "op": "aggregate",
            "collection": "posts",
            "pipeline": [{"$match": {"x": {"$search": "m"}}}, {"$group": {"_id": None}}],
        },
    ):
        r = httpx.post(f"{data_live.url}/invoke/db", json=event, headers=headers)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "NotIndexed" and "search = [" in err["message"], err


def test_search_under_read_rules(search_live: Live) -> None:
    """A search finds only what the caller may read (the rule is part of the statement):
    bob's search through alice's unshared titles finds nothing of hers."""
    alice, bob = search_live.client("dev:alice"), search_live.client("dev:bob")
    for c, items in (
        (alice, [("a1", "secret milk", False), ("a2", "shared milk", True)]),
        (bob, [("b1", "bob milk", False)]),
    ):
        for i, title, shared in items:
            c.invoke(
                "db",
                {"op": "insert", "collection": "shelf", "obj": {"id": i, "title": title, "shared": shared}},
            )

    def found(c: Any, **kw: Any) -> list[str]:
        event = {"op": "query", "collection": "shelf", "where": {"title": {"$search": "MILK"}}, **kw}
        return sorted(d["id"] for d in c.invoke("db", event)["data"])

    if is_tablestore(search_live):  # not restricted to one owner: refused, as any such query
        assert found(bob, owner=alice.uid) == ["a2"]
        assert found(alice, owner=alice.uid) == ["a1", "a2"]
        return
    assert found(bob) == ["a2", "b1"]
    assert found(alice) == ["a1", "a2"]
    assert found(bob, owner=alice.uid) == ["a2"]
    group = {
        "op": "aggregate",
        "collection": "shelf",
        "pipeline": [
            {"$match": {"title": {"$search": "secret"}}},
            {"$group": {"_id": None, "n": {"$count": {}}}},
        ],
    }
    assert bob.invoke("db", group)["data"] == []
    assert alice.invoke("db", group)["data"] == [{"_id": None, "n": 1}]
