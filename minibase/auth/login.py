"""The built-in ``session`` function: login, refresh, logout (docs/http-api.md#the-session-function)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import AuthConfig
from ..errors import InvalidArgument, Unauthenticated
from ..results import Spread
from ..store.protocols import UserStore
from ..util.ids import random_id, token_hash
from ..util.timefmt import now
from .providers.base import Identity, Provider
from .sessions import Sessions

if TYPE_CHECKING:
    from ..ratelimit import RateLimiter
    from ..store.platform import PlatformStore

log = logging.getLogger("minibase.auth")

MAX_CODE = 512
OPS = ("login", "refresh", "logout", "providers", "linkPhone")  # the session function's ops
MAX_SID = 256


class LoginFunction:
    def __init__(
        self,
        auth: AuthConfig,
        store: UserStore,
        sessions: Sessions,
        providers: Mapping[str, Provider],
        limiter: RateLimiter | None = None,
        platform_store: PlatformStore | None = None,
    ) -> None:
        self.auth = auth
        self.store = store
        self.sessions = sessions
        self.providers = providers
        self.limiter = limiter  # None: no per-identity and per-session limits
        self.platform_store = platform_store  # None: no identity linking (link_by_unionid)

    async def __call__(self, event: Mapping[str, Any]) -> Any:
        op = event.get("op", "login")
        if op == "login":
            return Spread(await self.login(event))
        if op == "refresh":
            sid = _sid(event)
            if self.limiter is not None:
                await self.limiter.refresh(token_hash(sid).hex()[:32])
            return Spread(await self.sessions.refresh(sid))
        if op == "logout":
            await self.sessions.logout(_sid(event))
            return None
        if op == "providers":
            # What a client may offer: e.g. a dev-login screen where the platform's login
            # is not set up. Answered with 200, so hosts that hide error bodies still read it.
            return {"providers": sorted(self.providers), "unavailable": dict(self.auth.unavailable)}
        raise InvalidArgument(f"op must be one of: {', '.join(OPS)}")

    async def login(self, event: Mapping[str, Any]) -> dict[str, Any]:
        code = event.get("authCode")
        if not isinstance(code, str) or not code:
            raise InvalidArgument("authCode is required (a string from my.getAuthCode / wx.login)")
        if len(code) > MAX_CODE:
            raise InvalidArgument(f"authCode is longer than {MAX_CODE} characters")
        provider = self._pick(event.get("provider"), code)
        identity = await provider.exchange(code)
        if self.limiter is not None:
            await self.limiter.login(identity.provider, identity.app_id, identity.subject)
        uid, is_new = await self._uid_of(identity)
        user = await self.store.get_user(uid)
        if user is None or user.disabled:
            raise Unauthenticated("this user is disabled")
        log.info("login provider=%s uid=%s new=%s", identity.provider, uid, is_new)
        return await self.sessions.create(uid, identity.provider, is_new)

    async def _uid_of(self, identity: Identity) -> tuple[str, bool]:
        """(uid, is_new): with ``[auth] link_by_unionid``, an identity new to this app whose
        unionid another app of the same platform account already knows joins that user."""
        store = self.platform_store
        if self.auth.link_by_unionid and identity.unionid and store is not None:
            linked = await store.uid_by_unionid(identity.provider, identity.unionid)
            if linked is not None:
                uid = await store.link_identity(
                    identity.provider, identity.app_id, identity.subject, identity.unionid, linked, now()
                )
                return uid, False
        return await self.store.upsert_identity(identity, random_id("u_"), now())

    def _pick(self, name: object, code: str) -> Provider:
        if name is not None:
            if not isinstance(name, str):
                raise InvalidArgument("provider must be a string")
            p = self.providers.get(name)
            if p is not None:
                return p
            if name in self.auth.unavailable:
                raise InvalidArgument(
                    f"provider '{name}' is not set up on this server: {self.auth.unavailable[name]}"
                )
            raise InvalidArgument(f"unknown provider '{name}' (configured: {_names(self.providers)})")
        if len(self.providers) == 1:
            return next(iter(self.providers.values()))
        if "dev" in self.providers and code.startswith("dev:"):
            return self.providers["dev"]  # the template's client posts no provider
        raise InvalidArgument(f"provider is required (configured: {_names(self.providers)})")


def _names(providers: Mapping[str, Provider]) -> str:
    return ", ".join(providers) or "none"


def _sid(event: Mapping[str, Any]) -> str:
    sid = event.get("sessionId", event.get("sid"))
    if not isinstance(sid, str) or not sid:
        raise InvalidArgument("sessionId is required")
    if len(sid) > MAX_SID:
        raise Unauthenticated("unknown session: log in again")
    return sid
