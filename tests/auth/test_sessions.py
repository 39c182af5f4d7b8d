"""Session lifetimes, driven by a settable clock against a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from minibase.auth.credentials import CredentialMinter
from minibase.auth.sessions import Sessions
from minibase.config import parse_config
from minibase.errors import Unauthenticated
from minibase.store.sqlite import SQLiteStore
from tests.support.config import Clock

DAY = 86400.0


def run(tmp_path: Path, clock: Clock, body: Callable[[Sessions, SQLiteStore], Any], **auth: Any) -> Any:
    config = parse_config({"auth": {"dev": {"enabled": True}, **auth}}, data_dir=tmp_path)

    async def main() -> Any:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        try:
            sessions = Sessions(store, config.auth, CredentialMinter(["k" * 32], 900), clock)
            return await body(sessions, store)
        finally:
            await store.close()

    return asyncio.run(main())


async def new_user(store: SQLiteStore, name: str) -> str:
    from minibase.auth.providers.base import Identity

    uid, _ = await store.upsert_identity(Identity("dev", "dev", name), f"u_{name}", 0)
    return uid


def test_only_the_hash_is_stored(tmp_path: Path, clock: Clock) -> None:
    async def body(s: Sessions, store: SQLiteStore) -> None:
        res = await s.create(await new_user(store, "a"), "dev", True)
        import sqlite3

        raw = sqlite3.connect(tmp_path / "s.db").execute("SELECT * FROM sessions").fetchall()
        assert res["sessionId"].encode() not in repr(raw).encode()
        assert res["sessionId"] not in repr(raw)

    run(tmp_path, clock, body)


def test_idle_expiry_slides(tmp_path: Path, clock: Clock) -> None:
    async def body(s: Sessions, store: SQLiteStore) -> None:
        sid = (await s.create(await new_user(store, "a"), "dev", True))["sessionId"]
        for _ in range(5):  # used every 20 days: alive after 100 days with a 30-day idle limit
            clock.advance(20 * DAY)
            await s.by_sid(sid)
        clock.advance(31 * DAY)
        with pytest.raises(Unauthenticated, match="expired"):
            await s.by_sid(sid)

    run(tmp_path, clock, body)


def test_absolute_expiry(tmp_path: Path, clock: Clock) -> None:
    async def body(s: Sessions, store: SQLiteStore) -> None:
        sid = (await s.create(await new_user(store, "a"), "dev", True))["sessionId"]
        for _ in range(8):
            clock.advance(20 * DAY)
            await s.refresh(sid)
        clock.advance(19 * DAY)  # 179 days: still alive
        await s.refresh(sid)
        clock.advance(2 * DAY)  # 181 days
        with pytest.raises(Unauthenticated, match="expired"):
            await s.refresh(sid)

    run(tmp_path, clock, body)


def test_expires_at_reports_the_nearer_limit(tmp_path: Path, clock: Clock) -> None:
    async def body(s: Sessions, store: SQLiteStore) -> None:
        res = await s.create(await new_user(store, "a"), "dev", True)
        from minibase.util.timefmt import rfc3339_s

        assert res["expiresAt"] == rfc3339_s(clock.t + 2 * DAY)

    run(tmp_path, clock, body, session_idle="2d", session_max="3d")


def test_revoke_user_sessions(tmp_path: Path, clock: Clock) -> None:
    async def body(s: Sessions, store: SQLiteStore) -> None:
        uid = await new_user(store, "a")
        sids = [(await s.create(uid, "dev", False))["sessionId"] for _ in range(3)]
        other = (await s.create(await new_user(store, "b"), "dev", True))["sessionId"]
        assert await store.revoke_user_sessions(uid, clock()) == 3
        for sid in sids:
            with pytest.raises(Unauthenticated, match="revoked"):
                await s.by_sid(sid)
        await s.by_sid(other)

    run(tmp_path, clock, body)


def test_logout_of_unknown_session_is_quiet(tmp_path: Path, clock: Clock) -> None:
    async def body(s: Sessions, store: SQLiteStore) -> None:
        await s.logout("never-issued")
        with pytest.raises(Unauthenticated, match="unknown"):
            await s.by_sid("never-issued")

    run(tmp_path, clock, body)


class CountingStore(SQLiteStore):
    """The real SQLite store, counting the session reads (to see the cache being used)."""

    reads = 0

    async def session_by_id(self, session_ref: str) -> Any:
        self.reads += 1
        return await super().session_by_id(session_ref)

    async def session_by_hash(self, token_hash: bytes) -> Any:
        self.reads += 1
        return await super().session_by_hash(token_hash)


def two_instances(
    tmp_path: Path, clock: Clock, body: Callable[[Sessions, Sessions, CountingStore], Any], **auth: Any
) -> Any:
    """Two instances (their own store connections and session caches) on one database."""
    config = parse_config({"auth": {"dev": {"enabled": True}, **auth}}, data_dir=tmp_path)
    minter = CredentialMinter(["k" * 32], 900)

    async def main() -> Any:
        a, b = SQLiteStore(tmp_path / "s.db"), CountingStore(tmp_path / "s.db")
        await a.open()
        await b.open()
        try:
            return await body(
                Sessions(a, config.auth, minter, clock), Sessions(b, config.auth, minter, clock), b
            )
        finally:
            await a.close()
            await b.close()

    return asyncio.run(main())


async def cached_on(b: Sessions, b_store: CountingStore, sid: str) -> str:
    """``sid``'s session found on ``b`` twice, the second time from its cache; its ref."""
    ref = (await b.by_sid(sid)).session_ref
    await b.by_ref(ref)
    reads = b_store.reads
    assert (await b.by_ref(ref)).session_ref == ref
    assert (await b.by_sid(sid)).session_ref == ref
    assert b_store.reads == reads  # both from the cache: nothing ended meanwhile
    return ref


def test_a_revocation_on_one_instance_is_refused_by_the_other_at_once(tmp_path: Path, clock: Clock) -> None:
    async def body(a: Sessions, b: Sessions, b_store: CountingStore) -> None:
        sid = (await a.create(await new_user(a.store, "a"), "dev", True))["sessionId"]  # type: ignore[arg-type]
        other = (await a.create(await new_user(a.store, "b"), "dev", True))["sessionId"]  # type: ignore[arg-type]
        ref = await cached_on(b, b_store, sid)
        other_ref = await cached_on(b, b_store, other)
        await a.logout(sid)
        for find in (lambda: b.by_ref(ref), lambda: b.by_sid(sid)):
            with pytest.raises(Unauthenticated, match="revoked"):
                await find()
        assert (await b.by_ref(other_ref)).session_ref == other_ref  # the others still work

    two_instances(tmp_path, clock, body)


def test_disabling_a_user_anywhere_is_refused_by_every_instance_at_once(tmp_path: Path, clock: Clock) -> None:
    async def body(a: Sessions, b: Sessions, b_store: CountingStore) -> None:
        uid = await new_user(a.store, "a")  # type: ignore[arg-type]
        sid = (await a.create(uid, "dev", True))["sessionId"]
        ref = await cached_on(b, b_store, sid)
        # As `minibase users disable` does it: another process, writing the database.
        import sqlite3

        conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)

        def elsewhere(sql: str, *args: object) -> Awaitable[None]:
            """A write of another process, and then the next request: that one runs in a
            later loop step (its reads see what was committed before the step's first
            read, store/sqlite_reader.py), as every request after the write does."""
            conn.execute(sql, args)
            return asyncio.sleep(0)

        await elsewhere("UPDATE users SET disabled = 1 WHERE uid = ?", uid)
        with pytest.raises(Unauthenticated, match="disabled"):
            await b.by_ref(ref)
        await elsewhere("UPDATE users SET disabled = 0 WHERE uid = ?", uid)
        assert (await b.by_ref(ref)).uid == uid
        await elsewhere("DELETE FROM sessions WHERE id = ?", ref)  # the console's session delete
        with pytest.raises(Unauthenticated, match="unknown"):
            await b.by_ref(ref)
        conn.close()

    two_instances(tmp_path, clock, body)


def test_a_cached_session_expires_by_the_clock_but_not_while_another_instance_uses_it(
    tmp_path: Path, clock: Clock
) -> None:
    async def body(a: Sessions, b: Sessions, b_store: CountingStore) -> None:
        sid = (await a.create(await new_user(a.store, "a"), "dev", True))["sessionId"]  # type: ignore[arg-type]
        ref = await cached_on(b, b_store, sid)
        clock.advance(1.5 * DAY)
        await a.by_sid(sid)  # used on A: A moves last_used
        clock.advance(DAY)  # 2.5 days after B last saw it: B's copy says expired
        assert (await b.by_ref(ref)).session_ref == ref  # read again: alive (used on A a day ago)
        clock.advance(2.5 * DAY)
        with pytest.raises(Unauthenticated, match="expired"):
            await b.by_ref(ref)

    two_instances(tmp_path, clock, body, session_idle="2d")
