"""The HTTP adapter: builds the ASGI app (Starlette) of DESIGN §2 around a Minibase core.

It reads requests, finds the caller, calls the core and renders results and errors. No
business logic here.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
    error_body,
)
from .results import Page, Spread

__all__ = ["create_app"]

log = logging.getLogger("minibase.http")

JSON = "application/json"
FC_API = "/2016-08-15"


def _request_id() -> str:
    return os.urandom(8).hex()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, JSON)


def _render(result: Any, request_id: str, headers: dict[str, str] | None = None) -> Response:
    h = {"x-fc-request-id": request_id}
    if headers:
        h.update(headers)
    if isinstance(result, Page):
        return _json({"data": result.data, "next": result.next}, 200, h)
    if isinstance(result, Spread):
        return _json({**result.value, "data": result.value}, 200, h)
    return _json({"data": result}, 200, h)


def _error(e: MinibaseError, request_id: str, status: int | None = None) -> Response:
    headers = {"x-fc-request-id": request_id}
    retry = e.details.get("retryAfter")
    if retry is not None:
        headers["retry-after"] = str(retry)
    return _json(error_body(e, request_id), status or e.status, headers)


def _fc_gateway_error(e: GatewayError, request_id: str) -> Response:
    body = {"ErrorCode": e.fc_code, "ErrorMessage": e.message, "RequestId": request_id}
    return _json(body, e.fc_status, {"x-fc-request-id": request_id})


async def _event(request: Request, limit: int) -> tuple[bytes, Any]:
    """The body (for Content-MD5) and its JSON; an empty body is ``{}``."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InvalidArgument("Content-Length is not a number")
        if int(length) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        return body, {}
    try:
        return body, orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidArgument("the request body is not valid JSON") from None


def _query(request: Request) -> dict[str, list[str]] | None:
    if "/proxy/" not in request.url.path:
        return None
    out: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        out.setdefault(k, []).append(v)
    # A bare `?flag` arrives as flag="" and signs as the key alone.
    return {k: [] if vs == [""] else vs for k, vs in out.items()}


def create_app(config: Config, *, core: Minibase | None = None) -> Starlette:
    mb = core if core is not None else Minibase(config)
    limit = config.limits.max_body
    service = config.app.service

    async def caller_of(request: Request, body: bytes) -> Caller | None:
        auth = request.headers.get("authorization")
        if not auth:
            return None
        if auth.startswith("Bearer "):
            return await mb.caller_from_session_id(auth[7:].strip())
        return await mb.caller_from_signature(
            request.method, request.url.path, request.headers, _query(request), body
        )

    async def session(request: Request) -> Response:
        rid = _request_id()
        try:
            svc = request.path_params.get("service")
            if svc is not None and svc != service:
                raise NotFound(f"no service named '{svc[:64]}'")
            _, event = await _event(request, limit)
            return _render(await mb.invoke("session", event, None), rid)
        except MinibaseError as e:
            return _error(e, rid)
        except Exception:
            log.exception("unhandled error (request %s)", rid)
            return _error(Internal(), rid)

    async def invoke(request: Request) -> Response:
        rid = _request_id()
        try:
            name = request.path_params["function"]
            if not mb.has_function(name) and name != "session":
                raise NotFound(f"no function named '{name[:64]}'")
            body, event = await _event(request, limit)
            caller = await caller_of(request, body)
            return _render(await mb.invoke(name, event, caller), rid)
        except MinibaseError as e:
            return _error(e, rid)
        except Exception:
            log.exception("unhandled error (request %s)", rid)
            return _error(Internal(), rid)

    async def fc_invoke(request: Request) -> Response:
        """FC Invoke API semantics: gateway errors FC's way, function errors as 200."""
        rid = _request_id()
        try:
            svc = request.path_params["service"]
            if svc != service:
                raise GatewayError("ServiceNotFound", f"service '{svc[:64]}' does not exist", 404)
            name = request.path_params["function"]
            if not mb.has_function(name) and name != "session":
                raise GatewayError("FunctionNotFound", f"function '{name[:64]}' does not exist", 404)
            body, event = await _event(request, limit)
            if not request.headers.get("authorization", "").startswith("FC "):
                raise GatewayError(
                    "MissingRequiredHeader", "a FC-signed Authorization header is required", 401
                )
            caller = await caller_of(request, body)
        except GatewayError as e:
            return _fc_gateway_error(e, rid)
        except MinibaseError as e:  # bad body: FC answers these before the function too
            return _fc_gateway_error(GatewayError(e.code, e.message, e.status), rid)
        try:
            return _render(await mb.invoke(name, event, caller), rid)
        except MinibaseError as e:
            return _handled(e, rid)
        except Exception:
            log.exception("unhandled error (request %s)", rid)
            return _handled(Internal(), rid)

    def _handled(e: MinibaseError, rid: str) -> Response:
        resp = _error(e, rid, 200)
        resp.headers["x-fc-error-type"] = "HandledInvocationError"
        return resp

    async def healthz(request: Request) -> Response:
        return _json({"data": {"ok": True}})

    async def http_error(request: Request, exc: Exception) -> Response:
        rid = _request_id()
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return _error(
                MethodNotAllowed(f"{request.method} is not allowed on {request.url.path[:200]}"),
                rid,
            )
        if status == 404:
            return _error(NotFound(f"no route {request.url.path[:200]}"), rid)
        return _error(Internal(), rid)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await mb.start()
        try:
            yield
        finally:
            await mb.stop()

    routes = [
        Route("/session", session, methods=["POST"]),
        Route(FC_API + "/proxy/{service}/session/", session, methods=["POST"]),
        Route(FC_API + "/proxy/{service}/session", session, methods=["POST"]),
        Route("/invoke/{function}", invoke, methods=["POST"]),
        Route(
            FC_API + "/services/{service}/functions/{function}/invocations",
            fc_invoke,
            methods=["POST"],
        ),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: http_error, 405: http_error, 500: http_error},
    )
    app.state.minibase = mb
    return app
