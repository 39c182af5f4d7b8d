"""The realtime transports (docs/realtime.md): a WebSocket at ``GET /realtime`` and SSE at
``POST /realtime/sse``. Adapters only: frames in and out of a :class:`Connection`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import InvalidArgument, MethodNotAllowed, MinibaseError, NotFound, error_body
from ..util.ids import request_id
from .connection import Connection

if TYPE_CHECKING:
    from ..app import MinibaseApp, _Request

__all__ = ["NOT_SERVED", "serve_sse", "serve_websocket"]

log = logging.getLogger("minibase.realtime")

NOT_SERVED = "realtime is served by `minibase serve` on SQLite or PostgreSQL, not here (docs/realtime.md)"
GRACE = 5.0  # seconds an ending connection's last frames get before the socket is closed anyway
_METHODS = {"/realtime": "GET", "/realtime/sse": "POST"}
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),  # proxies that buffer answers must not hold frames back
]


async def serve_websocket(app: MinibaseApp, scope: Scope, receive: Receive, send: Send) -> None:
    ws = WebSocket(scope, receive, send)
    await ws.accept()
    hub = app.core.realtime
    if hub is None:
        await ws.send_text(
            orjson.dumps({"type": "error", "error": error_body(NotFound(NOT_SERVED), "")["error"]}).decode()
        )
        await ws.close(code=4404)
        return
    client = scope.get("client")
    conn = Connection(hub, str(client[0]) if client else None)
    try:
        hub.connect(conn)
    except MinibaseError as e:
        conn.fail(e)

    async def read() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            await conn.receive(text if text is not None else message.get("bytes") or b"")

    async def write() -> None:
        async for data in conn.frames():
            await ws.send_text(data.decode())

    async def grace() -> None:
        await conn.ended.wait()
        await asyncio.sleep(GRACE)

    tasks = [asyncio.ensure_future(f()) for f in (read, write, grace)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        _cancel(tasks)
        hub.disconnect(conn)
    if tasks[0] not in done:  # the client is still there: say why it ends
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await ws.close(code=conn.close_code)


async def serve_http(app: MinibaseApp, req: _Request, scope: Scope, receive: Receive, send: Send) -> None:
    """A plain HTTP request on a realtime path: SSE, or why not."""
    rid = request_id(scope)
    from ..app import _closing

    try:
        if app.core.realtime is None:
            raise NotFound(NOT_SERVED)
        method = _METHODS[scope["path"]]
        if scope["method"] != method:
            raise MethodNotAllowed(f"{scope['method'][:16]} is not allowed on {scope['path']}")
        if method == "GET":
            raise InvalidArgument("GET /realtime takes a WebSocket upgrade (docs/realtime.md)")
        conn = await _open_sse(app, req, receive)
    except MinibaseError as e:
        app.counters.hit(e.status)
        return await app._error(send, e, rid, *_closing(req))
    app.counters.hit(200)
    await serve_sse(conn, rid, receive, send)


async def _open_sse(app: MinibaseApp, req: _Request, receive: Receive) -> Connection:
    hub = app.core.realtime
    assert hub is not None
    msg = await app._read(req, receive)
    if not isinstance(msg, dict) or msg.get("type", "subscribe") != "subscribe":
        raise InvalidArgument("the body is one subscribe message (docs/realtime.md)")
    conn = Connection(hub, req.client_ip)
    auth = req.headers.get("authorization")
    if auth is not None and auth.startswith("Bearer "):
        conn.adopt(await app.core.caller_from_session_id(auth[7:].strip()), None)
    elif auth:
        caller, expires = await hub.signed_caller(
            req.method, req.raw_path, req.headers, req.query(), req.body, require_body_digest=True
        )
        conn.adopt(caller, expires)
    else:
        conn.anonymous = True
    hub.connect(conn)
    try:
        await conn.subscribe(msg)
    except BaseException:
        hub.disconnect(conn)
        raise
    return conn


async def serve_sse(conn: Connection, rid: str, receive: Receive, send: Send) -> None:
    """Stream ``conn``'s frames as events until it ends or the client goes."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_SSE_HEADERS, (b"x-fc-request-id", rid.encode())],
        }
    )

    async def write() -> None:
        async for data in conn.frames():
            await send({"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True})

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    tasks = [asyncio.ensure_future(write()), asyncio.ensure_future(gone())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        _cancel(tasks)
        conn.hub.disconnect(conn)
    if tasks[0] in done:
        with contextlib.suppress(OSError, RuntimeError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _cancel(tasks: Sequence[asyncio.Future[None]]) -> None:
    """Cancel what still runs; read the outcome of what ended (a send to a client that left
    fails: that is how a connection ends, not an error to report)."""
    for t in tasks:
        if t.done():
            if (
                not t.cancelled()
                and t.exception() is not None
                and not isinstance(t.exception(), (WebSocketDisconnect, OSError, RuntimeError))
            ):
                log.error("a realtime transport task failed", exc_info=t.exception())
        else:
            t.cancel()
