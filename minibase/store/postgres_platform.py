"""The platform tables (:mod:`.platform`) in the PostgreSQL database, through the main
store's pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .platform import CachedToken, StoredIdentity

if TYPE_CHECKING:
    import asyncpg

    from .postgres import PostgresStore

__all__ = ["PostgresPlatformStore"]


class PostgresPlatformStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._store._fetchrow(sql, *args)

    async def identity(self, uid: str, provider: str, app_id: str) -> StoredIdentity | None:
        row = await self._fetchrow(
            "SELECT subject, unionid FROM identities WHERE uid = $1 AND provider = $2 AND app_id = $3"
            " ORDER BY created LIMIT 1",
            uid,
            provider,
            app_id,
        )
        return StoredIdentity(row[0], row[1]) if row else None

    async def uid_by_unionid(self, provider: str, unionid: str) -> str | None:
        row = await self._fetchrow(
            "SELECT uid FROM identities WHERE provider = $1 AND unionid = $2 ORDER BY created LIMIT 1",
            provider,
            unionid,
        )
        return str(row[0]) if row else None

    async def link_identity(
        self, provider: str, app_id: str, subject: str, unionid: str | None, uid: str, now: float
    ) -> str:
        async def fn(conn: asyncpg.Connection, progress: Any) -> str:
            await conn.execute(
                "INSERT INTO identities (provider, app_id, subject, uid, unionid, created)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                provider,
                app_id,
                subject,
                uid,
                unionid,
                now,
            )
            got = await conn.fetchval(
                "SELECT uid FROM identities WHERE provider = $1 AND app_id = $2 AND subject = $3",
                provider,
                app_id,
                subject,
            )
            return str(got)

        return await self._store._run(fn, idempotent=True)

    async def token(self, key: str) -> CachedToken | None:
        row = await self._fetchrow("SELECT token, expires FROM platform_tokens WHERE key = $1", key)
        return CachedToken(row[0], row[1]) if row else None

    async def put_token(self, key: str, token: CachedToken, replaces: str | None) -> CachedToken:
        async def fn(conn: asyncpg.Connection, progress: Any) -> CachedToken:
            async with conn.transaction():
                progress.began = True
                row = await conn.fetchrow(
                    "SELECT token, expires FROM platform_tokens WHERE key = $1 FOR UPDATE", key
                )
                if row is not None and row[0] != replaces and row[0] != token.token:
                    return CachedToken(row[0], row[1])  # another instance refreshed first
                await conn.execute(
                    "INSERT INTO platform_tokens VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE"
                    " SET token = excluded.token, expires = excluded.expires",
                    key,
                    token.token,
                    token.expires,
                )
                return token

        return await self._store._run(fn, idempotent=True)

    async def phone(self, uid: str) -> str | None:
        row = await self._fetchrow("SELECT phone FROM user_phones WHERE uid = $1", uid)
        return str(row[0]) if row else None

    async def set_phone(self, uid: str, phone: str, now: float) -> None:
        await self._store._execute(
            "INSERT INTO user_phones VALUES ($1, $2, $3) ON CONFLICT (uid) DO UPDATE"
            " SET phone = excluded.phone, updated = excluded.updated",
            uid,
            phone,
            now,
        )
