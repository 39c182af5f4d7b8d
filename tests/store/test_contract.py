"""The store contract: one suite, every backend.

Each test runs on SQLite, PostgreSQL (a real server, a fresh database per test) and
TableStore (the fake server in tests/fakes, a fresh instance per test), through the
protocols of minibase/store/protocols.py only. What a backend does beyond them (SQLite's
group commit, PostgreSQL's pool and outages, TableStore's partitions) is tested in its own
file beside this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from minibase.data.filters import FALSE, TRUE, Cmp
from minibase.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from minibase.store.protocols import Store
from minibase.store.records import Identity, Key, SessionRecord
from minibase.store.writes import Get, Insert, Put, Remove, Update, WriteOp
from tests.support.data import OTS_KEY_ID, OTS_SECRET, OTS_TOKEN

BACKENDS = ["sqlite", "postgres", "tablestore"]
T0 = "2026-01-01T00:00:00.000Z"
T1 = "2026-01-02T00:00:00.000Z"
NOW = T0
OWNER = Cmp(("uid",), "eq", "u1")

Make = Callable[..., Store]


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """A factory of stores on one fresh database of the param's backend (several stores
    on it stand for several instances); keyword arguments go to PostgreSQL's pool."""
    if request.param == "sqlite":
        from minibase.store.sqlite import SQLiteStore

        return lambda **kw: SQLiteStore(tmp_path / "db")
    if request.param == "postgres":
        from minibase.store.postgres import PostgresStore

        url = str(request.getfixturevalue("pg_url"))
        return lambda **kw: PostgresStore(url, **kw)
    from minibase.store.tablestore import TableStoreStore

    fake, endpoint = request.getfixturevalue("fake_tablestore")
    instance = fake.add_instance()
    return lambda **kw: TableStoreStore(instance, endpoint, OTS_KEY_ID, OTS_SECRET, OTS_TOKEN)


def run(make: Make, body: Callable[[Store], Awaitable[Any]], **kw: Any) -> Any:
    async def main() -> Any:
        store = make(**kw)
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def doc(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)


K = Key("notes", "u1", "a")


def key(i: str, uid: str = "u1") -> Key:
    return Key("notes", uid, i)


def k(doc_id: str, uid: str = "u1", col: str = "todo") -> Key:
    return Key(col, uid, doc_id)


# ------------------------------------------------------------------ users, sessions


def test_identities_map_to_one_user(make: Make) -> None:
    async def body(store: Store) -> None:
        ident = Identity("alipay", "app", "sub", unionid="un")
        assert await store.upsert_identity(ident, "u_1", 10.0) == ("u_1", True)
        assert await store.upsert_identity(ident, "u_2", 11.0) == ("u_1", False)
        assert await store.upsert_identity(Identity("alipay", "app2", "sub"), "u_3", 12.0) == ("u_3", True)
        user = await store.get_user("u_1")
        assert user is not None and (user.uid, user.created, user.disabled) == ("u_1", 10.0, False)
        assert await store.get_user("u_2") is None

    run(make, body)


def test_identity_race_yields_one_user(make: Make) -> None:
    async def body(store: Store) -> None:
        ident = Identity("alipay", "app", "sub")
        got = await asyncio.gather(*(store.upsert_identity(ident, f"u_{i}", 0) for i in range(20)))
        assert len({uid for uid, _ in got}) == 1
        assert sum(1 for _, new in got if new) == 1

    run(make, body, max_size=10)


def test_disable_user(make: Make) -> None:
    async def body(store: Store) -> None:
        uid, _ = await store.upsert_identity(Identity("dev", "dev", "a"), "u_a", 0)
        assert await store.set_user_disabled(uid, True) is True
        user = await store.get_user(uid)
        assert user is not None and user.disabled
        assert await store.set_user_disabled("u_nobody", True) is False
        await store.create_session(SessionRecord("s1", b"h" * 32, uid, "dev", 1.0, 1.0, 9.0))
        rec = await store.session_by_id("s1")
        assert rec is not None and rec.user_disabled
        assert await store.set_user_disabled(uid, False) is True
        rec = await store.session_by_id("s1")
        assert rec is not None and not rec.user_disabled

    run(make, body)


def test_session_records(make: Make) -> None:
    async def body(store: Store) -> None:
        uid, _ = await store.upsert_identity(Identity("dev", "dev", "a"), "u_a", 0)
        rec = SessionRecord("s1", bytes(range(32)), uid, "dev", 100.0, 100.5, 1000.25)
        await store.create_session(rec)
        assert await store.session_by_id("s1") == rec
        assert await store.session_by_hash(bytes(range(32))) == rec
        assert await store.session_by_hash(b"\x00" * 32) is None
        assert await store.session_by_id("nope") is None

        await store.touch_session("s1", 200.0)
        await store.touch_session("s1", 150.0)  # never moves back
        got = await store.session_by_id("s1")
        assert got is not None and got.last_used == 200.0

        assert await store.revoke_session("s1", 300.0) is True
        assert await store.revoke_session("s1", 301.0) is False
        got = await store.session_by_hash(bytes(range(32)))
        assert got is not None and got.revoked and not got.user_disabled

        # A session whose user is gone counts as disabled.
        await store.create_session(SessionRecord("s3", b"x" * 32, "u_gone", "dev", 1, 1, 2))
        got = await store.session_by_id("s3")
        assert got is not None and got.user_disabled

    run(make, body)


def test_revoke_user_sessions(make: Make) -> None:
    async def body(store: Store) -> None:
        for i in range(3):
            await store.create_session(SessionRecord(f"a{i}", bytes([i]) * 32, "u_a", "dev", 1, 1, 9))
        await store.create_session(SessionRecord("b", b"b" * 32, "u_b", "dev", 1, 1, 9))
        await store.revoke_session("a0", 5)
        assert await store.revoke_user_sessions("u_a", 6) == 2
        assert await store.revoke_user_sessions("u_a", 7) == 0
        b = await store.session_by_id("b")
        assert b is not None and not b.revoked

    run(make, body)


def test_identities_sessions_and_users(make: Make) -> None:
    async def body(s: Store) -> None:
        ident = Identity("alipay", "app1", "sub1", "union1")
        uid, new = await s.upsert_identity(ident, "u_first", 10.0)
        assert (uid, new) == ("u_first", True)
        assert await s.upsert_identity(ident, "u_other", 11.0) == ("u_first", False)
        user = await s.get_user("u_first")
        assert user is not None and user.created == 10.0 and not user.disabled
        assert await s.get_user("u_other") is None
        rec = SessionRecord("s1", b"\x00hash1", "u_first", "alipay", 10.0, 10.0, 1000.0)
        await s.create_session(rec)
        await s.create_session(SessionRecord("s2", b"hash2", "u_first", "alipay", 10.0, 10.0, 1000.0))
        assert await s.session_by_hash(b"\x00hash1") == rec
        assert await s.session_by_id("s1") == rec
        await s.touch_session("s1", 20.0)
        await s.touch_session("s1", 15.0)  # older: ignored
        got = await s.session_by_id("s1")
        assert got is not None and got.last_used == 20.0
        assert await s.revoke_session("s1", 30.0) is True
        assert await s.revoke_session("s1", 31.0) is False
        assert await s.revoke_user_sessions("u_first", 32.0) == 1  # s2 only
        got = await s.session_by_hash(b"hash2")
        assert got is not None and got.revoked
        assert await s.set_user_disabled("u_first", True) is True
        assert await s.set_user_disabled("nobody", True) is False
        got = await s.session_by_id("s2")
        assert got is not None and got.user_disabled
        assert await s.session_by_hash(b"missing") is None

    run(make, body)


# ------------------------------------------------------------------------- write ops


def test_insert_get_and_system_fields(make: Make) -> None:
    async def body(store: Store) -> None:
        [raw] = await store.write(
            [Insert(K, {"title": "milk", "n": 1.5, "tags": ["a"], "o": {"x": None}})], T0
        )
        d = doc(raw)
        assert d == {
            "id": "a",
            "title": "milk",
            "n": 1.5,
            "tags": ["a"],
            "o": {"x": None},
            "uid": "u1",
            "_version": 1,
            "_created": T0,
            "_updated": T0,
        }
        assert doc(await store.get_document(K)) == d
        assert await store.get_document(key("a", uid="u2")) is None
        assert await store.get_document(Key("other", "u1", "a")) is None

    run(make, body)


def test_insert_conflict(make: Make) -> None:
    async def body(store: Store) -> None:
        await store.write([Insert(K, {"v": 1})], T0)
        with pytest.raises(Conflict) as e:
            await store.write([Insert(K, {"v": 2})], T1)
        assert "index" not in e.value.details  # as SQLite: only a batch of several names the op
        assert doc(await store.get_document(K))["v"] == 1

    run(make, body)


def test_batch_is_all_or_nothing(make: Make) -> None:
    async def body(store: Store) -> None:
        await store.write([Insert(key("x"), {"v": 0})], T0)
        ops: list[WriteOp] = [
            Insert(key("a"), {"v": 1}),
            Put(key("b"), {"v": 2}),
            Update(key("x"), lambda old: {"v": old["v"] + 1}),
            Remove(key("x")),
            Insert(key("a"), {"v": 3}),  # conflicts with op 0 of this very batch
        ]
        with pytest.raises(Conflict) as e:
            await store.write(ops, T1)
        assert e.value.details["index"] == 4
        assert await store.get_document(key("a")) is None
        assert await store.get_document(key("b")) is None
        assert doc(await store.get_document(key("x"))) == {
            "id": "x",
            "v": 0,
            "uid": "u1",
            "_version": 1,
            "_created": T0,
            "_updated": T0,
        }
        # The same batch without the bad op applies, in order, reading its own writes.
        results = await store.write([*ops[:4], Get(key("a")), Get(key("x"))], T1)
        assert doc(results[0])["v"] == 1
        assert results[1] is None
        assert doc(results[2])["v"] == 1 and doc(results[2])["_version"] == 2
        assert results[3] is True
        assert doc(results[4]) == doc(results[0])
        assert results[5] is None

    run(make, body)


def test_errors_from_apply_abort_the_batch(make: Make) -> None:
    def bad(old: dict[str, Any]) -> dict[str, Any]:
        raise InvalidArgument("bad field", path="x")

    async def body(store: Store) -> None:
        await store.write([Insert(K, {"v": 0})], T0)
        with pytest.raises(InvalidArgument) as e:
            await store.write([Insert(key("b"), {}), Update(K, bad)], T1)
        assert e.value.details == {"path": "x", "index": 1}
        assert await store.get_document(key("b")) is None

    run(make, body)


def test_update(make: Make) -> None:
    seen: list[dict[str, Any]] = []

    def inc(old: dict[str, Any]) -> dict[str, Any]:
        seen.append(old)
        return {k: v for k, v in old.items() if not k.startswith("_") and k not in ("id", "uid")} | {
            "n": old["n"] + 1
        }

    async def body(store: Store) -> None:
        await store.write([Insert(K, {"n": 1, "s": "x"})], T0)
        [raw] = await store.write([Update(K, inc, if_version=1)], T1)
        assert doc(raw) == {
            "id": "a",
            "n": 2,
            "s": "x",
            "uid": "u1",
            "_version": 2,
            "_created": T0,
            "_updated": T1,
        }
        assert seen[0]["_version"] == 1 and seen[0]["n"] == 1
        assert doc(await store.get_document(K)) == doc(raw)

        with pytest.raises(Conflict) as c:
            await store.write([Get(K), Update(K, inc, if_version=1)], T1)
        assert c.value.details == {"version": 2, "index": 1}
        with pytest.raises(NotFound) as nf:
            await store.write([Update(key("missing"), inc)], T1)
        assert "index" not in nf.value.details
        # Refused by the rule reads as absent.
        with pytest.raises(NotFound):
            await store.write([Update(K, inc, rule=Cmp(("n",), "gt", 5))], T1)
        [raw] = await store.write([Update(K, inc, rule=Cmp(("n",), "lt", 5))], T1)
        assert doc(raw)["n"] == 3

    run(make, body)


def test_put_upserts_under_rules(make: Make) -> None:
    mine = Cmp(("owner",), "eq", "me")

    async def body(store: Store) -> None:
        assert await store.write([Put(K, {"owner": "me", "v": 1}, create_rule=mine)], T0) == [None]
        assert await store.write([Put(K, {"owner": "me", "v": 2}, update_rule=mine)], T1) == [None]
        d = doc(await store.get_document(K))
        assert (d["v"], d["_version"], d["_created"], d["_updated"]) == (2, 2, T0, T1)

        # The create rule is checked on the new document: refused, nothing stored.
        with pytest.raises(PermissionDenied) as e:
            await store.write([Put(key("b"), {}), Put(key("c"), {"owner": "you"}, create_rule=mine)], T0)
        assert e.value.details["index"] == 1
        assert await store.get_document(key("b")) is None
        assert await store.get_document(key("c")) is None

        # The update rule is checked on the stored document, before the write.
        await store.write([Put(key("d"), {"owner": "you"})], T0)
        with pytest.raises(PermissionDenied):
            await store.write([Put(key("d"), {"owner": "me"}, update_rule=mine)], T1)
        assert doc(await store.get_document(key("d")))["owner"] == "you"

    run(make, body)


def test_insert_create_rule(make: Make) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(PermissionDenied) as e:
            await store.write([Insert(K, {"n": 1}, rule=Cmp(("n",), "gte", 2))], T0)
        assert "index" not in e.value.details
        assert await store.get_document(K) is None
        [raw] = await store.write([Insert(K, {"n": 2}, rule=Cmp(("n",), "gte", 2))], T0)
        assert doc(raw)["n"] == 2

    run(make, body)


def test_get_and_remove_under_rules(make: Make) -> None:
    async def body(store: Store) -> None:
        await store.write([Insert(K, {"public": True}), Insert(key("b"), {})], T0)
        visible = Cmp(("public",), "eq", True)
        assert await store.get_document(K, visible) is not None
        assert await store.get_document(key("b"), visible) is None
        assert await store.write([Get(key("b"), visible), Get(key("b"))], T0) == [
            None,
            await store.get_document(key("b")),
        ]
        assert await store.write([Remove(key("b"), visible)], T0) == [False]
        assert await store.get_document(key("b")) is not None
        assert await store.write([Remove(key("b")), Remove(key("b")), Remove(K, TRUE)], T0) == [
            True,
            False,
            True,
        ]
        assert await store.count("notes", OWNER) == 0  # u1 owns them all (TableStore counts one owner)

    run(make, body)


def test_concurrent_upserts_count_every_version(make: Make) -> None:
    async def body(store: Store) -> None:
        # Half race to create the key, all then update it.
        await asyncio.gather(*(store.write([Put(K, {"n": i})], T0) for i in range(60)))
        d = doc(await store.get_document(K))
        assert d["_version"] == 60

    run(make, body, max_size=10)


def test_insert_is_conditional_and_update_checks_the_version(make: Make) -> None:
    async def body(s: Store) -> None:
        [doc] = await s.write([Insert(k("a"), {"n": 1})], NOW)
        assert orjson.loads(doc)["_version"] == 1
        with pytest.raises(Conflict, match="already exists"):
            await s.write([Insert(k("a"), {"n": 2})], NOW)
        with pytest.raises(Conflict) as e:
            await s.write([Update(k("a"), lambda d: {"n": 9}, if_version=7)], NOW)
        assert e.value.details["version"] == 1
        [doc] = await s.write([Update(k("a"), lambda d: {"n": d["n"] + 1}, if_version=1)], NOW)
        assert orjson.loads(doc)["n"] == 2 and orjson.loads(doc)["_version"] == 2
        with pytest.raises(NotFound):
            await s.write([Update(k("zz"), lambda d: {})], NOW)
        with pytest.raises(NotFound):  # exists, but the rule hides it
            await s.write([Update(k("a"), lambda d: {}, rule=Cmp(("n",), "eq", 0))], NOW)
        assert await s.write([Put(k("a"), {"p": 1})], NOW) == [None]
        got = orjson.loads(await s.get_document(k("a")) or b"")
        assert got["p"] == 1 and got["_version"] == 3 and got["_created"] == NOW
        with pytest.raises(PermissionDenied):
            await s.write([Put(k("a"), {"p": 2}, update_rule=FALSE)], NOW)
        with pytest.raises(PermissionDenied):
            await s.write([Insert(k("b"), {"x": 1}, rule=Cmp(("x",), "eq", 2))], NOW)
        assert await s.get_document(k("b")) is None
        assert await s.write([Remove(k("a"), rule=Cmp(("p",), "eq", 5))], NOW) == [False]
        assert await s.write([Remove(k("a"))], NOW) == [True]
        assert await s.write([Remove(k("a"))], NOW) == [False]

    run(make, body)
