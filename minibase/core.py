"""The transport-independent core: a Config in, functions that take events out.

HTTP adapters (``minibase.app``) and the FC handlers only translate requests into calls
on :class:`Minibase`; no business logic lives in them, and nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

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
from .functions.builtins import builtin_specs
from .functions.context import Context
from .functions.registry import FunctionSpec, Registry, run_with_timeout
from .store.protocols import Store
from .util.lazy import Lazy
from .util.timefmt import now as wall_clock

if TYPE_CHECKING:
    from .events.runner import Events
    from .files.store.base import FileStore
    from .platform.admin import AppDataFunction, AppFilesFunction
    from .platform.services import PlatformServices
    from .ratelimit import RateLimiter
    from .realtime.hub import Hub
    from .results import Raw
    from .store.events import EventStore

log = logging.getLogger("minibase")

STS_SIGNED_REFUSAL = (
    'this server issues STS credentials (auth.credentials = "sts"), whose signatures only '
    "Function Compute can verify: invoke through Function Compute, or send "
    "Authorization: Bearer <sessionId> (or the event's sid) to this server"
)


class Minibase:
    """The core over its collaborators. :meth:`from_config` builds them from a Config (the
    I/O: the secret key, the store, the developer's module); tests may pass their own."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store,
        minter: CredentialMinter,
        sessions: Sessions,
        limiter: RateLimiter,
        providers: Mapping[str, Provider],
        functions: Registry,
        file_store: Lazy[FileStore],
        platform: PlatformServices,
        event_store: EventStore | None = None,
        background: bool = False,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.minter = minter
        self.sessions = sessions
        self.limiter = limiter
        self.providers = providers
        self.functions = functions  # the built-ins and the developer's: one invoke path
        self._file_store = file_store
        self.platform = platform  # ctx.identity, ctx.user, ctx.platform, content checks
        self._app_db: AppDataFunction | None = None  # ctx.admin's, built on first use
        self._app_files: AppFilesFunction | None = None
        # @webhook/@schedule/@after_write: their runner over ``event_store``, only when the
        # module declares any. Built here, not passed in: it asks this core for its
        # handlers' contexts.
        self.events: Events | None = None
        self.background = background  # run schedules and the trigger dispatcher here (minibase serve)
        self.realtime: Hub | None = None  # realtime watches, started with the background work
        if functions.events:
            if event_store is None:
                raise ValueError("the module declares @webhook/@schedule/@after_write: pass an event_store")
            from .events.runner import Events

            self.events = Events(config, functions.events, event_store, self._event_context, clock)

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        store: Store | None = None,
        providers: Mapping[str, Provider] | None = None,
        background: bool = False,
        clock: Callable[[], float] = wall_clock,
    ) -> Minibase:
        """The core ``config`` describes: loads (or creates) the secret key, builds the store,
        the providers, the file store (S3/OSS now, so a bad setup stops the start; the local
        one on first use), imports the developer's module and loads its webhooks' keys.
        Nothing connects yet: see :meth:`start`. ``background``: this process runs the
        schedules and delivers the triggers (``minibase serve``)."""
        from .platform.services import PlatformServices
        from .ratelimit import RateLimiter
        from .store.platform import platform_store_for

        store = store if store is not None else _open_store(config)
        platform = PlatformServices(config, platform_store_for(store), clock)  # its tables: the store's
        secrets = config.app.secrets or _load_or_create_secret(config)
        minter = CredentialMinter(secrets, config.auth.credentials_ttl)
        file_store = Lazy(partial(_build_file_store, config, secrets))
        if config.files_root is None:
            file_store.get()
        providers = dict(providers) if providers is not None else build_providers(config.auth)
        functions = Registry.load(config.functions)
        # Where login/refresh credentials come from (auth.credentials: local or sts).
        issuer = build_issuer(config, minter, ["db", "files", *functions.developer()])
        sessions = Sessions(store, config.auth, minter, clock, issuer)
        limiter = RateLimiter(store, config.rate_limits, clock)
        login = LoginFunction(config.auth, store, sessions, providers, limiter, platform.store)
        for spec in builtin_specs(config, store, login, platform, file_store):
            functions.add_builtin(spec)
        event_store = None
        if functions.events:
            from .events.runner import open_event_store

            event_store = open_event_store(config, store)
        core = cls(
            config,
            store=store,
            minter=minter,
            sessions=sessions,
            limiter=limiter,
            providers=providers,
            functions=functions,
            file_store=file_store,
            platform=platform,
            event_store=event_store,
            background=background,
            clock=clock,
        )
        if core.events is not None:
            core.events.check_keys()  # a bad key file stops the start, with its key named
        return core

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
        return self._file_store.get()

    async def start(self) -> None:
        await self.store.open()
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
        if self.background and self.config.app.realtime:
            await self._start_realtime()

    async def _start_realtime(self) -> None:
        from .events.runner import open_event_store
        from .realtime.hub import Hub

        if self.events is not None:
            hub = Hub(self, self.events.store, own_events=False)
        else:
            try:
                store = open_event_store(self.config, self.store)
            except ConfigError:
                log.info("realtime watches need SQLite or PostgreSQL: not served with this database")
                return
            hub = Hub(self, store, own_events=True)
        await hub.start()
        self.realtime = hub

    async def stop(self) -> None:
        if self.realtime is not None:
            await self.realtime.stop()
            self.realtime = None
        if self.events is not None:
            await self.events.close()
        for p in self.providers.values():
            await p.aclose()
        await self.platform.aclose()
        built = self._file_store.built
        if built is not None:
            await built.close()
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
            invoke=lambda fn, ev, who: self._call_builtin(fn, ev, who, request_id, None),
            loop=loop,
            function=name,
            admin=admin_for(as_app, loop),
        )

    # --------------------------------------------------------------- functions

    def has_function(self, name: str) -> bool:
        return name in self.functions

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
        ``client_ip`` (when the transport knows it) is what per-address limits count.
        Built-in and developer functions alike: one lookup, one check of the caller."""
        if not isinstance(event, dict):
            raise InvalidArgument("the event must be a JSON object")
        # The one input-limit check, before any function (built-in or not) sees the event.
        validate_event(event, self.config.limits)
        spec = self.functions.get(function)
        if spec is None:
            raise NotFound(f"no function named '{function[:64]}'")
        if spec.sessionless:
            await self.limiter.session_call(client_ip)
            caller = None
        else:
            caller = await self._event_caller(event, caller)
            await self.limiter.call(caller.uid if caller is not None else None, client_ip)
            if caller is None and not spec.public:
                raise Unauthenticated(f"log in to call {spec.name}")
        if spec.builtin:
            return await spec.fn(event, caller, request_id, base_url)
        return await self._run_developer_function(spec, event, caller, request_id, base_url)

    async def _event_caller(self, event: dict[str, Any], caller: Caller | None) -> Caller | None:
        """The caller, given the event's ``sid``: a bearer sessionId when no credentials
        came with the call; else it must be the credentials' own session."""
        sid = event.get("sid")
        if caller is None:
            if isinstance(sid, str) and sid:
                # The sessionId is the bearer secret (it can mint credentials through
                # refresh anyway), so an event's sid counts as Authorization: Bearer.
                return await self.caller_from_session_id(sid)
            if sid is not None:
                raise Unauthenticated("sid must be a sessionId")
            return None  # an anonymous call; rules (or the function) decide
        if sid is not None and (not isinstance(sid, str) or not caller.owns_sid(sid)):
            raise PermissionDenied("sid does not match the session these credentials belong to")
        return caller

    async def _call_builtin(
        self,
        function: str,
        event: dict[str, Any],
        caller: Caller | None,
        request_id: str,
        base_url: str | None,
    ) -> Any:
        """A handler's ``ctx.db``/``ctx.files``: the built-in entry, as the handler's caller."""
        spec = self.functions.get(function)
        if spec is None or not spec.builtin:
            raise NotFound(f"no function named '{function[:64]}'")
        return await spec.fn(event, caller, request_id, base_url)

    async def _run_developer_function(
        self,
        spec: FunctionSpec,
        event: dict[str, Any],
        caller: Caller | None,
        request_id: str,
        base_url: str | None,
    ) -> Any:
        event = {k: v for k, v in event.items() if k != "sid"}  # a secret the function needn't see
        loop = asyncio.get_running_loop()
        ctx = Context(
            caller=caller,
            config=self.config,
            request_id=request_id,
            invoke=lambda fn, ev, who: self._call_builtin(fn, ev, who, request_id, base_url),
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
        from .platform.services import Platforms, admin_for

        platform = self.platform

        async def as_app(kind: str, event: dict[str, Any]) -> Any:
            return await self._as_app(kind, event, function, request_id, base_url)

        extras: dict[str, Any] = {"admin": admin_for(as_app, loop), "platform": Platforms(platform, loop)}
        if caller is not None:
            extras["identity"] = await platform.identity(caller)
            extras["user"] = await platform.user(caller)
        return extras

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


def _load_or_create_secret(config: Config) -> tuple[str]:
    """The server secret from the data dir (made there on the first start): no ``app.secret``."""
    from .secret_key import load_or_create

    return (load_or_create(config.data_dir),)


def _build_file_store(config: Config, secrets: Sequence[str]) -> FileStore:
    from .files.store import build_file_store

    return build_file_store(config, secrets)


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

    # Queries try the loop first only while one document's JSON is at most 1 MiB (the
    # default): a JSON function on a larger one could hold the loop for tens of ms.
    inline = config.limits.max_document <= 1024 * 1024
    return SQLiteStore(path, query_time=config.limits.query_time, inline_queries=inline)
