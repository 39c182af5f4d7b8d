"""The platform tables (:mod:`.platform`) in the SQLite database, through the main store's
writer and reader connections."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from .platform import CachedToken, StoredIdentity

if TYPE_CHECKING:
    from .sqlite import SQLiteStore

__all__ = ["SQLitePlatformStore"]


class SQLitePlatformStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def _read(self) -> sqlite3.Connection:
        return self._store._reader()

    async def identity(self, uid: str, provider: str, app_id: str) -> StoredIdentity | None:
        row = (
            self._read()
            .execute(
                "SELECT subject, unionid FROM identities WHERE uid = ? AND provider = ? AND app_id = ?"
                " ORDER BY created LIMIT 1",
                (uid, provider, app_id),
            )
            .fetchone()
        )
        return StoredIdentity(row[0], row[1]) if row else None

    async def uid_by_unionid(self, provider: str, unionid: str) -> str | None:
        row = (
            self._read()
            .execute(
                "SELECT uid FROM identities WHERE provider = ? AND unionid = ? ORDER BY created LIMIT 1",
                (provider, unionid),
            )
            .fetchone()
        )
        return row[0] if row else None

    async def link_identity(
        self, provider: str, app_id: str, subject: str, unionid: str | None, uid: str, now: float
    ) -> str:
        def job(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT INTO identities VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (provider, app_id, subject, uid, unionid, now),
            )
            row = conn.execute(
                "SELECT uid FROM identities WHERE provider = ? AND app_id = ? AND subject = ?",
                (provider, app_id, subject),
            ).fetchone()
            return str(row[0])

        return await self._store._writer.run(job)

    async def token(self, key: str) -> CachedToken | None:
        row = (
            self._read()
            .execute("SELECT token, expires FROM platform_tokens WHERE key = ?", (key,))
            .fetchone()
        )
        return CachedToken(row[0], row[1]) if row else None

    async def put_token(self, key: str, token: CachedToken, replaces: str | None) -> CachedToken:
        def job(conn: sqlite3.Connection) -> CachedToken:
            row = conn.execute("SELECT token, expires FROM platform_tokens WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] != replaces and row[0] != token.token:
                return CachedToken(row[0], row[1])  # another instance refreshed first
            conn.execute(
                "INSERT INTO platform_tokens VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE"
                " SET token = excluded.token, expires = excluded.expires",
                (key, token.token, token.expires),
            )
            return token

        return await self._store._writer.run(job)

    async def phone(self, uid: str) -> str | None:
        row = self._read().execute("SELECT phone FROM user_phones WHERE uid = ?", (uid,)).fetchone()
        return str(row[0]) if row else None

    async def set_phone(self, uid: str, phone: str, now: float) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO user_phones VALUES (?, ?, ?) ON CONFLICT (uid) DO UPDATE"
                " SET phone = excluded.phone, updated = excluded.updated",
                (uid, phone, now),
            )

        await self._store._writer.run(job)
