"""What the platform features keep in the database: who a user is on a platform (read
from the identities login writes), the platforms' access tokens shared by every instance,
and users' phone numbers."""

from __future__ import annotations

from typing import Any, Protocol

from ..util.record import record

__all__ = [
    "POSTGRES_DDL",
    "SQLITE_DDL",
    "CachedToken",
    "PlatformStore",
    "StoredIdentity",
    "platform_store_for",
]


@record
class StoredIdentity:
    """A user's identity on one platform app, as login stored it."""

    subject: str
    unionid: str | None


@record
class CachedToken:
    """A platform access token and when it expires (epoch seconds)."""

    token: str
    expires: float


class PlatformStore(Protocol):
    async def identity(self, uid: str, provider: str, app_id: str) -> StoredIdentity | None: ...

    async def uid_by_unionid(self, provider: str, unionid: str) -> str | None:
        """The user an identity of ``provider`` with this unionid belongs to, if any."""
        ...

    async def link_identity(
        self, provider: str, app_id: str, subject: str, unionid: str | None, uid: str, now: float
    ) -> str:
        """Record (provider, app_id, subject) as ``uid``'s unless it is known already;
        returns the uid it belongs to."""
        ...

    async def token(self, key: str) -> CachedToken | None: ...

    async def put_token(self, key: str, token: CachedToken, replaces: str | None) -> CachedToken:
        """Store ``token`` under ``key`` unless another instance stored a newer one since
        ``replaces`` was read (then that one is returned): one refresh wins."""
        ...

    async def phone(self, uid: str) -> str | None: ...

    async def set_phone(self, uid: str, phone: str, now: float) -> None: ...


# The tables, as migration 3 of each backend (IF NOT EXISTS: databases that ran the first
# version of this feature created them at start).
SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS platform_tokens (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, expires REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_phones (
    uid TEXT PRIMARY KEY, phone TEXT NOT NULL, updated REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identities_unionid ON identities(provider, unionid);
"""
POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS platform_tokens (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS user_phones (
    uid TEXT PRIMARY KEY, phone TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS identities_unionid ON identities(provider, unionid);
"""


def platform_store_for(store: Any) -> PlatformStore | None:
    """The platform store sharing ``store``'s database; None for a backend without one
    (TableStore: the platform features then keep tokens per instance, see docs/platform.md)."""
    from .sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        from .sqlite_platform import SQLitePlatformStore

        return SQLitePlatformStore(store)
    try:
        from .postgres import PostgresStore
    except ImportError:  # pragma: no cover - asyncpg not installed
        return None
    if isinstance(store, PostgresStore):
        from .postgres_platform import PostgresPlatformStore

        return PostgresPlatformStore(store)
    return None
