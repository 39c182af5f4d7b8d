"""The PostgreSQL store against a real server: migrations, users and sessions, atomic write
batches with rules, compiled queries, indexes, and recovery from a lost server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from minibase.auth.credentials import CredentialMinter
from minibase.auth.providers.base import Identity
from minibase.auth.sessions import Sessions
from minibase.config import parse_config
from minibase.data.filters import TRUE, Cmp, Contains, Exists, Or, OrderKey
from minibase.errors import (
    RETRY_AFTER,
    DeadlineExceeded,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
)
from minibase.store import postgres as postgres_module
from minibase.store.postgres import MIGRATIONS, PostgresStore
from minibase.store.records import Key, SessionRecord
from minibase.store.writes import Insert, Put, Update
from tests.support.pg import PgServer, start_server

T0 = "2026-01-01T00:00:00.000Z"
T1 = "2026-01-02T00:00:00.000Z"
DAY = 86400.0


def run(url: str, body: Callable[[PostgresStore], Awaitable[Any]], **kw: Any) -> Any:
    async def main() -> Any:
        store = PostgresStore(url, **kw)
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def doc(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)


K = Key("notes", "u1", "a")


def key(i: str, uid: str = "u1") -> Key:
    return Key("notes", uid, i)


# ------------------------------------------------------------------------ migrations


def test_migrations_are_idempotent(pg_url: str) -> None:
    run(pg_url, lambda s: asyncio.sleep(0))
    run(pg_url, lambda s: asyncio.sleep(0))
    rows = asyncio.run(sql(pg_url, "SELECT version FROM schema_migrations"))
    assert [r[0] for r in rows] == [v for v, _ in MIGRATIONS]
    cols = asyncio.run(
        sql(
            pg_url,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'documents' ORDER BY ordinal_position",
        )
    )
    assert [tuple(c) for c in cols] == [
        ("collection", "text"),
        ("uid", "text"),
        ("id", "text"),
        ("version", "integer"),
        ("created", "text"),
        ("updated", "text"),
        ("body", "jsonb"),
    ]


def test_concurrent_opens_migrate_once(pg_url: str) -> None:
    async def main() -> None:
        stores = [PostgresStore(pg_url, min_size=1, max_size=2) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            # Every instance works on the one schema.
            await asyncio.gather(
                *(s.write([Insert(key(f"d{i}"), {"i": i})], T0) for i, s in enumerate(stores))
            )
        finally:
            await asyncio.gather(*(s.close() for s in stores))

    asyncio.run(main())
    rows = asyncio.run(sql(pg_url, "SELECT version FROM schema_migrations"))
    assert [r[0] for r in rows] == [v for v, _ in MIGRATIONS]
    assert asyncio.run(sql(pg_url, "SELECT count(*) FROM documents"))[0][0] == 4


def test_unreachable_database_at_open_is_unavailable() -> None:
    async def main() -> None:
        store = PostgresStore(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x")
        with pytest.raises(Unavailable, match="the database is unavailable") as e:
            await store.open()
        assert (e.value.code, e.value.status, e.value.retry_after) == ("Unavailable", 503, RETRY_AFTER)

    asyncio.run(main())


def test_an_exhausted_pool_is_unavailable(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pooled connection busy past the acquire timeout: 503 Unavailable, not a hang
    or a 500; the request after the pool frees up succeeds."""
    monkeypatch.setattr(postgres_module, "_ACQUIRE_TIMEOUT", 0.3)

    async def body(store: PostgresStore) -> None:
        async with store._conn():  # the pool's only connection, held
            t = time.monotonic()
            with pytest.raises(Unavailable, match=r"^the database is unavailable$"):
                await store.get_document(K)
            assert time.monotonic() - t < 3
        assert await store.get_document(K) is None

    run(pg_url, body, min_size=1, max_size=1)


def test_closed_store_refuses_requests(pg_url: str) -> None:
    async def main() -> None:
        store = PostgresStore(pg_url)
        await store.open()
        await store.close()
        await store.close()  # idempotent
        with pytest.raises(RuntimeError):
            await store.get_document(K)

    asyncio.run(main())


# --------------------------------------------------------------- users, identities


def test_identity_race_leaves_no_orphan_users(pg_url: str) -> None:
    # The race itself is in test_contract.py; here: the losers' users were rolled back.
    async def body(store: PostgresStore) -> None:
        ident = Identity("alipay", "app", "sub")
        got = await asyncio.gather(*(store.upsert_identity(ident, f"u_{i}", 0) for i in range(20)))
        assert len({uid for uid, _ in got}) == 1

    run(pg_url, body, max_size=10)
    assert asyncio.run(sql(pg_url, "SELECT count(*) FROM users"))[0][0] == 1


# --------------------------------------------------------------------------- sessions


def test_session_token_hashes_are_unique(pg_url: str) -> None:
    # The session records themselves are in test_contract.py.
    async def body(store: PostgresStore) -> None:
        uid, _ = await store.upsert_identity(Identity("dev", "dev", "a"), "u_a", 0)
        await store.create_session(SessionRecord("s1", bytes(range(32)), uid, "dev", 100.0, 100.5, 1000.25))
        with pytest.raises(asyncpg.UniqueViolationError):  # token_hash is unique
            await store.create_session(SessionRecord("s2", bytes(range(32)), uid, "dev", 1, 1, 2))

    run(pg_url, body)


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def test_session_lifetimes(pg_url: str) -> None:
    """The Sessions layer over this store, as tests/auth/test_sessions.py does over SQLite."""
    config = parse_config({"auth": {"dev": {"enabled": True}}})
    clock = Clock()

    async def body(store: PostgresStore) -> None:
        s = Sessions(store, config.auth, CredentialMinter(["k" * 32], 900), clock)
        uid, _ = await store.upsert_identity(Identity("dev", "dev", "a"), "u_a", 0)
        sid = (await s.create(uid, "dev", True))["sessionId"]
        raw = await sql(pg_url, "SELECT * FROM sessions")
        assert sid not in repr(raw) and sid.encode() not in repr(raw).encode()

        for _ in range(5):  # used every 20 days: alive after 100 days with a 30-day idle limit
            clock.advance(20 * DAY)
            await s.by_sid(sid)
        clock.advance(31 * DAY)
        with pytest.raises(Unauthenticated, match="expired"):
            await s.by_sid(sid)

        other = (await s.create(uid, "dev", False))["sessionId"]
        await s.logout(other)
        with pytest.raises(Unauthenticated, match="revoked"):
            await s.by_sid(other)
        await s.logout("never-issued")
        with pytest.raises(Unauthenticated, match="unknown"):
            await s.by_sid("never-issued")

    run(pg_url, body)


# ------------------------------------------------------------------------- write ops


def test_system_fields_are_columns_too(pg_url: str) -> None:
    # What an insert answers and stores is in test_contract.py.
    async def body(store: PostgresStore) -> None:
        await store.write([Insert(K, {"title": "milk"})], T0)
        rows = await sql(pg_url, "SELECT version, created, updated FROM documents")
        assert [tuple(r) for r in rows] == [(1, T0, T0)]

    run(pg_url, body)


def test_nul_characters_are_invalid_argument(pg_url: str) -> None:
    async def body(store: PostgresStore) -> None:
        with pytest.raises(InvalidArgument) as e:
            await store.write([Insert(key("b"), {}), Insert(K, {"s": "a\x00b"})], T0)
        assert e.value.details["index"] == 1
        assert await store.get_document(key("b")) is None

    run(pg_url, body)


# ------------------------------------------------------------------- queries, indexes


def test_query_and_count(pg_url: str) -> None:
    async def body(store: PostgresStore) -> None:
        values: list[Any] = [3, 0.1, 2**62, -2, 2.25, "x", True, None, 7, 0.1, 1e300, 0.1]
        await store.write([Insert(key(f"d{i:02}"), {"n": v}) for i, v in enumerate(values)], T0)
        await store.write([Insert(key("m"), {}), Insert(key("o", uid="u2"), {"n": 4})], T0)

        assert await store.count("notes", TRUE) == 14
        assert await store.count("notes", Exists(("n",))) == 13
        assert await store.count("notes", Cmp(("n",), "gt", 2)) == 6
        assert await store.count("notes", Cmp(("n",), "eq", 0.1)) == 3  # floats bind exactly
        assert await store.count("notes", Cmp(("n",), "eq", 2**62)) == 1
        assert await store.count("notes", Cmp(("uid",), "eq", "u2")) == 1
        assert await store.count("other", TRUE) == 0

        rows = await store.query(
            "notes", Cmp(("n",), "gte", 2.25), [OrderKey(("n",), descending=True)], 100, None
        )
        assert [doc(b)["id"] for _, b in rows] == ["d10", "d02", "d08", "o", "d00", "d04"]

        # Keyset pages of 2 (so a page boundary falls inside the run of equal 0.1s): positions
        # round-trip through JSON, as cursors carry them, and pages continue exactly.
        for desc in (False, True):
            order = [OrderKey(("n",), descending=desc)]
            everything = await store.query("notes", TRUE, order, 100, None)
            assert len(everything) == 14
            paged: list[str] = []
            after: list[Any] | None = None
            while True:
                page = await store.query("notes", TRUE, order, 2, after)
                paged += [doc(b)["id"] for _, b in page]
                if len(page) < 2:
                    break
                after = orjson.loads(orjson.dumps(page[-1][0]))
            assert paged == [doc(b)["id"] for _, b in everything]
        # Type ranks: missing/null, booleans, numbers by value, strings; ties by uid, id.
        everything = await store.query("notes", TRUE, [OrderKey(("n",))], 100, None)
        ids = [doc(b)["id"] for _, b in everything]
        assert ids == [
            "d07",
            "m",
            "d06",
            "d03",
            "d01",
            "d09",
            "d11",
            "d04",
            "d00",
            "o",
            "d08",
            "d02",
            "d10",
            "d05",
        ]
        # null, missing, true, -2, 0.1 x3, 2.25, 3, 4, 7, 2**62, 1e300, "x"

    run(pg_url, body)


def test_ensure_indexes_is_idempotent_and_concurrent(pg_url: str) -> None:
    indexes = [[("done",), ("n",)], [("title",)]]

    count = "SELECT count(*) FROM pg_indexes WHERE tablename = 'documents'"

    async def main() -> None:
        stores = [PostgresStore(pg_url, max_size=2) for _ in range(3)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            before = (await sql(pg_url, count))[0][0]
            await asyncio.gather(*(s.ensure_indexes("todo", indexes, True) for s in stores))
            await stores[0].ensure_indexes("todo", indexes, True)
            await stores[0].ensure_indexes("todo", [], False)
            assert (await sql(pg_url, count))[0][0] == before + 2
            # Not owner-first: that shape, plus the owner-first one (as the SQLite store).
            await stores[1].ensure_indexes("todo", indexes, False)
            assert (await sql(pg_url, count))[0][0] == before + 4
        finally:
            await asyncio.gather(*(s.close() for s in stores))

    asyncio.run(main())


# -------------------------------------------------------------------------- recovery


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_pg() -> Iterator[PgServer]:
    """A server of this test's own, so stopping it cannot disturb any other test."""
    server = start_server()
    try:
        yield server
    finally:
        server.destroy()


def test_recovers_after_the_server_restarts(private_pg: PgServer) -> None:
    url = private_pg.url_for(private_pg.create_database())

    async def body(store: PostgresStore) -> None:
        await store.write([Insert(K, {"v": 1})], T0)
        assert await store.get_document(K) is not None

        private_pg.stop("immediate")
        requests: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.get_document(K),
            lambda: store.write([Put(K, {"v": 2})], T1),
            lambda: store.session_by_id("s"),
            lambda: store.create_session(SessionRecord("s", b"h" * 32, "u", "dev", 1, 1, 2)),
            lambda: store.query("notes", TRUE, [], 10, None),
        ]
        for request in requests:  # each fails fast and cleanly while the server is down
            t = time.monotonic()
            with pytest.raises(Unavailable, match=r"^the database is unavailable$") as e:
                await request()
            assert e.value.code == "Unavailable" and e.value.details == {"retryAfter": RETRY_AFTER}
            assert time.monotonic() - t < 5

        private_pg.start()
        # The same store, not reopened: the pool has replaced its dead connections.
        assert doc(await store.get_document(K))["v"] == 1
        await store.write([Put(K, {"v": 3})], T1)
        assert doc(await store.get_document(K))["v"] == 3

        # Restarted while the pool sat idle (its connections closed under it, unnoticed):
        # the very next requests, reads and writes alike, still succeed.
        for request in (
            lambda: store.get_document(K),
            lambda: store.write([Put(K, {"v": 4})], T1),
            lambda: store.create_session(SessionRecord("s2", b"i" * 32, "u", "dev", 1, 1, 2)),
            lambda: store.count("notes", TRUE),
        ):
            private_pg.stop("immediate")
            private_pg.start()
            await request()
        assert doc(await store.get_document(K))["_version"] == 3
        assert await store.session_by_id("s2") is not None

    run(url, body, min_size=2, max_size=4)


def test_server_lost_in_the_middle_of_a_batch(private_pg: PgServer) -> None:
    url = private_pg.url_for(private_pg.create_database())

    def crash(old: dict[str, Any]) -> dict[str, Any]:
        private_pg.stop("immediate")  # after the batch's first write, before its commit
        return {"v": 2}

    async def body(store: PostgresStore) -> None:
        await store.write([Insert(K, {"v": 1})], T0)
        with pytest.raises(Unavailable, match=r"^the database is unavailable$"):
            await store.write([Insert(key("b"), {}), Update(K, crash)], T1)
        private_pg.start()
        assert await store.get_document(key("b")) is None  # nothing of the batch applied
        assert doc(await store.get_document(K))["v"] == 1

    run(url, body)


def test_a_connection_ended_by_the_server_is_replaced(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The server ends a pooled connection's session (pg_terminate_backend, as a shutdown
    does) just before the store uses it. Depending on when the termination arrives, asyncpg
    fails with a lost connection or with InternalClientError (its protocol state broke);
    either way the store drops that connection and retries on a new one, so reads and
    writes that had not begun succeed."""

    async def body(store: PostgresStore) -> None:
        await store.write([Insert(K, {"v": 0})], T0)
        admin = await asyncpg.connect(pg_url)
        try:
            for i in range(24):
                assert doc(await store.get_document(K))["v"] == i  # the pool has a live connection
                pids = await admin.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
                assert len(pids) == 1
                await admin.execute("SELECT pg_terminate_backend($1)", pids[0][0])
                await asyncio.sleep((0, 0.0005, 0.001, 0.002)[i % 4])
                if i % 2:
                    await store.write([Put(K, {"v": i + 1})], T1)
                else:
                    await store.write([Update(K, lambda old: {"v": old["v"] + 1})], T1)
        finally:
            await admin.close()
        assert doc(await store.get_document(K))["v"] == 24

    with caplog.at_level("WARNING", logger="minibase.store.postgres"):
        run(pg_url, body, min_size=1, max_size=1)
    # The broken-protocol case did occur (it does in most rounds), not only lost connections.
    assert "the database connection broke" in caplog.text


# --------------------------------------------------------------------- time budget


BIG = [0] * 200_000
ABSENT = Or(tuple(Contains(("arr",), v) for v in range(1, 11)))  # 10 array scans a document


def test_statement_timeout_is_deadline_exceeded_and_the_pool_carries_on(pg_url: str) -> None:
    # Issue 18: every statement has a time budget (limits.query_time) on PostgreSQL too.
    async def setup(store: PostgresStore) -> None:
        for i in range(20):
            await store.write([Put(key(f"b{i}"), {"arr": BIG, "n": 0})], T0)

    async def body(store: PostgresStore) -> None:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            await store.count("notes", ABSENT)
        assert time.monotonic() - started < 2  # cancelled by the server, near the budget
        assert info.value.details == {"limit": "limits.query_time", "max": 0.05}
        with pytest.raises(DeadlineExceeded):
            await store.query("notes", ABSENT, (), 10, None)
        # A write whose rule check runs out of time changes nothing, and its batch fails whole.
        slow = Update(key("b0"), lambda d: {**d, "n": 1}, rule=Or((*ABSENT.items, Cmp(("n",), "eq", 0))))
        for _ in range(3):  # the rule check alone is not always past 50 ms: a few tries
            try:
                await store.write([Put(key("x"), {}), slow], T1)
            except DeadlineExceeded:
                break
        else:
            pytest.fail("the slow rule check was never stopped")
        # Every pooled connection is still good (max_size=2: both were used above).
        for _ in range(4):
            assert await store.count("notes", TRUE) == 20
        assert await store.get_document(key("x")) is None
        assert doc(await store.get_document(key("b0")))["n"] == 0

    run(pg_url, setup)
    run(pg_url, body, query_time=0.05, max_size=2)


def test_a_feature_table_shares_the_pool(pg_url: str) -> None:
    # docs/architecture.md#storage: a feature's table uses this store's pooled connections.
    async def body(store: PostgresStore) -> None:
        async def create(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute("CREATE TABLE feature (k TEXT PRIMARY KEY, v INTEGER)")
                await conn.execute("INSERT INTO feature VALUES ('a', 1)")

        await store.run(create, idempotent=False)

        async def read(conn: asyncpg.Connection) -> list[tuple[str, int]]:
            return [tuple(r) for r in await conn.fetch("SELECT k, v FROM feature")]

        assert await store.run(read, idempotent=True) == [("a", 1)]

    run(pg_url, body)
