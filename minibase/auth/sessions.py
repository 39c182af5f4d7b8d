"""Server-side sessions: created by login, found by sessionId or by credentials.

Only the SHA-256 of a sessionId is stored. A session ends at the first of: idle expiry
(sliding: ``last_used`` + ``session_idle``), absolute expiry (``session_max``), revocation
(logout or admin), or its user being disabled. Each is checked on every request.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import AuthConfig
from ..errors import Unauthenticated
from ..store.protocols import SessionStore
from ..store.records import SessionRecord
from ..util.ids import random_id, session_token, token_hash
from ..util.timefmt import now as wall_clock
from ..util.timefmt import rfc3339_s
from .credentials import CredentialMinter
from .issuer import CredentialIssuer, LocalIssuer

__all__ = ["Caller", "Sessions"]


@dataclass(frozen=True, slots=True)
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
        record = await self._live(await self.store.session_by_hash(token_hash(sid)))
        return Caller(record.uid, record.provider, record.id, record.token_hash)

    async def by_ref(self, session_ref: str) -> Caller:
        record = await self._live(await self.store.session_by_id(session_ref))
        return Caller(record.uid, record.provider, record.id, record.token_hash)

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
