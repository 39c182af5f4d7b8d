"""Function Compute entry points (docs/deploy-fc.md#the-handlers), routing into the same app as ``serve``.

- ``http_handler(event, context)``: FC 3.0 HTTP trigger (event and response dicts, §2a);
- ``wsgi_handler(environ, start_response)``: FC 2.0 HTTP trigger;
- ``event_handler(event, context)``: the Invoke API; the event is the function's JSON event
  and the function name is ``MINIBASE_FUNCTION`` if set, else ``context.function.name``
  (on FC 3.0 function names are unique per region, e.g. ``todo-list-svc-db``, so a
  deployment names the minibase function explicitly).

The config is ``MINIBASE_CONFIG`` (default ``minibase.toml``); a relative path is taken
from the code package (``FC_FUNC_CODE_PATH``, else the working directory). ``MINIBASE_DATA``
overrides the data directory (on FC only ``/tmp`` is writable). The app is built on the
first invocation and kept while FC keeps the instance warm, as a cache only: all state
lives in the database. One event loop serves the instance, driven only while an invocation
runs (no background thread), so invocations on one instance are serialized (FC's default
instance concurrency for built-in runtimes is 1).

Every failure is answered in the error envelope (docs/http-api.md#envelopes), never with a traceback; a
config that fails to load is logged and answered ``Internal``, and tried again on the next
invocation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import orjson

from ..util import jsonin
from ..util.ids import REQUEST_ID_KEY, new_request_id, platform_request_id

__all__ = ["event_handler", "http_handler", "reset", "wsgi_handler"]

log = logging.getLogger("minibase.fc")

_lock = threading.Lock()
_runtime: tuple[asyncio.AbstractEventLoop, Any] | None = None

_Headers = list[tuple[bytes, bytes]]


def config_path() -> str:
    """``MINIBASE_CONFIG`` resolved against the code package directory."""
    path = os.environ.get("MINIBASE_CONFIG") or "minibase.toml"
    if os.path.isabs(path):
        return path
    return os.path.join(os.environ.get("FC_FUNC_CODE_PATH") or os.getcwd(), path)


def _get_runtime() -> tuple[asyncio.AbstractEventLoop, Any]:
    global _runtime
    if _runtime is None:
        from ..app import create_app
        from ..config import load_config

        config = load_config(config_path(), data_dir=os.environ.get("MINIBASE_DATA") or None)
        app = create_app(config)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(app.start())
        except BaseException:
            loop.close()
            raise
        _runtime = (loop, app)
    return _runtime


def reset() -> None:
    """Forget the warm app (tests; a new config)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            loop, app = _runtime
            _runtime = None
            try:
                loop.run_until_complete(app.stop())
            finally:
                loop.close()


class _BadEvent(Exception):
    """The platform handed us something that is not a request we can read."""


# ------------------------------------------------------------------------ plumbing


async def _asgi(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, _Headers, bytes]:
    sent = False
    done = asyncio.Event()
    status = 500
    headers: _Headers = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            # Like a server whose client stays connected: "disconnect" only once the
            # response is complete (Starlette's FileResponse watches for it meanwhile).
            await done.wait()
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
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    return status, headers, b"".join(chunks)


def _scope(
    method: str,
    path: str,
    raw_path: str,
    query: bytes,
    headers: Iterable[tuple[str, str]],
    client: str | None,
) -> dict[str, Any]:
    try:
        hdrs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        raw = raw_path.encode("latin-1")
    except UnicodeEncodeError:
        raise _BadEvent("headers and the path must be Latin-1 (percent-encode the rest)") from None
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "https",  # FC terminates TLS in front of the function
        "path": path,
        "raw_path": raw,
        "query_string": query,
        "headers": hdrs,
        "client": (client, 0) if client else None,
        "server": None,
    }


def _run(scope: dict[str, Any], body: bytes, context: Any = None) -> tuple[int, _Headers, bytes]:
    with _lock:
        loop, app = _get_runtime()
        _sync_credentials(app.core, context)
        return loop.run_until_complete(_asgi(app, scope, body))


def _sync_credentials(core: Any, context: Any) -> None:
    """Hand the invocation's role credentials (``context.credentials``, fresh on every
    invocation) to what signs with cloud credentials: those read from the environment at
    start are temporary, and a warm instance may outlive them."""
    creds = getattr(context, "credentials", None)
    key_id = getattr(creds, "access_key_id", None)
    secret = getattr(creds, "access_key_secret", None)
    if isinstance(key_id, str) and key_id and isinstance(secret, str) and secret:
        token = getattr(creds, "security_token", None)
        core.use_cloud_credentials(key_id, secret, token if isinstance(token, str) and token else None)


def _failure(exc: BaseException, request_id: str, *, handled: bool = False) -> tuple[int, _Headers, bytes]:
    """An error envelope for a request that never reached the app (or crashed around it)."""
    from ..errors import ConfigError, Internal, InvalidArgument, MinibaseError, error_body, handled_error_body

    err: MinibaseError
    if isinstance(exc, _BadEvent):
        err = InvalidArgument(str(exc))
    elif isinstance(exc, ConfigError):
        log.error("minibase cannot start: config error: %s (request %s)", exc, request_id)
        err = Internal()
    else:
        log.error("unhandled error (request %s)", request_id, exc_info=exc)
        err = Internal()
    body = orjson.dumps((handled_error_body if handled else error_body)(err, request_id))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-fc-request-id", request_id.encode("latin-1", "replace")),
    ]
    return err.status, headers, body


_TEXT_TYPES = ("application/json", "application/javascript", "application/xml", "image/svg+xml")


def _is_text(content_type: str) -> bool:
    ct = content_type.split(";", 1)[0].strip().lower()
    return ct.startswith("text/") or ct in _TEXT_TYPES or ct.endswith(("+json", "+xml"))


# --------------------------------------------------------------- FC 3.0 HTTP trigger


def http_handler(event: bytes | str | dict[str, Any], context: Any = None) -> dict[str, Any]:
    """FC 3.0 HTTP trigger: the event dict in, the response dict out.

    Binary request bodies arrive base64-encoded (``isBase64Encoded``); any response that
    is not text goes back base64-encoded the same way, so file downloads survive.
    """
    given = platform_request_id(getattr(context, "request_id", None))
    request_id = given or new_request_id()
    try:
        scope, body, rid = _http_request(event)
        if given is None:
            request_id = platform_request_id(rid) or request_id
        # The invocation's own id, so that answers and audit lines can be found in FC's logs.
        scope[REQUEST_ID_KEY] = request_id
        status, headers, out = _run(scope, body, context)
    except Exception as exc:
        status, headers, out = _failure(exc, request_id)
    hdrs: dict[str, str] = {}
    for k, v in headers:
        name, value = k.decode("latin-1"), v.decode("latin-1")
        # The response headers are a dict: repeated headers join as HTTP allows.
        hdrs[name] = f"{hdrs[name]}, {value}" if name in hdrs else value
    text = None
    if _is_text(hdrs.get("content-type", "")):
        try:
            text = out.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    return {
        "statusCode": status,
        "headers": hdrs,
        "isBase64Encoded": text is None,
        "body": text if text is not None else base64.b64encode(out).decode("ascii"),
    }


def _http_request(event: bytes | str | dict[str, Any]) -> tuple[dict[str, Any], bytes, str | None]:
    if isinstance(event, dict):
        e = event
    else:
        try:
            e = orjson.loads(event)
        except orjson.JSONDecodeError:
            raise _BadEvent("the HTTP trigger event is not valid JSON") from None
    if not isinstance(e, dict):
        raise _BadEvent("the HTTP trigger event must be a JSON object")
    ctx: dict[str, Any] = e["requestContext"] if isinstance(e.get("requestContext"), dict) else {}
    http: dict[str, Any] = ctx["http"] if isinstance(ctx.get("http"), dict) else {}
    raw = e.get("body") or ""
    if not isinstance(raw, str):
        raise _BadEvent("the event's body must be a string")
    if e.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise _BadEvent("the event's body is not valid base64") from None
    else:
        body = raw.encode("utf-8")
    query = e.get("queryParameters") or {}
    headers = e.get("headers") or {}
    if not isinstance(query, dict) or not isinstance(headers, dict):
        raise _BadEvent("the event's headers and queryParameters must be objects")
    qs = urlencode([(k, x) for k, v in query.items() for x in (v if isinstance(v, list) else [v])])
    hdrs = [(str(k), str(x)) for k, v in headers.items() for x in (v if isinstance(v, list) else [v])]
    names = {k.lower() for k, _ in hdrs}
    domain = ctx.get("domainName")
    if "host" not in names and isinstance(domain, str) and domain:
        hdrs.append(("host", domain))  # signed file URLs point back at this host
    if "x-forwarded-proto" not in names:
        hdrs.append(("x-forwarded-proto", "https"))
    # rawPath is percent-encoded; requestContext.http.path is the decoded one.
    raw_path = e.get("rawPath") or quote(http.get("path") or "/")
    path = http.get("path") or unquote(raw_path)
    if not isinstance(raw_path, str) or not isinstance(path, str) or not path.startswith("/"):
        raise _BadEvent("the event's rawPath must be an absolute path")
    method = http.get("method") or "GET"
    if not isinstance(method, str):
        raise _BadEvent("the event's method must be a string")
    source = http.get("sourceIp")
    scope = _scope(method, path, raw_path, qs.encode(), hdrs, source if isinstance(source, str) else None)
    rid = ctx.get("requestId")
    return scope, body, rid if isinstance(rid, str) else None


# ------------------------------------------------------------ FC 2.0 HTTP trigger


def wsgi_handler(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """FC 2.0 HTTP trigger (WSGI).

    The path comes from ``fc.request_uri`` when FC provides it (the whole URL the client
    called, e.g. ``/2016-08-15/proxy/todo-list-svc/session/``), else ``PATH_INFO``.
    """
    context = environ.get("fc.context")
    request_id = (
        platform_request_id(getattr(context, "request_id", None))
        or platform_request_id(environ.get("HTTP_X_FC_REQUEST_ID"))  # FC adds it to every request
        or new_request_id()
    )
    try:
        scope, body = _wsgi_request(environ)
        scope[REQUEST_ID_KEY] = request_id
        status, headers, out = _run(scope, body, context)
    except Exception as exc:
        status, headers, out = _failure(exc, request_id)
    start_response(
        f"{status} {_REASONS.get(status, '')}".strip(),
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
    )
    return [out]


def _wsgi_request(environ: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    hdrs = [(k[5:].replace("_", "-"), str(v)) for k, v in environ.items() if k.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            hdrs.append((name, str(environ[key])))
    length_text = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if not length_text.isdigit():
        raise _BadEvent("Content-Length is not a number")
    length = int(length_text)
    stream = environ.get("wsgi.input")
    body = stream.read(length) if length and stream is not None else b""
    uri = environ.get("fc.request_uri")
    if isinstance(uri, str) and uri:
        parts = urlsplit(uri)
        raw_path, query = parts.path or "/", parts.query
    else:
        # PEP 3333: PATH_INFO is decoded bytes as Latin-1; percent-encode it back.
        decoded = (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "/")
        raw_path = quote(decoded.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~")
        query = environ.get("QUERY_STRING", "")
    path = unquote(raw_path)
    scope = _scope(
        str(environ.get("REQUEST_METHOD") or "GET"),
        path,
        raw_path,
        str(query).encode("latin-1", "replace"),
        hdrs,
        environ.get("REMOTE_ADDR"),
    )
    return scope, body


# ----------------------------------------------------------------- the Invoke API


def _check_size(event: bytes | str, limit: int) -> None:
    """The body-size limit for Invoke API events (FC caps events itself; ours may be lower)."""
    size = len(event) if not isinstance(event, str) else len(event.encode())
    if size > limit:
        from ..errors import PayloadTooLarge

        raise PayloadTooLarge(
            f"the event is larger than {limit} bytes (limits.max_body)", limit="limits.max_body", max=limit
        )


def event_handler(event: bytes | str | dict[str, Any], context: Any = None) -> bytes:
    """The Invoke API: the JSON event in, ``{"data": …}`` or ``{"error": …}`` out.

    The caller is the event's ``sid`` (the sessionId is the bearer secret), as in the
    template's events; without one the call is anonymous and the rules decide.
    """
    from ..errors import InvalidArgument, MinibaseError, NotFound, handled_error_body
    from ..results import Page, Spread

    name = os.environ.get("MINIBASE_FUNCTION") or getattr(getattr(context, "function", None), "name", None)
    request_id = platform_request_id(getattr(context, "request_id", None)) or new_request_id()
    try:
        if not isinstance(name, str) or not name:
            raise NotFound("no function name: set MINIBASE_FUNCTION")
        with _lock:
            loop, app = _get_runtime()
            _sync_credentials(app.core, context)
            if isinstance(event, dict):
                payload: Any = event
            else:
                _check_size(event, app.core.config.limits.max_body)
                try:
                    payload = jsonin.loads(event) if event else {}
                except orjson.JSONDecodeError:
                    raise InvalidArgument("the event is not valid JSON") from None
            if not app.core.has_function(name):
                raise NotFound(f"no function named '{name[:64]}' (set MINIBASE_FUNCTION)")
            result = loop.run_until_complete(app.core.invoke(name, payload, None, request_id))
    except MinibaseError as e:
        # FC's fields beside the envelope, as on the Invoke API path of `serve`.
        return orjson.dumps(handled_error_body(e, request_id))
    except Exception as exc:
        return _failure(exc, request_id, handled=True)[2]
    if isinstance(result, Page):
        return orjson.dumps({"data": result.data, "next": result.next})
    if isinstance(result, Spread):
        return orjson.dumps({**result.value, "data": result.value})
    return orjson.dumps({"data": result})


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    416: "Range Not Satisfiable",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


def timer_handler(event: bytes | str | dict[str, Any], context: Any = None) -> bytes:
    """FC timer triggers: ``{"triggerTime", "triggerName", "payload"}``, the payload
    ``{"schedule": NAME}`` (run that @schedule job for ``triggerTime``, once across
    instances however often FC delivers it) or ``{"dispatch": true}`` (deliver the
    after-write triggers' pending events)."""
    from datetime import datetime

    from ..errors import InvalidArgument, MinibaseError, NotFound, handled_error_body

    request_id = platform_request_id(getattr(context, "request_id", None)) or new_request_id()
    try:
        body = event if isinstance(event, dict) else jsonin.loads(event or b"{}")
        payload = body.get("payload") if isinstance(body, dict) else None
        what = jsonin.loads(payload) if isinstance(payload, str | bytes) and payload else payload
        if not isinstance(what, dict):
            raise InvalidArgument('the timer payload must be {"schedule": NAME} or {"dispatch": true}')
        with _lock:
            loop, app = _get_runtime()
            _sync_credentials(app.core, context)
            events = app.core.events
            if events is None:
                raise NotFound("this app declares no @schedule or @after_write")
            if isinstance(what.get("schedule"), str):
                when = body.get("triggerTime")
                slot = (
                    datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
                    if isinstance(when, str) and when
                    else None
                )
                ran = loop.run_until_complete(events.run_schedule(what["schedule"], slot, request_id))
                result: Any = {"ran": ran}
            elif what.get("dispatch") is True:
                loop.run_until_complete(events.dispatcher.drain(timeout=50.0))
                result = {"dispatched": True}
            else:
                raise InvalidArgument('the timer payload must be {"schedule": NAME} or {"dispatch": true}')
    except (orjson.JSONDecodeError, ValueError):
        return orjson.dumps(handled_error_body(InvalidArgument("the timer event is not valid"), request_id))
    except MinibaseError as e:
        return orjson.dumps(handled_error_body(e, request_id))
    except Exception as exc:
        return _failure(exc, request_id, handled=True)[2]
    return orjson.dumps({"data": result})
