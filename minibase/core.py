"""The transport-independent core: a Config in, functions that take events out.

HTTP adapters (``minibase.app``) and the FC handlers only translate requests into calls
on :class:`Minibase`; no business logic lives in them, and nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from .audit import audit
from .auth import gateway
from .auth.credentials import CredentialMinter
from .auth.issuer import build_issuer
from .auth.login import LoginFunction
from .auth.providers import Provider, build_providers
from .auth.sessions import Caller, Sessions
from .config import Config
from .data.validate import event as validate_event
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
from .store.protocols import Store
from .util.timefmt import now as wall_clock

if TYPE_CHECKING:
    from .data.api import DataFunction
    from .events.runner import Events
    from .files.api import FilesFunction
    from .files.store.base import FileStore
    from .platform.admin import AppDataFunction, AppFilesFunction
    from .platform.services import PlatformServices
    from .results import Raw

log = logging.getLogger("minibase")

BUILTINS = ("session", "db", "files")
STS_SIGNED_REFUSAL = (
    'this server issues STS credentials (auth.credentials = "sts"), whose signatures only '
    "Function Compute can verify: invoke through Function Compute, or send "
    "Authorization: Bearer <sessionId> (or the event's sid) to this server"
)


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
        self._secrets = secrets
        self._file_store: FileStore | None = None
        self._files: FilesFunction | None = None
        if config.files_root is None:
            _ = self.file_store  # S3/OSS: built now, so a bad setup stops the start
        self.providers = dict(providers) if providers is not None else build_providers(config.auth)
        self.sessions = Sessions(self.store, config.auth, self.minter, clock)
        self._login = LoginFunction(config.auth, self.store, self.sessions, self.providers)
        from .ratelimit import RateLimiter

        self.limiter = RateLimiter(self.store, config.rate_limits, clock)
        self._login.limiter = self.limiter
        self._db: DataFunction | None = None  # built on the first db call: a lighter cold start
        self._platform: PlatformServices | None = None  # built at start (ctx.identity, ctx.admin, ...)
        self._app_db: AppDataFunction | None = None
        self._content_checked = any(c.content_check for c in config.collections.values())
        self._app_files: AppFilesFunction | None = None
        self.functions = Registry.load(config.functions)
        # @webhook/@schedule/@after_write: their runner, only when the module declares any.
        self.events: Events | None = None
        self.background = False  # run schedules and the trigger dispatcher here (minibase serve)
        if self.functions.events:
            from .events.runner import Events, open_event_store

            self.events = Events(
                config,
                self.functions.events,
                open_event_store(config, self.store),
                self._event_context,
                clock,
            )
            self.events.check_keys()
        # Where login/refresh credentials come from (auth.credentials: local or sts).
        self.sessions.issuer = build_issuer(config, self.minter, ["db", "files", *self.functions.specs])

    def use_cloud_credentials(self, key_id: str, secret: str, token: str | None) -> None:
        """Sign calls to Alibaba Cloud (TableStore, STS) with these from now on: the FC
        runtime hands every invocation its role's current temporary credentials."""
        for part in (self.store, self.sessions.issuer):
            use = getattr(part, "use_credentials", None)  # only the parts that sign
            if use is not None:
                use(key_id, secret, token)

    @property
    def file_store(self) -> FileStore:
        """The files backend; the local one is built on first use (a lighter cold start)."""
        if self._file_store is None:
            from .files.store import build_file_store

            self._file_store = build_file_store(self.config, self._secrets)
        return self._file_store

    async def start(self) -> None:
        await self.store.open()
        from .platform.services import PlatformServices
        from .store.platform import platform_store_for

        platform_store = platform_store_for(self.store)  # its tables: the store's migrations
        self._platform = PlatformServices(self.config, platform_store, self.clock)
        self._login.platform_store = platform_store
        alipay = self.config.auth.alipay
        if alipay is not None and alipay.aes_key:
            from .platform.alipay import load_aes_key

            try:
                load_aes_key(alipay.aes_key)  # a bad key stops the start, not a later call
            except ValueError as e:
                raise ConfigError("auth.alipay.aes_key", str(e)) from None
        for name, col in self.config.collections.items():
            if col.indexes:
                await self.store.ensure_indexes(name, col.indexes, owner_first=col.read.text == "owner")
        # Always: a declaration removed since the last start drops its index rows.
        await self.store.ensure_search({n: c.search for n, c in self.config.collections.items() if c.search})
        if self.events is not None:
            await self.events.open()
            if self.background:
                self.events.start_background()

    async def stop(self) -> None:
        if self.events is not None:
            await self.events.close()
        for p in self.providers.values():
            await p.aclose()
        if self._platform is not None:
            await self._platform.aclose()
        if self._file_store is not None:
            await self._file_store.close()
        await self.store.close()

    # ------------------------------------------------------------------ callers

    async def caller_from_signature(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: Mapping[str, Any] | None,
        body: bytes,
        *,
        require_body_digest: bool = False,
    ) -> Caller:
        """A FC-signed request's caller; GatewayError/Unauthenticated if refused.
        ``require_body_digest``: refuse a request without a signed Content-MD5."""
        if self.config.auth.credentials == "sts":
            # STS holds the secret: only FC's own gateway can verify these signatures.
            raise GatewayError("InvalidSecurityToken", STS_SIGNED_REFUSAL)
        claims = gateway.verify_request(
            self.minter,
            method,
            path,
            headers,
            query,
            body,
            self.clock(),
            require_body_digest=require_body_digest,
        )
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

    # ------------------------------------------------------------------ events

    def has_webhook(self, name: str) -> bool:
        return self.events is not None and self.events.has_webhook(name)

    async def webhook(
        self, name: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes, request_id: str
    ) -> Raw:
        """A ``POST /webhooks/NAME`` request's answer (verified, deduplicated, handled)."""
        if self.events is None:
            raise NotFound(f"no webhook named '{name[:64]}'")
        return await self.events.webhook(name, headers, query, body, request_id)

    def _event_context(self, name: str, request_id: str) -> Context:
        """The Context of a webhook, schedule or trigger handler: there is no caller;
        ``ctx.admin`` acts as the app (audited under the handler's name)."""
        from .platform.services import admin_for

        loop = asyncio.get_running_loop()

        async def as_app(kind: str, event: dict[str, Any]) -> Any:
            return await self._as_app(kind, event, name, request_id, None)

        return Context(
            caller=None,
            config=self.config,
            request_id=request_id,
            invoke=lambda fn, ev, who: self._builtin(fn, ev, who, None),
            loop=loop,
            function=name,
            admin=admin_for(as_app, loop),
        )

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
        client_ip: str | None = None,
    ) -> Any:
        """Run ``function`` with ``event`` for ``caller`` (None: no credentials sent);
        ``client_ip`` (when the transport knows it) is what per-address limits count."""
        if not isinstance(event, dict):
            raise InvalidArgument("the event must be a JSON object")
        # The one input-limit check, before any function (built-in or not) sees the event.
        validate_event(event, self.config.limits)
        if function == "session":
            await self.limiter.session_call(client_ip)
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
        await self.limiter.call(caller.uid if caller is not None else None, client_ip)
        if spec is not None:
            return await self._run_developer_function(spec, event, caller, request_id, base_url)
        return await self._builtin(function, event, caller, base_url)

    async def _session(self, event: dict[str, Any], request_id: str) -> Any:
        op = event.get("op", "login")
        if op == "providers":  # a public listing, not a security event
            return await self._login(event)
        if op == "linkPhone":
            return await self._link_phone(event, request_id)
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
            if self._db is None:
                from .data.api import DataFunction

                self._db = DataFunction(self.config, self.store)
            if self._content_checked:
                await self._check_content(event, caller)
            return await self._db(caller, event)
        if function == "files":
            if self._files is None:
                from .files.api import FilesFunction

                self._files = FilesFunction(self.config, self.file_store)
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
        loop = asyncio.get_running_loop()
        ctx = Context(
            caller=caller,
            config=self.config,
            request_id=request_id,
            invoke=lambda fn, ev, who: self._builtin(fn, ev, who, base_url),
            loop=loop,
            function=spec.name,
            **(await self._context_extras(spec.name, caller, request_id, base_url, loop)),
        )
        timeout = spec.timeout or self.config.functions.timeout_for(spec.name)
        try:
            result = await run_with_timeout(spec, ctx, event, timeout)
        except MinibaseError:
            raise
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
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

    async def _context_extras(
        self,
        function: str,
        caller: Caller | None,
        request_id: str,
        base_url: str | None,
        loop: asyncio.AbstractEventLoop,
    ) -> dict[str, Any]:
        """ctx.identity, ctx.user, ctx.admin (docs/platform.md): only ever built here, for
        a developer function, never from anything a client sends."""
        from .platform.services import Platforms, PlatformServices, admin_for

        if self._platform is None:  # a core used without start() (tests of the parts)
            self._platform = PlatformServices(self.config, None, self.clock)
        platform = self._platform

        async def as_app(kind: str, event: dict[str, Any]) -> Any:
            return await self._as_app(kind, event, function, request_id, base_url)

        extras: dict[str, Any] = {"admin": admin_for(as_app, loop), "platform": Platforms(platform, loop)}
        if caller is not None:
            extras["identity"] = await platform.identity(caller)
            extras["user"] = await platform.user(caller)
        return extras

    async def _link_phone(self, event: dict[str, Any], request_id: str) -> Any:
        """The session function's ``linkPhone``: the platform's phone answer for this
        session's user, checked with the platform, stored on the user (docs/platform.md)."""
        from .auth.login import _sid
        from .platform.phone import link_phone
        from .platform.services import PlatformServices

        caller = await self.caller_from_session_id(_sid(event))
        if self._platform is None:
            self._platform = PlatformServices(self.config, None, self.clock)
        try:
            phone = await link_phone(self._platform, caller, event)
        except MinibaseError as e:
            audit("phone.link.failure", request_id, uid=caller.uid, provider=caller.provider, reason=e.code)
            raise
        audit("phone.link.success", request_id, uid=caller.uid, provider=caller.provider)
        return {"phone": phone}

    async def _check_content(self, event: dict[str, Any], caller: Caller | None) -> None:
        """[collections.X] content_check on a write by ``caller`` (docs/platform.md)."""
        from .platform.content import check_write
        from .platform.services import PlatformServices

        if self._platform is None:
            self._platform = PlatformServices(self.config, None, self.clock)
        await check_write(self.config, self._platform, event, caller)

    async def _as_app(
        self, kind: str, event: dict[str, Any], function: str, request_id: str, base_url: str | None
    ) -> Any:
        """One ``ctx.admin`` call: audited, then run with no rules."""
        from .platform.admin import AppDataFunction, AppFilesFunction, audit_admin

        validate_event(event, self.config.limits)
        audit_admin(function, request_id, kind, event)
        if kind == "db":
            if self._app_db is None:
                self._app_db = AppDataFunction(self.config, self.store)
            return await self._app_db.as_app(event)
        if self._app_files is None:
            self._app_files = AppFilesFunction(self.config, self.file_store)
        return await self._app_files.as_app(event, base_url)


def _open_store(config: Config) -> Store:
    url = config.database.url
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .store.postgres import PostgresStore
        except ImportError:
            raise ConfigError(
                "database.url", "PostgreSQL needs asyncpg: pip install 'minibase[postgres]'"
            ) from None
        return PostgresStore(url, query_time=config.limits.query_time)
    ots = config.database.tablestore
    if ots is not None:
        import importlib.util

        if importlib.util.find_spec("tablestore") is None:  # found, not imported: it is heavy
            raise ConfigError("database.url", "TableStore needs its SDK: pip install 'minibase[tablestore]'")
        from .store.tablestore import TableStoreStore

        db = config.database
        assert db.access_key_id is not None and db.access_key_secret is not None  # checked by config
        return TableStoreStore(
            ots.instance,
            ots.endpoint,
            db.access_key_id,
            db.access_key_secret,
            db.security_token,
            prefix=ots.prefix,
            query_time=config.limits.query_time,
        )
    path = config.sqlite_path
    if path is None:
        raise ConfigError("database.url", "unsupported database URL")
    from .store.sqlite import SQLiteStore

    return SQLiteStore(path, query_time=config.limits.query_time)
