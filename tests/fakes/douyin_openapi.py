"""Douyin's mini-app server APIs on the fake Douyin host (``make_douyin_api``), checking
what Douyin checks: getAccessToken (``POST /api/apps/v2/token``, ``client_credential``;
a new token shortens the previous one to five minutes) and the text check
(``POST /api/v2/tags/text/antidirt`` with the token in ``X-Token``; a bad token answers
code 401). The docs are listed in docs/platform.md."""

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

__all__ = ["DouyinOpenApi", "add_openapi"]


@dataclass
class DouyinOpenApi:
    app_id: str
    secret: str
    clock: Callable[[], float] = time.time
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry
    fetches: int = 0
    risky_words: set[str] = field(default_factory=lambda: {"赌博", "gamble"})
    requests: list[RecordedRequest] = field(default_factory=list)
    down: bool = False

    def expire_all(self) -> None:
        now = self.clock()
        self.tokens = {t: min(e, now) for t, e in self.tokens.items()}


def add_openapi(app: Starlette, api: DouyinOpenApi) -> None:
    async def token(request: Request) -> Response:
        rec = await record(request)
        api.requests.append(rec)
        try:
            body: Any = orjson.loads(rec.body)
        except orjson.JSONDecodeError:
            body = None
        empty = {"access_token": "", "expires_in": 0}
        if not isinstance(body, dict) or body.get("appid") != api.app_id:
            return JSONResponse({"err_no": 40015, "err_tips": "bad appid", "data": empty})
        if body.get("secret") != api.secret:
            return JSONResponse({"err_no": 40017, "err_tips": "bad secret", "data": empty})
        if body.get("grant_type") != "client_credential":
            return JSONResponse({"err_no": 40020, "err_tips": "bad grant_type", "data": empty})
        now = api.clock()
        # A new token shortens the previous ones to five minutes.
        api.tokens = {t: min(e, now + 300) for t, e in api.tokens.items()}
        new = "0801121" + secrets.token_hex(24)
        api.tokens[new] = now + 7200
        api.fetches += 1
        return JSONResponse(
            {"err_no": 0, "err_tips": "success", "data": {"access_token": new, "expires_in": 7200}}
        )

    async def antidirt(request: Request) -> Response:
        rec = await record(request)
        api.requests.append(rec)
        if api.down:
            return Response("upstream error", status_code=502)
        t = rec.headers.get("x-token", "")
        if api.tokens.get(t, 0) <= api.clock():
            return JSONResponse(
                {
                    "error_id": secrets.token_hex(16),
                    "code": 401,
                    "message": "[app token sign fail] bad token",
                    "exception": "[app token sign fail] bad token",
                }
            )
        try:
            body: Any = orjson.loads(rec.body)
        except orjson.JSONDecodeError:
            body = None
        tasks = body.get("tasks") if isinstance(body, dict) else None
        if (
            not isinstance(tasks, list)
            or not tasks
            or not all(isinstance(x, dict) and isinstance(x.get("content"), str) for x in tasks)
        ):
            return JSONResponse({"error_id": secrets.token_hex(16), "code": 400, "message": "bad params"})
        data = [
            {
                "msg": "",
                "code": 0,
                "task_id": "MICROAPP_" + secrets.token_hex(8),
                "data_id": None,
                "predicts": [
                    {
                        "prob": 0,
                        "hit": any(w in x["content"] for w in api.risky_words),
                        "target": None,
                        "model_name": "short_content_antidirt",
                    }
                ],
            }
            for x in tasks
        ]
        return JSONResponse({"log_id": secrets.token_hex(12), "data": data})

    app.router.routes.append(Route("/api/apps/v2/token", token, methods=["POST"]))
    app.router.routes.append(Route("/api/v2/tags/text/antidirt", antidirt, methods=["POST"]))
    app.state.openapi = api
