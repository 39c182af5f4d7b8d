"""Rate limits: token buckets whose state lives in the database (one limit for all instances).

Checking a bucket costs a database write. For hot buckets (one user's data calls) an
instance takes a few tokens at once and spends them locally, which keeps the write rate
down to a fraction of the call rate; a bucket an instance has not seen lately is taken one
token at a time, so users spread over many instances are not starved by idle leases.
Leased tokens are already spent in the database: losing them (an instance stopping) can
only make a limit stricter, never looser, so they are safe to keep in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .config import Rate, RateLimitsConfig
from .errors import RateLimited
from .store.protocols import BucketStore

__all__ = ["RateLimiter"]

_MAX_LEASE = 10  # tokens taken at once for a busy bucket
_HOT_WINDOW = 1.0  # seconds: a bucket seen again within this is busy
_MAX_KEYS = 10_000  # local leases kept (a bounded cache, not state)


class RateLimiter:
    def __init__(self, store: BucketStore, config: RateLimitsConfig, clock: Callable[[], float]) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self._leases: dict[str, tuple[int, float]] = {}  # key -> (tokens left, last seen)
        self._taking: dict[str, int] = {}  # key -> database takes in flight

    async def session_call(self, ip: str | None) -> None:
        """A call of the session function (login, refresh, logout) from ``ip``."""
        if ip:
            await self._check(f"login-ip:{ip}", self.config.login_per_ip, "login attempts from this address")

    async def login(self, provider: str, app_id: str, subject: str) -> None:
        """A login of one platform user (checked once the platform has named them)."""
        await self._check(
            f"login-subject:{provider}:{app_id}:{subject}",
            self.config.login_per_subject,
            "logins of this user",
        )

    async def refresh(self, session: str) -> None:
        """A refresh of one session (``session``: a stable name for it, never the sessionId)."""
        await self._check(f"refresh:{session}", self.config.login_per_subject, "refreshes of this session")

    async def call(self, uid: str | None, ip: str | None) -> None:
        """A call of db, files or a developer function, by ``uid`` or anonymously from ``ip``."""
        if uid is not None:
            await self._check(f"user:{uid}", self.config.calls_per_user, "calls by this user", lease=True)
        elif ip:
            await self._check(f"ip:{ip}", self.config.calls_per_ip, "calls from this address", lease=True)

    async def check(self, key: str, rate: Rate | None, what: str) -> None:
        """One token of the bucket ``key`` (another part's own limit: the console's logins)."""
        await self._check(key, rate, what)

    async def _check(self, key: str, rate: Rate | None, what: str, lease: bool = False) -> None:
        if rate is None:
            return
        now = self.clock()
        want = 1
        if lease:
            left, seen = self._leases.get(key, (0, -math.inf))
            if left > 0:
                self._leases[key] = (left - 1, now)
                return
            # Lease ahead only for a busy bucket, and only one request at a time: several
            # concurrent requests each leasing would take many times what they need.
            if now - seen < _HOT_WINDOW and not self._taking.get(key):
                want = max(1, min(_MAX_LEASE, int(rate.burst) // 10))
            self._taking[key] = self._taking.get(key, 0) + 1
        try:
            granted, wait = await self.store.take_tokens(key, rate.per_second, rate.burst, want, now)
        finally:
            if lease:
                n = self._taking.pop(key, 1) - 1
                if n > 0:
                    self._taking[key] = n
        if lease:
            if len(self._leases) >= _MAX_KEYS:
                self._leases.clear()
            # Add to what is left (a concurrent request may have leased meanwhile): tokens
            # taken from the database are never dropped here.
            held = self._leases.get(key, (0, now))[0]
            self._leases[key] = (held + max(0, granted - 1), now)
        if granted == 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited(f"too many {what}: retry in {retry} s", retry_after=retry)
