"""What the core adds to a developer function's context: ``ctx.identity``, ``ctx.user``,
``ctx.admin`` and ``ctx.platform``, built per call from long-lived parts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..auth.sessions import Caller
from ..config import Config
from ..store.platform import PlatformStore
from .identity import PlatformIdentity, UserInfo, app_id_of

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
    """``ctx.platform``: this server's API clients of the platforms, each built on first use."""

    def __init__(self, services: PlatformServices, loop: asyncio.AbstractEventLoop) -> None:
        self._services = services
        self._loop = loop  # sync functions run on worker threads: the serving loop is this

    def __getattr__(self, name: str) -> Any:
        client = self._services.client(name, self._loop) if not name.startswith("_") else None
        if client is None:
            raise AttributeError(f"ctx.platform.{name}: [auth.{name}] is not configured on this server")
        return client


class PlatformServices:
    def __init__(
        self, config: Config, store: PlatformStore | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._identities: dict[tuple[str, str], PlatformIdentity | None] = {}
        self._clients: dict[str, Any] = {}
        self.transport: Any = None  # tests: an httpx transport for every client

    def client(self, name: str, loop: asyncio.AbstractEventLoop | None = None) -> Any:
        """The API client of platform ``name`` (None: not configured), built on first use,
        on the loop that serves requests (sync functions reach it through that loop)."""
        if name in self._clients:
            return self._clients[name]
        auth = self.config.auth
        section = getattr(auth, name, None) if name in ("wechat", "alipay", "douyin") else None
        if section is None:
            return None
        loop = loop or asyncio.get_running_loop()
        client: Any
        if name == "wechat":
            from .wechat import WechatClient

            client = WechatClient(section, self.store, self.clock, loop, self.transport)
        elif name == "alipay":
            from .alipay import AlipayClient

            client = AlipayClient(section, loop, self.transport)
        else:
            from .douyin import DouyinClient

            client = DouyinClient(section, self.store, self.clock, loop, self.transport)
        self._clients[name] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

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
