"""Function Compute entry points (DESIGN §4a), routing into the same app as ``serve``.

- ``http_handler(event, context)``: FC 3.0 HTTP trigger (event and response dicts, §2a);
- ``wsgi_handler(environ, start_response)``: FC 2.0 HTTP trigger;
- ``event_handler(event, context)``: the Invoke API; the event is the function's JSON event
  and the function name comes from ``context.function.name`` or ``MINIBASE_FUNCTION``.

The config is ``MINIBASE_CONFIG`` (default ``minibase.toml`` beside the code);
``MINIBASE_DATA`` overrides the data directory. The app is built on the first invocation
and kept while FC keeps the instance warm; all state lives in the database. One event loop
serves the instance, driven only while an invocation runs (no background thread), so
invocations on one instance are serialized (FC's default instance concurrency is 1).
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import orjson

__all__ = ["event_handler", "http_handler", "wsgi_handler"]

_lock = threading.Lock()
_runtime: tuple[asyncio.AbstractEventLoop, Any] | None = None


def _get_runtime() -> tuple[asyncio.AbstractEventLoop, Any]:
    global _runtime
    if _runtime is None:
        from ..app import create_app
        from ..config import load_config

        here = os.getcwd()  # FC runs handlers from the code package directory
        path = os.environ.get("MINIBASE_CONFIG") or os.path.join(here, "minibase.toml")
        config = load_config(path, data_dir=os.environ.get("MINIBASE_DATA") or None)
        app = create_app(config)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(app.core.start())
        _runtime = (loop, app)
    return _runtime


def reset() -> None:
    """Forget the warm app (tests; a new config)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            loop, app = _runtime
            loop.run_until_complete(app.core.stop())
            loop.close()
            _runtime = None


async def _asgi(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    sent = False
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


def _scope(
    method: str, path: str, query: bytes, headers: Iterable[tuple[str, str]], client: str | None
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": (client, 0) if client else None,
        "server": None,
    }


def _run(scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    with _lock:
        loop, app = _get_runtime()
        return loop.run_until_complete(_asgi(app, scope, body))


def http_handler(event: bytes | str | dict[str, Any], context: Any = None) -> dict[str, Any]:
    """FC 3.0 HTTP trigger: the event dict in, the response dict out."""
    e = event if isinstance(event, dict) else orjson.loads(event)
    http = e.get("requestContext", {}).get("http", {})
    raw = e.get("body") or ""
    body = (
        base64.b64decode(raw) if e.get("isBase64Encoded") else raw.encode() if isinstance(raw, str) else raw
    )
    query = e.get("queryParameters") or {}
    qs = urlencode([(k, x) for k, v in query.items() for x in (v if isinstance(v, list) else [v])]).encode()
    hdrs = [(k, x) for k, v in (e.get("headers") or {}).items() for x in (v if isinstance(v, list) else [v])]
    scope = _scope(
        http.get("method", "GET"), e.get("rawPath") or http.get("path", "/"), qs, hdrs, http.get("sourceIp")
    )
    status, headers, out = _run(scope, body)
    return {
        "statusCode": status,
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in headers},
        "isBase64Encoded": False,
        "body": out.decode("utf-8"),
    }


def wsgi_handler(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """FC 2.0 HTTP trigger (WSGI)."""
    hdrs = [(k[5:].replace("_", "-"), v) for k, v in environ.items() if k.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            hdrs.append((name, environ[key]))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    path = environ.get("PATH_INFO") or "/"
    scope = _scope(
        environ.get("REQUEST_METHOD", "GET"),
        path,
        environ.get("QUERY_STRING", "").encode(),
        hdrs,
        environ.get("REMOTE_ADDR"),
    )
    status, headers, out = _run(scope, body)
    start_response(
        f"{status} {_REASONS.get(status, '')}".strip(),
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
    )
    return [out]


def event_handler(event: bytes | str, context: Any = None) -> bytes:
    """The Invoke API: the JSON event in, ``{"data": …}`` or ``{"error": …}`` out."""
    from ..errors import Internal, InvalidArgument, MinibaseError, error_body
    from ..results import Page, Spread

    name = getattr(getattr(context, "function", None), "name", None) or os.environ.get(
        "MINIBASE_FUNCTION", ""
    )
    request_id = getattr(context, "request_id", None) or os.urandom(8).hex()
    try:
        try:
            payload = orjson.loads(event) if event else {}
        except orjson.JSONDecodeError:
            raise InvalidArgument("the event is not valid JSON") from None
        with _lock:
            loop, app = _get_runtime()
            if not app.core.has_function(name):
                from ..errors import NotFound

                raise NotFound(f"no function named '{name[:64]}' (set MINIBASE_FUNCTION)")
            result = loop.run_until_complete(app.core.invoke(name, payload, None, request_id))
    except MinibaseError as e:
        return orjson.dumps(error_body(e, request_id))
    except Exception:
        import logging

        logging.getLogger("minibase.fc").exception("unhandled error (request %s)", request_id)
        return orjson.dumps(error_body(Internal(), request_id))
    if isinstance(result, Page):
        return orjson.dumps({"data": result.data, "next": result.next})
    if isinstance(result, Spread):
        return orjson.dumps({**result.value, "data": result.value})
    return orjson.dumps({"data": result})


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
