"""Session lifetimes, driven by a settable clock against a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
