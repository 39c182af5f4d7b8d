"""What the core adds to a developer function's context: ``ctx.identity``, ``ctx.user``,
``ctx.admin`` and ``ctx.platform``, built per call from long-lived parts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..auth.sessions import Caller
from ..config import Config
from .identity import PlatformIdentity, UserInfo, app_id_of
from .store.base import PlatformStore

if TYPE_CHECKING:
    from .admin import AdminDataHandle, AdminFilesHandle

__all__ = ["Admin", "PlatformServices", "Platforms"]

_MAX_CACHED = 10_000  # identities kept in memory (they never change for a uid and app)


class Admin:
    """``ctx.admin``: ``db`` and ``files`` acting as the app."""

    def __init__(self, db: AdminDataHandle, files: AdminFilesHandle) -> None:
        self.db = db
        self.files = files


class Platforms:
    """``ctx.platform``: this server's API clients of the platforms (filled by the core)."""

    def __init__(self, clients: Mapping[str, Any]) -> None:
        self._clients = clients

    def __getattr__(self, name: str) -> Any:
        try:
            return self._clients[name]
        except KeyError:
            raise AttributeError(
                f"ctx.platform.{name}: [auth.{name}] is not configured on this server"
            ) from None


class PlatformServices:
    def __init__(
        self, config: Config, store: PlatformStore | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._identities: dict[tuple[str, str], PlatformIdentity | None] = {}
        self._clients: dict[str, Any] | None = None
        self.transport: Any = None  # tests: an httpx transport for every client

    def clients(self) -> dict[str, Any]:
        """The API clients of the configured platforms, built on first use (on the loop
        that serves requests: sync functions reach them through it)."""
        if self._clients is None:
            loop = asyncio.get_running_loop()
            auth = self.config.auth
            clients: dict[str, Any] = {}
            if auth.wechat is not None:
                from .wechat import WechatClient

                clients["wechat"] = WechatClient(auth.wechat, self.store, self.clock, loop, self.transport)
            if auth.alipay is not None:
                from .alipay import AlipayClient

                clients["alipay"] = AlipayClient(auth.alipay, loop, self.transport)
            if auth.douyin is not None:
                from .douyin import DouyinClient

                clients["douyin"] = DouyinClient(auth.douyin, self.store, self.clock, loop, self.transport)
            self._clients = clients
        return self._clients

    async def aclose(self) -> None:
        for client in (self._clients or {}).values():
            await client.aclose()
        self._clients = None

    async def identity(self, caller: Caller) -> PlatformIdentity | None:
        """The caller's identity on the platform of their session (cached: it never changes)."""
        key = (caller.uid, caller.provider)
        if key in self._identities:
            return self._identities[key]
        app_id = app_id_of(self.config, caller.provider)
        found = None
        if app_id is not None and self.store is not None:
            stored = await self.store.identity(caller.uid, caller.provider, app_id)
            if stored is not None:
                found = PlatformIdentity(caller.provider, app_id, stored.subject, stored.unionid)
        if found is not None:
            if len(self._identities) >= _MAX_CACHED:
                self._identities.clear()
            self._identities[key] = found
        return found

    async def user(self, caller: Caller) -> UserInfo:
        phone = await self.store.phone(caller.uid) if self.store is not None else None
        return UserInfo(caller.uid, phone)


def admin_for(run: Callable[[str, dict[str, Any]], Awaitable[Any]], loop: asyncio.AbstractEventLoop) -> Admin:
    """``ctx.admin`` whose calls go to ``run(kind, event)`` (kind: "db" or "files")."""
    from .admin import AdminDataHandle, AdminFilesHandle

    async def invoke(function: str, event: dict[str, Any], _: Caller | None) -> Any:
        return await run(function, event)

    return Admin(AdminDataHandle(invoke, None, loop), AdminFilesHandle(invoke, None, loop))
