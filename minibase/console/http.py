"""The console's HTTP adapter: the single-page app's files and the JSON API under
``/_/api/`` (routes in ``routes.py``). Reads requests, finds the admin, calls
:class:`~minibase.console.api.Console`; no logic of its own.

Only the admin session cookie opens the API: an app session (``Authorization: Bearer``)
or FC-signed credentials are never looked at here. Every state-changing call must carry
the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import Internal, InvalidArgument, MinibaseError, NotFound, PermissionDenied, error_body
from ..util import jsonin
from ..util.ids import request_id
from .api import MAX_SESSION, AdminSession, Console
from .routes import API, PREFIX, ConsoleRoute

__all__ = ["COOKIE", "console_app"]

log = logging.getLogger("minibase.console")

COOKIE = "minibase_admin"
_MAX_BODY = 1024 * 1024
# The console's own page: its files only; images also from signed file URLs (S3/OSS hosts).
CSP = (
    "default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

Handler = Callable[[Console, Request, AdminSession, str], Awaitable[Any]]


def _json(body: Any, status: int = 200, rid: str = "") -> Response:
    resp = Response(orjson.dumps(body), status, media_type="application/json", headers=_SECURITY_HEADERS)
    if rid:
        resp.headers["x-fc-request-id"] = rid
    return resp


async def _body(request: Request) -> Any:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > _MAX_BODY:
            raise InvalidArgument(f"the request body is larger than {_MAX_BODY} bytes")
    if not data.strip():
        return {}
    try:
        value = jsonin.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidArgument("the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument("the request body must be a JSON object")
    return value


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _base_url(request: Request) -> str:
    host = request.headers.get("host") or "127.0.0.1"
    return f"{request.url.scheme}://{host}"


def _cookie(resp: Response, request: Request, token: str, max_age: int) -> None:
    resp.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path="/_/",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )


# ------------------------------------------------------------------------ handlers


async def _login(console: Console, request: Request, _: Any, rid: str) -> Response:
    body = await _body(request)
    token, session = await console.login(body.get("email"), body.get("password"), _client_ip(request), rid)
    resp = _json({"data": {"email": session.email, "csrf": session.csrf}}, rid=rid)
    _cookie(resp, request, token, int(MAX_SESSION))
    return resp


async def _logout(console: Console, request: Request, session: AdminSession, rid: str) -> Response:
    await console.logout(session, rid)
    resp = _json({"data": {"ok": True}}, rid=rid)
    _cookie(resp, request, "", 0)
    return resp


async def _me(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return {"email": session.email, "csrf": session.csrf, "app": console.config.app.name}


async def _overview(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.overview()


async def _users(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    q = request.query_params
    return await console.find_users(q.get("q", ""), q.get("provider"))


async def _user(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.user(request.path_params["uid"])


async def _disable(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.set_disabled(session, request.path_params["uid"], True, rid)


async def _enable(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.set_disabled(session, request.path_params["uid"], False, rid)


async def _revoke(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.revoke(session, request.path_params["uid"], rid)


async def _collections(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.collections()


async def _query(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.query(request.path_params["name"], await _body(request))


async def _create(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    body = await _body(request)
    return await console.save(
        session,
        request.path_params["name"],
        body.get("uid"),
        body.get("id"),
        body.get("fields"),
        None,
        True,
        rid,
    )


async def _document(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    p = request.path_params
    return await console.document(p["name"], p["uid"], p["id"])


async def _save(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    p, body = request.path_params, await _body(request)
    return await console.save(
        session, p["name"], p["uid"], p["id"], body.get("fields"), body.get("ifVersion"), False, rid
    )


async def _delete(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    p = request.path_params
    await console.delete(session, p["name"], p["uid"], p["id"], rid)
    return {"ok": True}


async def _files(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    q = request.query_params
    return {"areas": console.areas(), **await console.files(q.get("prefix", ""), q.get("after"))}


async def _file_url(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.file_url(request.query_params.get("key", ""), _base_url(request))


async def _delete_file(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    await console.delete_file(session, request.query_params.get("key", ""), rid)
    return {"ok": True}


async def _audit(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return await console.audit(dict(request.query_params))


async def _settings(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    return console.settings()


async def _export(console: Console, request: Request, session: AdminSession, rid: str) -> Response:
    from ..audit import audit
    from .transfer import export_stream

    audit("admin.export", rid, admin=session.email)
    name = f"{console.config.app.name}-export.jsonl.gz"
    return StreamingResponse(
        export_stream(console.store, gzip=True),
        media_type="application/gzip",
        headers={**_SECURITY_HEADERS, "content-disposition": f'attachment; filename="{name}"'},
    )


async def _import(console: Console, request: Request, session: AdminSession, rid: str) -> Any:
    from ..audit import audit
    from .transfer import import_stream

    counts = await import_stream(console.store, request.stream())
    audit("admin.import", rid, admin=session.email, **counts)
    return counts


_HANDLERS: dict[str, Handler] = {
    "login": _login,
    "logout": _logout,
    "me": _me,
    "overview": _overview,
    "users": _users,
    "user": _user,
    "disable": _disable,
    "enable": _enable,
    "revoke": _revoke,
    "collections": _collections,
    "query": _query,
    "create": _create,
    "document": _document,
    "save": _save,
    "delete": _delete,
    "files": _files,
    "file_url": _file_url,
    "delete_file": _delete_file,
    "audit": _audit,
    "settings": _settings,
    "export": _export,
    "import_": _import,
}


def _endpoint(console: Console, route: ConsoleRoute) -> Callable[[Request], Awaitable[Response]]:
    handler = _HANDLERS[route.handler]

    async def endpoint(request: Request) -> Response:
        rid = request_id(request.scope)
        try:
            await console.ready()
            session: Any = None
            if route.handler != "login":
                # The cookie only: app sessions and FC credentials never open the console.
                session = await console.authenticate(request.cookies.get(COOKIE))
                if route.changes:
                    _same_origin(request)
                    console.check_csrf(session, request.headers.get("x-csrf-token"))
            elif route.changes:
                _same_origin(request)
            result = await handler(console, request, session, rid)
        except MinibaseError as e:
            return _json(error_body(e, rid), e.status, rid)
        except Exception:
            log.exception("console: unhandled error (request %s)", rid)
            return _json(error_body(Internal(), rid), 500, rid)
        if isinstance(result, Response):
            return result
        return _json({"data": result}, rid=rid)

    return endpoint


def _same_origin(request: Request) -> None:
    """A browser's state-changing request must come from the console's own origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != _base_url(request):
        raise PermissionDenied("cross-origin requests are refused by the console")


def _static(name: str) -> bytes | None:
    if "/" in name or name.startswith(".") or not name:
        return None
    path = resources.files(__package__).joinpath("static").joinpath(name)
    return path.read_bytes() if path.is_file() else None


def console_app(console: Console) -> Starlette:
    async def page(request: Request) -> Response:
        body = _static("index.html")
        assert body is not None
        return Response(
            body, headers={**_SECURITY_HEADERS, "content-security-policy": CSP}, media_type="text/html"
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        body = _static(name)
        kind = _STATIC_TYPES.get("." + name.rsplit(".", 1)[-1]) if "." in name else None
        if body is None or kind is None:
            rid = request_id(request.scope)
            return _json(error_body(NotFound(f"no console file {name[:64]}"), rid), 404, rid)
        return Response(body, headers={**_SECURITY_HEADERS, "content-security-policy": CSP}, media_type=kind)

    async def redirect(request: Request) -> Response:
        return RedirectResponse("/_/", 308)

    async def not_found(request: Request) -> Response:
        rid = request_id(request.scope)
        return _json(error_body(NotFound(f"no console route {request.url.path[:200]}"), rid), 404, rid)

    routes = [Route(PREFIX + r.path, _endpoint(console, r), methods=[r.method]) for r in API]
    routes += [
        Route("/_", redirect),
        Route("/_/", page),
        Route("/_/static/{name}", asset),
    ]

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        from ..errors import MethodNotAllowed

        rid = request_id(request.scope)
        err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path[:200]}")
        return _json(error_body(err, rid), err.status, rid)

    async def missing(request: Request, exc: Exception) -> Response:
        return await not_found(request)

    return Starlette(routes=routes, exception_handlers={404: missing, 405: method_not_allowed})
