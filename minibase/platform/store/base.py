"""What the platform features keep in the database: who a user is on a platform (read
from the identities login writes), the platforms' access tokens shared by every instance,
and users' phone numbers."""

from __future__ import annotations

from typing import Protocol

from ...util.record import record

__all__ = ["CachedToken", "PlatformStore", "StoredIdentity"]


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
    async def open(self) -> None:
        """Create the tables (idempotent; safe with several instances starting at once)."""
        ...

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
