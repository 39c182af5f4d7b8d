"""Server-side sessions: created by login, found by sessionId or by credentials.

Only the SHA-256 of a sessionId is stored. A session ends at the first of: idle expiry
(sliding: ``last_used`` + ``session_idle``), absolute expiry (``session_max``), revocation
(logout or admin), or its user being disabled. Each is checked on every request.

A live session read from the store is kept in memory with the store's *auth epoch*, a
number read just before it that every revocation, deletion and disabling bumps, from any
instance (database triggers). A later request reuses the session only if the epoch it
reads then is the same, so an ending takes effect on the next request everywhere, as
before; the expiries are checked on the kept record by the clock, and an expired one is
read again before it is refused (another instance may have moved ``last_used``). A store
without an epoch (``None``) has every request read its session.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from ..config import AuthConfig
from ..errors import Unauthenticated
from ..store.protocols import SessionStore
from ..store.records import SessionRecord
from ..util.ids import random_id, session_token, token_hash
from ..util.record import record, replace
from ..util.timefmt import now as wall_clock
from ..util.timefmt import rfc3339_s
from .credentials import CredentialMinter
from .issuer import CredentialIssuer, LocalIssuer

__all__ = ["Caller", "Sessions"]


@record(compiled=True)
class Caller:
    """Who is calling, as established by a live session."""

    uid: str
    provider: str
    session_ref: str
    token_hash: bytes

    def owns_sid(self, sid: str) -> bool:
        """Whether ``sid`` is this caller's sessionId (constant time)."""
        return hmac.compare_digest(token_hash(sid), self.token_hash)


# Expired sessions are purged opportunistically on login: at most PURGE_BATCH each time,
# at most every PURGE_EVERY seconds per instance, once they ended PURGE_GRACE ago.
PURGE_EVERY = 300.0
PURGE_BATCH = 500
PURGE_GRACE = 86400.0
# Live sessions kept per instance (all are dropped when it fills: a bound, not an LRU).
CACHED_SESSIONS = 10_000


class Sessions:
    def __init__(
        self,
        store: SessionStore,
        auth: AuthConfig,
        minter: CredentialMinter,
        clock: Callable[[], float] = wall_clock,
        issuer: CredentialIssuer | None = None,
    ) -> None:
        self.store = store
        self.auth = auth
        self.minter = minter
        self.issuer: CredentialIssuer = issuer if issuer is not None else LocalIssuer(minter)
        self.clock = clock
        # Sliding expiry without a write per request: last_used moves at most this often.
        self.touch_every = min(3600.0, auth.session_idle / 10)
        self.last_purge = float("-inf")
        # session ref or token hash -> (record, its caller, the auth epoch read before it)
        self._cache: dict[str | bytes, tuple[SessionRecord, Caller, int]] = {}

    async def create(self, uid: str, provider: str, is_new: bool) -> dict[str, Any]:
        now = self.clock()
        sid = session_token()
        record = SessionRecord(
            id=random_id("s_", 24),
            token_hash=token_hash(sid),
            uid=uid,
            provider=provider,
            created=now,
            last_used=now,
            expires_max=now + self.auth.session_max,
        )
        # Credentials first: if STS refuses, no session is left behind that nobody holds.
        result = await self._result(sid, record, now, is_new)
        await self.store.create_session(record)
        if now - self.last_purge >= PURGE_EVERY:
            self.last_purge = now
            await self.purge(now)
        return result

    async def purge(self, now: float) -> int:
        """Delete a bounded batch of sessions that ended more than :data:`PURGE_GRACE` ago
        (until then they still answer "expired" rather than "unknown")."""
        idle_before = now - self.auth.session_idle - PURGE_GRACE
        return await self.store.purge_sessions(idle_before, now - PURGE_GRACE, PURGE_BATCH)

    async def refresh(self, sid: str) -> dict[str, Any]:
        record = await self._live(await self.store.session_by_hash(token_hash(sid)))
        now = self.clock()
        result = await self._result(sid, record, now, False)
        await self.store.touch_session(record.id, now)
        return result

    async def logout(self, sid: str) -> None:
        record = await self.store.session_by_hash(token_hash(sid))
        if record is not None:
            await self.store.revoke_session(record.id, self.clock())

    async def by_sid(self, sid: str) -> Caller:
        return await self._caller(token_hash(sid))

    async def by_ref(self, session_ref: str) -> Caller:
        return await self._caller(session_ref)

    async def _caller(self, key: str | bytes) -> Caller:
        """The caller of the live session named by ``key`` (a ref, or a token hash)."""
        epoch = await self.store.auth_epoch()  # first: an ending after it changes it
        if epoch is not None:
            hit = self._cache.get(key)
            if hit is not None and hit[2] == epoch:
                record, caller, _ = hit
                now = self.clock()
                if now < record.expires_max and now < record.last_used + self.auth.session_idle:
                    if now - record.last_used > self.touch_every:
                        await self.store.touch_session(record.id, now)
                        record = replace(record, last_used=now)
                        self._cache[key] = (record, caller, epoch)
                    return caller
        if isinstance(key, bytes):
            record = await self._live(await self.store.session_by_hash(key))
        else:
            record = await self._live(await self.store.session_by_id(key))
        caller = Caller(record.uid, record.provider, record.id, record.token_hash)
        if epoch is not None:
            if len(self._cache) >= CACHED_SESSIONS:
                self._cache.clear()
            self._cache[key] = (record, caller, epoch)
        return caller

    async def _live(self, record: SessionRecord | None) -> SessionRecord:
        if record is None:
            raise Unauthenticated("unknown session: log in again")
        now = self.clock()
        if record.revoked:
            raise Unauthenticated("the session was revoked: log in again")
        if record.user_disabled:
            raise Unauthenticated("this user is disabled")
        if now >= record.expires_max or now >= record.last_used + self.auth.session_idle:
            raise Unauthenticated("the session has expired: log in again")
        if now - record.last_used > self.touch_every:
            await self.store.touch_session(record.id, now)
            record = replace(record, last_used=now)
        return record

    async def _result(self, sid: str, record: SessionRecord, now: float, is_new: bool) -> dict[str, Any]:
        creds = await self.issuer.issue(record.id, record.uid, now)
        expires = min(record.expires_max, now + self.auth.session_idle)
        return {
            "sessionId": sid,
            "sts": creds.to_wire(),
            "user": {"uid": record.uid, "provider": record.provider, "isNew": is_new},
            "expiresAt": rfc3339_s(expires),
        }
