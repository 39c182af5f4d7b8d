"""``minibase serve``: uvicorn serving the ASGI app, in one process or in ``--workers N``.

Slow clients are cut off: a request's headers must arrive within :data:`HEADER_TIMEOUT`
(uvicorn has no such limit: a client sending a byte every few seconds held a connection
indefinitely), its body within the app's body timeout, and an idle keep-alive connection
closes after :data:`KEEP_ALIVE`. ``X-Forwarded-For``/``-Proto``/``-Host`` are honoured
only from the proxies in ``FORWARDED_ALLOW_IPS`` (uvicorn's variable; loopback by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Config

__all__ = [
    "GRACEFUL_TIMEOUT",
    "HEADER_TIMEOUT",
    "KEEP_ALIVE",
    "ForwardedHeaders",
    "header_timeout_protocol",
    "serve",
    "serve_protocol",
    "uvicorn_options",
]

HEADER_TIMEOUT = 10.0  # seconds from connection (or the previous response) to a request's headers
KEEP_ALIVE = 5.0  # seconds an idle keep-alive connection stays open
MAX_HEADER_BYTES = 16 * 1024  # h11's limit on an incomplete request head
DEFAULT_TRUSTED_PROXIES = "127.0.0.1,::1"


def startup_notes(config: Config) -> list[str]:
    """Warnings a developer should see before the first request."""
    notes = []
    if config.auth.dev_enabled:
        notes.append(
            "WARNING: the 'dev' login provider is enabled: anyone can log in as any user "
            "with authCode 'dev:<name>'. Never enable [auth.dev] in production."
        )
    for name, hint in config.auth.unavailable.items():
        notes.append(f"note: login provider '{name}' is configured but not set up here: {hint}.")
    return notes


class ForwardedHeaders:
    """uvicorn's X-Forwarded-For/-Proto handling plus X-Forwarded-Host (as the Host header),
    all only when the connection comes from a trusted proxy: the app itself reads Host and
    the scope's scheme, never an X-Forwarded-* header a client could set."""

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        self.app = app
        self.proxy = ProxyHeadersMiddleware(app, trusted)  # type: ignore[arg-type]
        self.trusted = self.proxy.trusted_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            if not client or client[0] not in self.trusted:
                return await self.app(scope, receive, send)  # X-Forwarded-* count for nothing
            # A request without any X-Forwarded-* header (most) goes straight to the app.
            if not any(k.startswith(b"x-forwarded-") for k, _ in scope["headers"]):
                return await self.app(scope, receive, send)
            host = next((v for k, v in scope["headers"] if k == b"x-forwarded-host"), None)
            # The first hop's host, and only a plain one (no list, spaces or controls).
            host = host.split(b",", 1)[0].strip() if host else None
            if host and all(0x21 <= c <= 0x7E for c in host):
                scope = dict(scope)
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [(b"host", host)]
        await self.proxy(scope, receive, send)  # type: ignore[arg-type]


class _HeaderTimeout:
    """Mixed in before uvicorn's h11 or httptools protocol by :func:`header_timeout_protocol`.

    The budget is a deadline, not a timer per request: arming it stores a time, and one
    timer per connection fires at most once per :data:`HEADER_TIMEOUT` to compare (a
    keep-alive connection's requests would otherwise each create and cancel one)."""

    _header_seconds = HEADER_TIMEOUT
    _header_max_bytes = MAX_HEADER_BYTES
    _header_timer: asyncio.TimerHandle | None = None
    _header_deadline: float | None = None  # None: not waiting for headers
    _header_cycle: Any = None
    _header_bytes = 0
    # Set by uvicorn's protocols.
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        waiting = self._header_deadline is not None
        super().data_received(data)  # type: ignore[misc]
        self._started()
        if waiting and self._header_deadline is not None:  # still in the headers
            self._header_bytes += len(data)
            if self._header_bytes > self._header_max_bytes:
                self._expired()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm()  # the next request's headers get the same budget
            self._started()  # …unless a pipelined one already started

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_deadline = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._header_bytes = 0
        self._header_deadline = deadline = self.loop.time() + self._header_seconds
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None:
            return  # not waiting: the next _arm starts a timer again
        if self.loop.time() >= deadline:
            self._expired()
        else:  # armed again since this timer was set: wait for the new deadline
            self._header_timer = self.loop.call_at(deadline, self._check)

    def _started(self) -> None:
        if (
            self._header_deadline is not None
            and self.cycle is not None
            and self.cycle is not self._header_cycle
        ):
            self._header_cycle = self.cycle
            self._header_deadline = None

    def _expired(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def header_timeout_protocol(
    base: type[Any], timeout: float = HEADER_TIMEOUT, max_bytes: int = MAX_HEADER_BYTES
) -> type[Any]:
    """``base`` (uvicorn's h11 or httptools protocol) closing a connection whose request
    headers have not all arrived ``timeout`` seconds after it opened or after the previous
    response, or run past ``max_bytes``. Both protocols set ``self.cycle`` when a request's
    headers are complete."""
    attrs = {"_header_seconds": timeout, "_header_max_bytes": max_bytes}
    return type("HeaderTimeout", (_HeaderTimeout, base), attrs)


def serve_protocol() -> type[Any]:
    """The HTTP protocol class ``serve`` gives uvicorn: httptools (h11 without it), with the
    header timeout and each response's head and body written together
    (:mod:`.coalesced_writes`)."""
    from .coalesced_writes import CoalescedWrites

    base: type[Any]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a uvicorn[standard] extra
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    return header_timeout_protocol(type("CoalescedWrites", (CoalescedWrites, base), {}))


GRACEFUL_TIMEOUT = 30.0  # seconds in-flight requests get to finish on SIGTERM


def uvicorn_options(log_level: str) -> dict[str, Any]:
    """The uvicorn settings ``serve`` runs with (bench/bare_app.py serves its baseline so too)."""
    return {
        "log_level": log_level,
        "access_log": False,  # one line per request costs more than the request itself
        "server_header": False,
        "lifespan": "on",
        "http": serve_protocol(),
        "proxy_headers": False,  # ForwardedHeaders does it, Host included
        "timeout_keep_alive": int(KEEP_ALIVE),
        "timeout_graceful_shutdown": int(GRACEFUL_TIMEOUT),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }


def serve(
    config: Config,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    workers: int = 1,
) -> int:
    """Serve until stopped; the exit status. ``workers`` > 1: a supervisor and that many
    forked processes on one listening socket (:mod:`minibase.runtime.workers`)."""
    import uvicorn

    from ..app import create_app
    from ..core import Minibase

    # Built before uvicorn starts, so a bad key file or secret fails here, with its key named.
    # With workers it is built once here and inherited by every fork, never started here.
    # Each process runs the schedules and delivers triggers (claims in the database make
    # every run and delivery happen once across them).
    minibase_app = create_app(config, core=Minibase.from_config(config, background=True))
    app = ForwardedHeaders(minibase_app, os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_TRUSTED_PROXIES))
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    for note in startup_notes(config):
        print(note, file=sys.stderr, flush=True)
    options = uvicorn_options(log_level)
    if workers <= 1 or not hasattr(os, "fork"):
        server = _server(uvicorn.Config(app, host=host, port=port, **options), minibase_app)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:
            sys.exit(3)  # as uvicorn.run: its STARTUP_FAILURE
        return 0

    from .workers import Supervisor

    sock = uvicorn.Config(app, host=host, port=port, **options).bind_socket()

    def worker() -> int:
        _server(uvicorn.Config(app, **options), minibase_app).run(sockets=[sock])
        return 0

    try:
        return Supervisor(worker, workers, graceful_timeout=GRACEFUL_TIMEOUT, on_stop=sock.close).run()
    finally:
        sock.close()


def _server(config: Any, minibase_app: Any) -> Any:
    """uvicorn's Server, telling the app when a stop begins: realtime streams end then (an
    SSE stream would otherwise hold the graceful stop for its whole timeout)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            hub = minibase_app.core.realtime
            if hub is not None:
                hub.stopping()
            super().handle_exit(sig, frame)

    return Server(config)
