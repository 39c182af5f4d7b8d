"""A platform access token shared by every instance through the database (like the
rate-limit buckets): read from the store when this instance's copy is near its expiry,
fetched from the platform when the stored one is, and replaced once when the platform
says it is invalid (WeChat 40001/42001).

Refreshes are few by design: WeChat's ``stable_token`` in normal mode answers the current
token to every caller until shortly before it expires, and a token the platform refused
is first compared with the stored one (another instance may have replaced it already);
only a token the normal mode hands back again, still refused, is force-refreshed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..store.platform import CachedToken, PlatformStore

__all__ = ["MARGIN", "TokenCache"]

MARGIN = 300.0  # seconds before its expiry a token is replaced (WeChat rotates 5 min early)

# fetch(force) -> (token, seconds it is valid)
Fetch = Callable[[bool], Awaitable[tuple[str, float]]]


class TokenCache:
    def __init__(
        self, store: PlatformStore | None, key: str, fetch: Fetch, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.key = key
        self._fetch = fetch
        self._clock = clock
        self._local: CachedToken | None = None  # this instance's copy of the stored token
        self._lock = asyncio.Lock()  # one refresh at a time per instance
        self.refreshes = 0  # tokens this instance fetched (for tests and logs)

    def _fresh(self, t: CachedToken | None) -> bool:
        return t is not None and t.expires - MARGIN > self._clock()

    async def get(self) -> str:
        if self._local is not None and self._fresh(self._local):
            return self._local.token
        async with self._lock:
            stored = await self._stored()
            if stored is not None and self._fresh(stored):
                self._local = stored
                return stored.token
            return await self._refresh(False, stored.token if stored else None)

    async def refused(self, bad: str) -> str:
        """A token to retry with after the platform refused ``bad`` as invalid or expired."""
        async with self._lock:
            stored = await self._stored()
            if stored is not None and stored.token != bad and self._fresh(stored):
                self._local = stored  # another instance refreshed it already
                return stored.token
            token = await self._refresh(False, bad)
            if token == bad:  # the normal mode still hands out the refused one
                token = await self._refresh(True, bad)
            return token

    async def _stored(self) -> CachedToken | None:
        return await self.store.token(self.key) if self.store is not None else self._local

    async def _refresh(self, force: bool, replaces: str | None) -> str:
        token, valid_for = await self._fetch(force)
        self.refreshes += 1
        fresh = CachedToken(token, self._clock() + valid_for)
        if self.store is not None:
            fresh = await self.store.put_token(self.key, fresh, replaces)
        self._local = fresh
        return fresh.token
