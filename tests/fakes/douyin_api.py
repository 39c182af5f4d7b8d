"""A fake Douyin API answering ``POST /api/apps/v2/jscode2session`` the way Douyin does:
HTTP 200 with ``{"err_no", "err_tips", "log_id", "data"}``."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import RecordedRequest, record, wait_or_disconnect

__all__ = ["DouyinApiState", "DouyinUser", "make_douyin_api"]

_EMPTY_DATA = {"session_key": "", "openid": "", "anonymous_openid": "", "unionid": ""}


@dataclass
class DouyinUser:
    openid: str
    unionid: str = ""
    session_key: str = field(default_factory=lambda: secrets.token_urlsafe(18))


@dataclass
class DouyinApiState:
    app_id: str
    secret: str
    users: dict[str, DouyinUser]  # code -> user; codes are single-use
    used_codes: set[str] = field(default_factory=set)
    requests: list[RecordedRequest] = field(default_factory=list)
    force_err_no: int | None = None  # e.g. -1 for every call
    slow_seconds: float = 0.0
    status_code: int = 200


def _answer(err_no: int, err_tips: str, data: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {
            "err_no": err_no,
            "err_tips": err_tips,
            "log_id": secrets.token_hex(12).upper(),
            "data": data if data is not None else dict(_EMPTY_DATA),
        }
    )


def make_douyin_api(app_id: str, secret: str, *, users: dict[str, DouyinUser] | None = None) -> Starlette:
    """The fake API app; its state is ``app.state.fake``, a :class:`DouyinApiState`."""
    state = DouyinApiState(app_id=app_id, secret=secret, users=dict(users or {}))

    async def jscode2session(request: Request) -> Response:
        recorded = await record(request)
        state.requests.append(recorded)
        if state.slow_seconds:
            await wait_or_disconnect(request, state.slow_seconds)
        if state.status_code != 200:
            return Response("<html>bad gateway</html>", status_code=state.status_code)
        if not recorded.headers.get("content-type", "").startswith("application/json"):
            return _answer(40014, "bad params")
        try:
            recorded.json = body = json.loads(recorded.body)
        except ValueError:
            return _answer(40014, "bad params")
        if not isinstance(body, dict):
            return _answer(40014, "bad params")
        if state.force_err_no is not None:
            return _answer(state.force_err_no, "forced error")
        if not body.get("appid") or not body.get("secret") or not body.get("code"):
            return _answer(40014, "bad params")
        if body["appid"] != state.app_id:
            return _answer(40015, "bad appid")
        if body["secret"] != state.secret:
            return _answer(40017, "bad secret")
        code = body["code"]
        user = state.users.get(code)
        if user is None or code in state.used_codes:
            return _answer(40018, "bad code")
        state.used_codes.add(code)
        return _answer(
            0,
            "success",
            {
                "session_key": user.session_key,
                "openid": user.openid,
                "anonymous_openid": "",
                "unionid": user.unionid,
            },
        )

    app = Starlette(routes=[Route("/api/apps/v2/jscode2session", jscode2session, methods=["POST"])])
    app.state.fake = state
    return app
