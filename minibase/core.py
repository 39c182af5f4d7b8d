"""The transport-independent core: a Config in, functions that take events out.

HTTP adapters (``minibase.app``) and the FC handlers only translate requests into calls
on :class:`Minibase`; no business logic lives in them, and nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .audit import audit
from .auth import gateway
from .auth.credentials import CredentialMinter
from .auth.login import LoginFunction
from .auth.providers import Provider, build_providers
from .auth.sessions import Caller, Sessions
from .config import Config
from .data.api import DataFunction
from .data.store.base import Store
from .errors import (
    ConfigError,
    DeadlineExceeded,
    GatewayError,
    Internal,
    InvalidArgument,
    MinibaseError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from .functions.context import Context
from .functions.registry import FunctionSpec, Registry, run_with_timeout
from .util.timefmt import now as wall_clock

log = logging.getLogger("minibase")

BUILTINS = ("session", "db", "files")


class Minibase:
    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        providers: Mapping[str, Provider] | None = None,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store: Store = store if store is not None else _open_store(config)
        secrets = config.app.secrets
        if not secrets:
            from .secret_key import load_or_create

            secrets = (load_or_create(config.data_dir),)
        self.minter = CredentialMinter(secrets, config.auth.credentials_ttl)
        from .files.api import FilesFunction
        from .files.store import build_file_store

        self.file_store = build_file_store(config, secrets)
        self._files = FilesFunction(config, self.file_store)
        self.providers = dict(providers) if providers is not None else build_providers(config.auth)
        self.sessions = Sessions(self.store, config.auth, self.minter, clock)
        self._login = LoginFunction(config.auth, self.store, self.sessions, self.providers)
        self._db = DataFunction(config, self.store)
        self.functions = Registry.load(config.functions)

    async def start(self) -> None:
        await self.store.open()
        for name, col in self.config.collections.items():
            if col.indexes:
                await self.store.ensure_indexes(name, col.indexes, owner_first=col.read.text == "owner")

    async def stop(self) -> None:
        for p in self.providers.values():
            await p.aclose()
        await self.file_store.close()
        await self.store.close()

    # ------------------------------------------------------------------ callers

    async def caller_from_signature(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: Mapping[str, Any] | None,
        body: bytes,
    ) -> Caller:
        """A FC-signed request's caller; GatewayError/Unauthenticated if refused."""
        claims = gateway.verify_request(self.minter, method, path, headers, query, body, self.clock())
        try:
            return await self.sessions.by_ref(claims.session_ref)
        except Unauthenticated as e:
            # The credentials are well-formed but their session is gone: FC would say the
            # token is no longer valid; keep our reason in the message.
            raise GatewayError("InvalidSecurityToken", e.message) from None

    async def caller_from_session_id(self, sid: str) -> Caller:
        if not sid or len(sid) > 256:
            raise Unauthenticated("unknown session: log in again")
        return await self.sessions.by_sid(sid)

    # --------------------------------------------------------------- functions

    def has_function(self, name: str) -> bool:
        return name in BUILTINS or name in self.functions

    async def invoke(
        self,
        function: str,
        event: Any,
        caller: Caller | None,
        request_id: str = "",
        base_url: str | None = None,
    ) -> Any:
        """Run ``function`` with ``event`` for ``caller`` (None: no credentials sent)."""
        if not isinstance(event, dict):
            raise InvalidArgument("the event must be a JSON object")
        if function == "session":
            return await self._session(event, request_id)
        spec = self.functions.get(function)
        if spec is None and function not in BUILTINS:
            raise NotFound(f"no function named '{function[:64]}'")
        sid = event.get("sid")
        if caller is None:
            if isinstance(sid, str) and sid:
                # The sessionId is the bearer secret (it can mint credentials through
                # refresh anyway), so an event's sid counts as Authorization: Bearer.
                caller = await self.caller_from_session_id(sid)
            elif sid is not None:
                raise Unauthenticated("sid must be a sessionId")
            # else: an anonymous call; rules (or the function) decide.
        elif sid is not None and (not isinstance(sid, str) or not caller.owns_sid(sid)):
            raise PermissionDenied("sid does not match the session these credentials belong to")
        if spec is not None:
            return await self._run_developer_function(spec, event, caller, request_id, base_url)
        return await self._builtin(function, event, caller, base_url)

    async def _session(self, event: dict[str, Any], request_id: str) -> Any:
        op = event.get("op", "login")
        op = op if op in ("login", "refresh", "logout") else "session"
        provider = event.get("provider") if isinstance(event.get("provider"), str) else None
        try:
            result = await self._login(event)
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

    async def _builtin(
        self, function: str, event: dict[str, Any], caller: Caller | None, base_url: str | None = None
    ) -> Any:
        if function == "db":
            return await self._db(caller, event)
        if function == "files":
            return await self._files(caller, event, base_url=base_url)
        raise NotFound(f"no function named '{function[:64]}'")

    async def _run_developer_function(
        self,
        spec: FunctionSpec,
        event: dict[str, Any],
        caller: Caller | None,
        request_id: str,
        base_url: str | None,
    ) -> Any:
        if caller is None and not spec.public:
            raise Unauthenticated(f"log in to call {spec.name}")
        event = {k: v for k, v in event.items() if k != "sid"}  # a secret the function needn't see
        ctx = Context(
            caller=caller,
            config=self.config,
            request_id=request_id,
            invoke=lambda fn, ev, who: self._builtin(fn, ev, who, base_url),
            loop=asyncio.get_running_loop(),
            function=spec.name,
        )
        timeout = spec.timeout or self.config.functions.timeout_for(spec.name)
        try:
            result = await run_with_timeout(spec, ctx, event, timeout)
        except MinibaseError:
            raise
        except TimeoutError:
            raise DeadlineExceeded(f"{spec.name} did not finish within {timeout:g} s") from None
        except Exception:
            log.exception("function %s failed (request %s)", spec.name, request_id)
            raise Internal() from None
        try:
            orjson.dumps(result)
        except TypeError:
            log.error("function %s returned a value that is not JSON (request %s)", spec.name, request_id)
            raise Internal() from None
        return result


def _open_store(config: Config) -> Store:
    url = config.database.url
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .data.store.postgres import PostgresStore
        except ImportError:
            raise ConfigError(
                "database.url", "PostgreSQL needs asyncpg: pip install 'minibase[postgres]'"
            ) from None
        return PostgresStore(url)
    path = config.sqlite_path
    if path is None:
        raise ConfigError("database.url", "unsupported database URL")
    from .data.store.sqlite import SQLiteStore

    return SQLiteStore(path)
