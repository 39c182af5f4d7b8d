"""A fake WeChat API answering ``GET /sns/jscode2session`` the way WeChat does: HTTP 200
with either the session or ``{"errcode", "errmsg"}``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import RecordedRequest, record, wait_or_disconnect

__all__ = ["WechatApiState", "WechatUser", "make_wechat_api"]


@dataclass
class WechatUser:
    openid: str
    unionid: str | None = None
    session_key: str = field(default_factory=lambda: secrets.token_urlsafe(18))


@dataclass
class WechatApiState:
    app_id: str
    secret: str
    users: dict[str, WechatUser]  # js_code -> user; codes are single-use
    used_codes: set[str] = field(default_factory=set)
    risky_codes: set[str] = field(default_factory=set)  # answer 40226 (high-risk user)
    requests: list[RecordedRequest] = field(default_factory=list)
    force_errcode: int | None = None  # e.g. -1 (busy) or 45011 (rate limit) for every call
    slow_seconds: float = 0.0
    status_code: int = 200  # anything else: answer that HTTP status with an HTML page


def _err(errcode: int, errmsg: str) -> JSONResponse:
    rid = secrets.token_hex(4)
    return JSONResponse({"errcode": errcode, "errmsg": f"{errmsg}, rid: {rid}"})


def make_wechat_api(app_id: str, secret: str, *, users: dict[str, WechatUser] | None = None) -> Starlette:
    """The fake API app; its state is ``app.state.fake``, a :class:`WechatApiState`."""
    state = WechatApiState(app_id=app_id, secret=secret, users=dict(users or {}))

    async def jscode2session(request: Request) -> Response:
        recorded = await record(request)
        state.requests.append(recorded)
        if state.slow_seconds:
            await wait_or_disconnect(request, state.slow_seconds)
        if state.status_code != 200:
            return Response("<html>bad gateway</html>", status_code=state.status_code)
        q = recorded.query
        if state.force_errcode is not None:
            return _err(state.force_errcode, "forced error")
        if not q.get("appid"):
            return _err(41002, "appid missing")
        if q["appid"] != state.app_id:
            return _err(40013, "invalid appid")
        if not q.get("secret"):
            return _err(41004, "appsecret missing")
        if q["secret"] != state.secret:
            return _err(40125, "invalid appsecret")
        if q.get("grant_type") != "authorization_code":
            return _err(40002, "invalid grant_type")
        code = q.get("js_code", "")
        if not code:
            return _err(41008, "missing code")
        if code in state.risky_codes:
            return _err(40226, "high risk user")
        if code in state.used_codes:
            return _err(40163, "code been used")
        user = state.users.get(code)
        if user is None:
            return _err(40029, "invalid code")
        state.used_codes.add(code)
        body: dict[str, str] = {"session_key": user.session_key, "openid": user.openid}
        if user.unionid is not None:
            body["unionid"] = user.unionid
        # WeChat really answers JSON as text/plain.
        return JSONResponse(body, media_type="text/plain")

    app = Starlette(routes=[Route("/sns/jscode2session", jscode2session, methods=["GET"])])
    app.state.fake = state
    return app
