"""The HTTP adapter: the ASGI app (docs/http-api.md) around a :class:`Minibase` core.

It reads requests, finds the caller, calls the core and renders results and errors; no
business logic here. The routes are :data:`minibase.routes.ROUTES`. The function routes
(``/session``, ``/invoke/…`` and FC's paths) are served by a small hand-written ASGI layer
in front of Starlette: they are the hot path, and Starlette's Request/Response objects cost
more than the rest of a point read. The other routes, lifespan and 404/405 handling are
Starlette's, built from the same table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .audit import audit
from .auth.sessions import Caller
from .config import Config
from .core import Minibase
from .errors import (
    GatewayError,
    Internal,
    InvalidArgument,
    MethodNotAllowed,
    MinibaseError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    error_body,
    handled_error_body,
)
from .results import Page, Raw, Spread
from .routes import ROUTES, Router
from .util import jsonin
from .util.ids import request_id
from .util.timefmt import now, rfc3339_ms

__all__ = ["MinibaseApp", "create_app"]

log = logging.getLogger("minibase.http")

# A request body must arrive within this many seconds (1 MiB at ~50 KiB/s): a slow client
# must not hold a connection and a task for as long as it likes.
BODY_TIMEOUT = 20.0
_CLOSE = ((b"connection", b"close"),)
_JSON = (b"content-type", b"application/json")
_HANDLED = (b"x-fc-error-type", b"HandledInvocationError")


def _render(result: Any) -> bytes:
    if isinstance(result, Page):
        return orjson.dumps({"data": result.data, "next": result.next})
    if isinstance(result, Spread):
        return orjson.dumps({**result.value, "data": result.value})
    return orjson.dumps({"data": result})


def _body_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than {limit} bytes (limits.max_body)", limit="limits.max_body", max=limit
    )


class _Request:
    """What the function routes need of a request, read straight off the ASGI scope."""

    __slots__ = ("body", "close", "headers", "method", "path", "query_string", "raw_path", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        raw = scope.get("raw_path")
        self.raw_path: str = raw.decode("latin-1") if raw else self.path
        self.query_string: bytes = scope.get("query_string", b"")
        # ASGI servers give lower-case names; a repeated header keeps its last value.
        self.headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.body = b""
        self.close = False  # answer with Connection: close (the body was not all read)

    @property
    def client_ip(self) -> str | None:
        """The caller's address: uvicorn puts a trusted proxy's X-Forwarded-For here, the FC
        handlers the trigger's sourceIp."""
        client = self.scope.get("client")
        return str(client[0]) if client else None

    def query(self) -> dict[str, list[str]] | None:
        """The query as FC signs it, for HTTP-trigger (``/proxy/``) paths only."""
        if "/proxy/" not in self.raw_path:
            return None
        out: dict[str, list[str]] = {}
        for k, v in parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True):
            out.setdefault(k, []).append(v)
        return {k: [] if vs == [""] else vs for k, vs in out.items()}  # `?flag` signs bare


class MinibaseApp:
    """The ASGI app: the function routes of :data:`~minibase.routes.ROUTES` by hand,
    everything else (and other methods on those: 405) through Starlette."""

    def __init__(self, config: Config, core: Minibase) -> None:
        self.core = core
        self.service = config.app.service
        self.limit = config.limits.max_body
        self.body_timeout = BODY_TIMEOUT
        # Requests reading their body -> deadline, swept by one timer (see _sweep).
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_loop: asyncio.AbstractEventLoop | None = None
        self.require_body_digest = config.auth.require_body_digest
        self.starlette = _starlette(core, self.start, self.stop)
        self.state = self.starlette.state
        # Local files are served here (built on the first /files/ request: cold start).
        self.local_files = config.files_root is not None
        self.files_app: ASGIApp | None = None
        origins = config.app.cors_origins
        self.cors_any = "*" in origins
        self.cors_origins = frozenset(o.encode() for o in origins)
        self.router = Router(r for r in ROUTES if r.fast)
        # This instance's requests by minute, and the admin console at /_/ (docs/console.md).
        from .console import ConsoleMount
        from .util.counters import Counters

        self.counters = Counters()
        self.console = ConsoleMount(core, self.counters)
        # Route handler -> (method, whether its function errors answer in FC's handled shape).
        self.handlers: dict[str, tuple[_Handler, bool]] = {
            "session": (self._session, False),
            "invoke": (self._invoke, False),
            "fc_invoke": (self._fc_invoke, True),
            "webhook": (self._webhook, False),
        }

    async def start(self) -> None:
        """At startup (the lifespan, or FC's runtime): the core starts; this loop's audit
        events are this app's."""
        await self.core.start()
        self.console.bind(asyncio.get_running_loop())

    async def stop(self) -> None:
        """At shutdown (the lifespan, or FC's runtime reset): what the app holds is flushed
        (the console's audit batch) before the core closes the store under it."""
        await self.console.close()
        await self.core.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.cors_origins:
            origin = _header(scope, b"origin")
            if origin is not None and (self.cors_any or origin in self.cors_origins):
                if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
                    return await _preflight(send, origin)
                send = _with_cors(send, origin)
        if scope["type"] == "http" and (scope["path"] == "/_" or scope["path"].startswith("/_/")):
            return await self.console(scope, receive, send)
        if scope["type"] == "http" and self.local_files and scope["path"].startswith("/files/"):
            if self.files_app is None:
                from .files.http import LocalFilesApp
                from .files.store import LocalFileStore

                store = self.core.file_store
                assert isinstance(store, LocalFileStore)  # files_root set: the local backend
                self.files_app = LocalFilesApp(store)
            return await self.files_app(scope, receive, send)
        if scope.get("path") in _REALTIME:
            from .realtime import http as realtime

            if scope["type"] == "websocket":
                return await realtime.serve_websocket(self, scope, receive, send)
            return await realtime.serve_http(self, _Request(scope), scope, receive, send)
        if scope["type"] == "http":
            hit = self.router.match(scope["method"], scope["path"])
            if hit is not None:
                route, params = hit
                handler, handled = self.handlers[route.handler]
                return await self._respond(handler, handled, scope, receive, send, params)
        await self.starlette(scope, receive, send)

    # --------------------------------------------------------------- plumbing

    async def _read(self, req: _Request, receive: Receive, *, parse: bool = True) -> Any:
        """Read the body (for Content-MD5) and return its JSON; an empty body is ``{}``.
        ``parse=False``: only read it (into ``req.body``)."""
        length = req.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise InvalidArgument("Content-Length is not a number")
            if int(length) > self.limit:
                raise _body_too_large(self.limit)
        chunks: list[bytes] = []
        size = 0
        task = asyncio.current_task()
        if task is not None:
            loop = asyncio.get_running_loop()
            self._reading[task] = loop.time() + self.body_timeout
            if self._sweeper is None or self._sweep_loop is not loop:
                self._sweep()
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > self.limit:
                        raise _body_too_large(self.limit)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if task is None or task not in self._late:
                raise
            if hasattr(task, "uncancel"):
                task.uncancel()
            req.close = True  # the answer closes the connection: the rest is not read
            raise InvalidArgument(f"the request body did not arrive within {self.body_timeout:g} s") from None
        finally:
            if task is not None:
                self._reading.pop(task, None)
                self._late.discard(task)
        req.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not parse:
            return None
        if not req.body.strip():
            return {}
        try:
            return jsonin.loads(req.body)
        except orjson.JSONDecodeError:
            raise InvalidArgument("the request body is not valid JSON") from None

    def _sweep(self) -> None:
        """Cancel the body reads past their deadline; again in a while, as long as any is
        running. One timer for all requests instead of one created and cancelled per
        request: a deadline is kept to within a quarter of the timeout (at most 1 s)."""
        self._sweeper = None
        loop = self._sweep_loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in list(self._reading.items()):
            if task.done():  # of a loop that is gone
                del self._reading[task]
            elif now >= deadline and task not in self._late and task.get_loop() is loop:
                self._late.add(task)
                task.cancel()
        if self._reading:
            self._sweeper = loop.call_later(min(1.0, self.body_timeout / 4), self._sweep)

    @staticmethod
    def _base_url(req: _Request) -> str:
        """This server's base URL as the client reached it (for signed file URLs): Host and
        the scope's scheme. X-Forwarded-Host/-Proto count only from a trusted proxy, and
        that is decided at the edge (``minibase serve``'s ForwardedHeaders, FC's adapter)."""
        host = req.headers.get("host") or "127.0.0.1"
        return f"{req.scope.get('scheme', 'http')}://{host}"

    async def _caller(self, req: _Request, *, require_body_digest: bool) -> Caller | None:
        """``require_body_digest``: a FC-signed call must sign a Content-MD5 of its body (always
        on /invoke/…; on FC's paths when [auth] require_body_digest), so a captured request
        cannot carry another event."""
        auth = req.headers.get("authorization")
        if not auth:
            return None
        if auth.startswith("Bearer "):
            return await self.core.caller_from_session_id(auth[7:].strip())
        return await self.core.caller_from_signature(
            req.method,
            req.raw_path,
            req.headers,
            req.query(),
            req.body,
            require_body_digest=require_body_digest,
        )

    @staticmethod
    async def _send(send: Send, status: int, body: bytes, rid: str, *extra: tuple[bytes, bytes]) -> None:
        headers = [
            _JSON,
            (b"content-length", str(len(body)).encode()),
            (b"x-fc-request-id", rid.encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _send_raw(send: Send, status: int, body: bytes, rid: str, ctype: tuple[bytes, bytes]) -> None:
        headers = [ctype, (b"content-length", str(len(body)).encode()), (b"x-fc-request-id", rid.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _error(
        self, send: Send, e: MinibaseError, rid: str, *extra: tuple[bytes, bytes], handled: bool = False
    ) -> None:
        """``handled``: a function's error on FC's Invoke API path: 200, in FC's shape too."""
        if handled:
            extra = (*extra, _HANDLED)
        if isinstance(e, PermissionDenied | RateLimited):
            audit(
                "permission.denied" if isinstance(e, PermissionDenied) else "rate.limited",
                rid,
                reason=e.message,
            )
        retry = e.details.get("retryAfter")
        if retry is not None:
            extra = (*extra, (b"retry-after", str(retry).encode()))
        body = handled_error_body(e, rid) if handled else error_body(e, rid)
        await self._send(send, 200 if handled else e.status, orjson.dumps(body), rid, *extra)

    async def _gateway_error(
        self, send: Send, e: GatewayError, rid: str, *extra: tuple[bytes, bytes]
    ) -> None:
        audit("gateway.refused", rid, reason=e.fc_code, detail=e.message)
        # ServerTime: the Date header again, for hosts that drop an error's headers.
        body = {
            "ErrorCode": e.fc_code,
            "ErrorMessage": e.message,
            "RequestId": rid,
            "ServerTime": rfc3339_ms(now()),
        }
        await self._send(send, e.fc_status, orjson.dumps(body), rid, *extra)

    # ----------------------------------------------------------------- routes

    async def _respond(
        self,
        handler: _Handler,
        handled: bool,
        scope: Scope,
        receive: Receive,
        send: Send,
        params: tuple[str, ...],
    ) -> None:
        """Run a function route's handler and answer: its result as 200, or its error.

        ``handled``: the route is FC's Invoke API, where a function's error answers 200 in
        FC's shape too; the handler raises :class:`_Refused` for what FC's gateway refuses.
        """
        rid = request_id(scope)  # the one id of this request: every answer and log line has it
        req = _Request(scope)
        try:
            result = await handler(req, receive, rid, *params)
            if isinstance(result, Raw):
                ctype = (b"content-type", result.content_type.encode())
                return await self._send_raw(send, result.status, result.body, rid, ctype)
            body = _render(result)
        except _Refused as e:
            self.counters.hit(e.error.fc_status)
            return await self._gateway_error(send, e.error, rid, *e.headers, *_closing(req))
        except MinibaseError as e:
            self.counters.hit(e.status)
            return await self._error(send, e, rid, *_closing(req), handled=handled)
        except Exception:
            self.counters.hit(500)
            log.exception("unhandled error (request %s)", rid)
            return await self._error(send, Internal(), rid, *_closing(req), handled=handled)
        self.counters.hit(200)
        await self._send(send, 200, body, rid)

    async def _session(self, req: _Request, receive: Receive, rid: str, service: str | None = None) -> Any:
        if service is not None and service != self.service:
            raise NotFound(f"no service named '{service[:64]}'")
        event = await self._read(req, receive)
        return await self.core.invoke("session", event, None, rid, None, req.client_ip)

    async def _invoke(self, req: _Request, receive: Receive, rid: str, name: str) -> Any:
        if not self.core.has_function(name):
            raise NotFound(f"no function named '{name[:64]}'")
        event = await self._read(req, receive)
        caller = await self._caller(req, require_body_digest=True)
        return await self.core.invoke(name, event, caller, rid, self._base_url(req), req.client_ip)

    async def _webhook(self, req: _Request, receive: Receive, rid: str, name: str) -> Raw:
        """``POST /webhooks/NAME``: the raw request to the core (verification is the core's)."""
        if not self.core.has_webhook(name):
            raise NotFound(f"no webhook named '{name[:64]}'")
        await self._read(req, receive, parse=False)
        query = dict(parse_qsl(req.query_string.decode("latin-1"), keep_blank_values=True))
        return await self.core.webhook(name, req.headers, query, req.body, rid)

    async def _fc_invoke(self, req: _Request, receive: Receive, rid: str, service: str, name: str) -> Any:
        """FC Invoke API semantics: gateway errors FC's way, function errors as 200."""
        try:
            if service != self.service:
                raise GatewayError("ServiceNotFound", f"service '{service[:64]}' does not exist", 404)
            if not self.core.has_function(name):
                raise GatewayError("FunctionNotFound", f"function '{name[:64]}' does not exist", 404)
            event = await self._read(req, receive)
            if not req.headers.get("authorization", "").startswith("FC "):
                raise GatewayError(
                    "MissingRequiredHeader", "a FC-signed Authorization header is required", 401
                )
            caller = await self._caller(req, require_body_digest=self.require_body_digest)
        except GatewayError as e:
            raise _Refused(e) from None
        except MinibaseError as e:  # a bad body, an unreachable session store: FC's way too
            raise _Refused(GatewayError(e.code, e.message, e.status), e.details.get("retryAfter")) from None
        return await self.core.invoke(name, event, caller, rid, self._base_url(req), req.client_ip)


_Handler = Callable[..., Awaitable[Any]]
_REALTIME = frozenset(r.path for r in ROUTES if r.handler.startswith("realtime"))


class _Refused(Exception):
    """FC's gateway refuses the call (FC Invoke API path): answered in FC's shape."""

    def __init__(self, error: GatewayError, retry_after: object = None) -> None:
        self.error = error
        # An outage (503) before the function ran: its Retry-After goes with FC's shape.
        self.headers = ((b"retry-after", str(retry_after).encode()),) if retry_after is not None else ()


_CORS_HEADERS = "authorization, content-type, content-md5, date, x-fc-date, x-fc-security-token, x-fc-invocation-type, x-fc-log-type"
_CORS_EXPOSE = b"date, x-fc-request-id, x-fc-error-type, retry-after"


def _closing(req: _Request) -> tuple[tuple[bytes, bytes], ...]:
    """Connection: close when the request's body was not all read (a late body)."""
    return _CLOSE if req.close else ()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return None


async def _preflight(send: Send, origin: bytes) -> None:
    headers = [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", b"GET, HEAD, POST, PUT"),
        (b"access-control-allow-headers", _CORS_HEADERS.encode()),
        (b"access-control-max-age", b"86400"),
        (b"vary", b"origin"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: bytes) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            extra = [
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", _CORS_EXPOSE),
                (b"vary", b"origin"),
            ]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404, 405 and 500 in the error envelope."""
    rid = request_id(request.scope)
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    err: MinibaseError
    if status == 405:
        err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path[:200]}")
    elif status == 404:
        err = NotFound(f"no route {request.url.path[:200]}")
    else:
        err = Internal()
    resp = _json(error_body(err, rid), err.status)
    resp.headers["x-fc-request-id"] = rid
    return resp


def _starlette(
    core: Minibase, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> Starlette:
    async def healthz(request: Request) -> Response:
        return _json({"data": {"ok": True}})

    spec: list[bytes] = []

    async def openapi(request: Request) -> Response:
        if not spec:  # built on first request: it is not needed to serve anything else
            from .openapi import build_openapi

            config = core.config
            doc = build_openapi(config.app.service, sorted(core.functions.developer()), limits=config.limits)
            spec.append(orjson.dumps(doc))
        return Response(spec[0], media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await start()
        try:
            yield
        finally:
            await stop()

    async def not_here(request: Request) -> Response:  # POSTs are served before Starlette
        raise HTTPException(404)

    endpoints = {"healthz": healthz, "openapi": openapi}
    # The function routes are only reached here by other methods (MinibaseApp serves
    # theirs), so they answer 405; the mounted ones are not Starlette's.
    routes: list[BaseRoute] = [
        Route(r.path, not_here if r.fast else endpoints[r.handler], methods=list(r.methods))
        for r in ROUTES
        if not r.mounted
    ]
    if core.config.app.web is not None:
        from .web import WebFiles

        # The example's web app at "/"; after every API route. No dotfiles, no symlinks out.
        routes.append(Mount("/", app=WebFiles(core.config.app.web, core.config.app.csp)))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _http_error, 405: _http_error, 500: _http_error},
    )


def create_app(config: Config, *, core: Minibase | None = None) -> MinibaseApp:
    """The ASGI app for ``config`` (``core`` to share or pre-build the Minibase)."""
    return MinibaseApp(config, core if core is not None else Minibase.from_config(config))
