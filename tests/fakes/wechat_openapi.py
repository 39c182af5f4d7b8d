"""WeChat's server APIs on the fake WeChat host (``make_wechat_api``), checking what WeChat
checks: the stable access token (normal and force-refresh modes, expiry, invalidation),
the openid belonging to this app, msgSecCheck v2's fields, template ids, single-use
phone codes. Each answers HTTP 200 with ``errcode``/``errmsg`` as WeChat does.

Protocols: getStableAccessToken (POST /cgi-bin/stable_token), msgSecCheck v2
(POST /wxa/msg_sec_check), mediaCheckAsync v2 (POST /wxa/media_check_async),
subscribeMessage.send (POST /cgi-bin/message/subscribe/send), getuserphonenumber
(POST /wxa/business/getuserphonenumber); the docs are listed in docs/platform.md.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import RecordedRequest, record

__all__ = ["WechatOpenApi", "add_openapi"]


@dataclass
class WechatOpenApi:
    app_id: str
    secret: str
    openids: Callable[[], set[str]]  # the openids of this app's users
    clock: Callable[[], float] = time.time
    ttl: float = 7200.0
    tokens: dict[str, float] = field(default_factory=dict)  # valid token -> expiry
    current: str | None = None
    stable_calls: list[bool] = field(default_factory=list)  # force_refresh of each call
    risky_words: set[str] = field(default_factory=lambda: {"赌博", "gamble"})
    review_words: set[str] = field(default_factory=set)
    templates: set[str] = field(default_factory=lambda: {"TPL_DONE"})
    phone_codes: dict[str, str] = field(default_factory=dict)  # code -> +86 number (single use)
    sent: list[dict[str, Any]] = field(default_factory=list)  # subscribe messages sent
    media: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    down: bool = False  # answer HTTP 503 to the content checks

    def expire_all(self) -> None:
        """Every token expires now (as after two hours, or a force refresh elsewhere)."""
        now = self.clock()
        self.tokens = {t: min(e, now) for t, e in self.tokens.items()}

    def invalidate(self, token: str) -> None:
        self.tokens.pop(token, None)


def _err(errcode: int, errmsg: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(4)}", **extra})


def add_openapi(app: Starlette, api: WechatOpenApi) -> None:
    """Add the server APIs to the fake WeChat host ``app``; state at ``app.state.openapi``."""

    async def body_of(request: Request) -> tuple[RecordedRequest, Any]:
        rec = await record(request)
        api.requests.append(rec)
        try:
            return rec, orjson.loads(rec.body)
        except orjson.JSONDecodeError:
            return rec, None

    def token_error(rec: RecordedRequest) -> JSONResponse | None:
        token = rec.query.get("access_token")
        if not token:
            return _err(41001, "access_token missing")
        expiry = api.tokens.get(token)
        if expiry is None:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if expiry <= api.clock():
            return _err(42001, "access_token expired")
        return None

    async def stable_token(request: Request) -> Response:
        _, body = await body_of(request)
        if not isinstance(body, dict):
            return _err(47001, "data format error")
        if body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if body.get("appid") != api.app_id:
            return _err(40013, "invalid appid")
        if body.get("secret") != api.secret:
            return _err(40125, "invalid appsecret")
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            return _err(47001, "data format error: force_refresh must be a boolean")
        api.stable_calls.append(force)
        now = api.clock()
        current = api.current
        # Normal mode: the current token until 5 minutes before it expires.
        if force or current is None or api.tokens.get(current, 0) - 300 <= now:
            if force and current is not None:
                api.tokens.pop(current, None)  # force refresh: the previous one stops working
            current = api.current = secrets.token_urlsafe(96)
            api.tokens[current] = now + api.ttl
        return JSONResponse({"access_token": current, "expires_in": int(api.tokens[current] - now)})

    def check_openid(openid: object) -> JSONResponse | None:
        if not isinstance(openid, str) or not openid:
            return _err(41009, "missing openid")
        if openid not in api.openids():
            return _err(40003, "invalid openid")
        return None

    async def msg_sec_check(request: Request) -> Response:
        rec, body = await body_of(request)
        if api.down:
            return Response("<html>busy</html>", status_code=503)
        if (e := token_error(rec)) is not None:
            return e
        if not isinstance(body, dict):
            return _err(47001, "data format error")
        if body.get("version") != 2:
            return _err(40097, "invalid args: version must be 2")
        if body.get("scene") not in (1, 2, 3, 4):
            return _err(40097, "invalid args: scene")
        if (e := check_openid(body.get("openid"))) is not None:
            return e
        content = body.get("content")
        if not isinstance(content, str) or not 0 < len(content) <= 2500:
            return _err(40097, "invalid args: content")
        suggest, label = "pass", 100
        if any(w in content for w in api.risky_words):
            suggest, label = "risky", 20001
        elif any(w in content for w in api.review_words):
            suggest, label = "review", 21000
        return _err(
            0,
            "ok",
            result={"suggest": suggest, "label": label},
            detail=[{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label}],
            trace_id=secrets.token_hex(8),
        )

    async def media_check_async(request: Request) -> Response:
        rec, body = await body_of(request)
        if (e := token_error(rec)) is not None:
            return e
        if not isinstance(body, dict) or body.get("version") != 2:
            return _err(40097, "invalid args: version must be 2")
        if body.get("media_type") not in (1, 2) or body.get("scene") not in (1, 2, 3, 4):
            return _err(40097, "invalid args: media_type or scene")
        url = body.get("media_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _err(40097, "invalid args: media_url")
        if (e := check_openid(body.get("openid"))) is not None:
            return e
        trace_id = secrets.token_hex(8)
        api.media.append({**body, "trace_id": trace_id})
        return _err(0, "ok", trace_id=trace_id)

    async def subscribe_send(request: Request) -> Response:
        rec, body = await body_of(request)
        if (e := token_error(rec)) is not None:
            return e
        if not isinstance(body, dict):
            return _err(47001, "data format error")
        if (e := check_openid(body.get("touser"))) is not None:
            return e
        if body.get("template_id") not in api.templates:
            return _err(40037, "invalid template_id")
        data = body.get("data")
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()
        ):
            return _err(47003, "argument invalid! data.value is required")
        if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
            return _err(47003, "argument invalid! miniprogram_state")
        api.sent.append(body)
        return _err(0, "ok", msgid=secrets.randbelow(10**12))

    async def phone_number(request: Request) -> Response:
        rec, body = await body_of(request)
        if (e := token_error(rec)) is not None:
            return e
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, str) or code not in api.phone_codes:
            return _err(40029, "invalid code")
        number = api.phone_codes.pop(code)
        pure = number.removeprefix("+86")
        return _err(
            0,
            "ok",
            phone_info={
                "phoneNumber": pure,
                "purePhoneNumber": pure,
                "countryCode": "86",
                "watermark": {"timestamp": int(api.clock()), "appid": api.app_id},
            },
        )

    for path, handler in (
        ("/cgi-bin/stable_token", stable_token),
        ("/wxa/msg_sec_check", msg_sec_check),
        ("/wxa/media_check_async", media_check_async),
        ("/cgi-bin/message/subscribe/send", subscribe_send),
        ("/wxa/business/getuserphonenumber", phone_number),
    ):
        app.router.routes.append(Route(path, handler, methods=["POST"]))
    app.state.openapi = api
