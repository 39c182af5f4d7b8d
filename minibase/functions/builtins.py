"""The built-in functions ``session``, ``db`` and ``files`` as registry entries.

They sit in the same :class:`~minibase.functions.registry.Registry` as the developer's
functions and are called through the core's one invoke path; what sets them apart is on
their :class:`~minibase.functions.registry.FunctionSpec`: ``builtin`` (called as
``await fn(event, caller, request_id, base_url)``, no Context, no time limit) and, for
``session``, ``sessionless``. ``db`` and ``files`` are built on their first call: a
lighter cold start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..audit import audit
from ..errors import MinibaseError
from ..util.lazy import Lazy
from .registry import FunctionSpec

if TYPE_CHECKING:
    from ..auth.login import LoginFunction
    from ..auth.sessions import Caller
    from ..config import Config
    from ..data.api import DataFunction
    from ..files.api import FilesFunction
    from ..files.store.base import FileStore
    from ..platform.services import PlatformServices
    from ..store.protocols import Store

__all__ = ["builtin_specs"]

Builtin = Callable[[dict[str, Any], "Caller | None", str, "str | None"], Awaitable[Any]]


def builtin_specs(
    config: Config,
    store: Store,
    login: LoginFunction,
    platform: PlatformServices,
    file_store: Lazy[FileStore],
) -> list[FunctionSpec]:
    """The three built-ins over their collaborators, as registry entries."""
    data: Lazy[DataFunction] = Lazy(lambda: _data_function(config, store))
    files: Lazy[FilesFunction] = Lazy(lambda: _files_function(config, file_store.get()))
    content_checked = any(c.content_check for c in config.collections.values())

    async def db(event: dict[str, Any], caller: Caller | None, request_id: str, base_url: str | None) -> Any:
        if content_checked:  # [collections.X] content_check (docs/platform.md)
            from ..platform.content import check_write

            await check_write(config, platform, event, caller)
        return await data.get()(caller, event)

    async def files_(
        event: dict[str, Any], caller: Caller | None, request_id: str, base_url: str | None
    ) -> Any:
        return await files.get()(caller, event, base_url=base_url)

    session = SessionEntry(login, platform)
    return [_spec("session", session, sessionless=True), _spec("db", db), _spec("files", files_)]


def _spec(name: str, fn: Builtin, *, sessionless: bool = False) -> FunctionSpec:
    # public: a call without a session reaches them; their own rules decide what it may do.
    return FunctionSpec(name, fn, True, None, True, builtin=True, sessionless=sessionless)


def _data_function(config: Config, store: Store) -> DataFunction:
    from ..data.api import DataFunction

    return DataFunction(config, store)


def _files_function(config: Config, file_store: FileStore) -> FilesFunction:
    from ..files.api import FilesFunction

    return FilesFunction(config, file_store)


class SessionEntry:
    """``session``: the login function, with each login, refresh and logout audited, and
    ``linkPhone`` (docs/platform.md)."""

    def __init__(self, login: LoginFunction, platform: PlatformServices) -> None:
        self.login = login
        self.platform = platform

    async def __call__(
        self, event: dict[str, Any], caller: Caller | None, request_id: str, base_url: str | None
    ) -> Any:
        op = event.get("op", "login")
        if op == "providers":  # a public listing, not a security event
            return await self.login(event)
        if op == "linkPhone":
            return await self._link_phone(event, request_id)
        op = op if op in ("login", "refresh", "logout") else "session"
        provider = event.get("provider") if isinstance(event.get("provider"), str) else None
        try:
            result = await self.login(event)
        except MinibaseError as e:
            audit(f"{op}.failure", request_id, reason=e.code, detail=e.message, provider=provider)
            raise
        user = getattr(result, "value", {}).get("user") if result is not None else None
        audit(
            f"{op}.success",
            request_id,
            uid=user["uid"] if user else None,
            provider=user["provider"] if user else provider,
        )
        return result

    async def _link_phone(self, event: dict[str, Any], request_id: str) -> Any:
        """The platform's phone answer for this session's user, checked with the platform,
        stored on the user."""
        from ..auth.login import _sid
        from ..platform.phone import link_phone

        caller = await self.login.sessions.by_sid(_sid(event))
        try:
            phone = await link_phone(self.platform, caller, event)
        except MinibaseError as e:
            audit("phone.link.failure", request_id, uid=caller.uid, provider=caller.provider, reason=e.code)
            raise
        audit("phone.link.success", request_id, uid=caller.uid, provider=caller.provider)
        return {"phone": phone}
