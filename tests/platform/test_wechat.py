"""ctx.platform.wechat end to end: two server instances on one database share one access
token, which is replaced before it expires and once when WeChat refuses it mid-run; the
typed helpers against a fake WeChat that checks what WeChat checks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.server import serve_app
from tests.fakes.wechat_api import WechatUser, make_wechat_api
from tests.fakes.wechat_openapi import WechatOpenApi, add_openapi
from tests.support.config import Clock, Live
from tests.support.platform import make_config, serve, write_module

WX_APP, WX_SECRET = "wx5fa1c0ffee000001", "wechat-openapi-secret"

MODULE = """
from minibase import function

@function("check")
async def check(ctx, event):
    return await ctx.platform.wechat.msg_sec_check(event["text"], ctx.identity.openid)

@function("syncCheck")
def sync_check(ctx, event):
    return ctx.platform.wechat.msg_sec_check(event["text"], ctx.identity.openid)["suggest"]

@function("notify")
async def notify(ctx, event):
    return await ctx.platform.wechat.send_subscribe_message(
        ctx.identity.openid, event["tpl"], {"thing1": event["title"]}, page="pages/index/index")

@function("media")
async def media(ctx, event):
    return await ctx.platform.wechat.media_check_async(event["url"], "image", ctx.identity.openid)

@function("raw")
async def raw(ctx, event):
    return await ctx.platform.wechat.call(event["api"], event["params"])
"""


@dataclass
class Pair:
    a: Live
    b: Live
    api: WechatOpenApi
    clock: Clock
    sid_a: str
    sid_b: str

    def call(self, server: Live, name: str, event: dict[str, Any]) -> httpx.Response:
        sid = self.sid_a if server is self.a else self.sid_b
        return httpx.post(
            f"{server.url}/invoke/{name}", json=event, headers={"authorization": f"Bearer {sid}"}
        )

    def checks(self) -> list[str]:
        return [r.query.get("access_token", "") for r in self.api.requests if r.path == "/wxa/msg_sec_check"]


@pytest.fixture
def pair(tmp_path: Path, database_url: str, clock: Clock) -> Iterator[Pair]:
    users = {f"wx-{i}": WechatUser("o-alice") for i in range(4)}
    host = make_wechat_api(WX_APP, WX_SECRET, users=users)
    api = WechatOpenApi(WX_APP, WX_SECRET, lambda: {u.openid for u in users.values()}, clock=clock)
    add_openapi(host, api)
    module = write_module(tmp_path, MODULE)
    with serve_app(host) as wx_url:
        configs = [
            make_config(
                tmp_path,
                data=f"data-{n}",
                environ={"WX_SECRET": WX_SECRET},
                database={"url": database_url},
                auth={"wechat": {"app_id": WX_APP, "secret": "env:WX_SECRET", "api": wx_url}},
                functions={"module": module},
            )
            for n in ("a", "b")
        ]
        with serve(*configs, clock=clock) as [a, b]:
            sids = [
                httpx.post(s.url + "/session", json={"authCode": code, "provider": "wechat"}).json()[
                    "sessionId"
                ]
                for s, code in ((a, "wx-0"), (b, "wx-1"))
            ]
            yield Pair(a, b, api, clock, *sids)


def test_two_instances_share_one_token(pair: Pair) -> None:
    assert pair.call(pair.a, "check", {"text": "hello"}).json()["data"]["suggest"] == "pass"
    assert pair.call(pair.b, "check", {"text": "hello"}).json()["data"]["suggest"] == "pass"
    assert pair.call(pair.a, "syncCheck", {"text": "gamble here"}).json()["data"] == "risky"
    assert pair.api.stable_calls == [False]  # one fetch for both instances
    assert len(set(pair.checks())) == 1


def test_token_expiry_mid_run_is_replaced_once_for_both_instances(pair: Pair) -> None:
    pair.call(pair.a, "check", {"text": "hello"})
    pair.call(pair.b, "check", {"text": "hello"})
    first = pair.checks()[0]
    pair.api.expire_all()  # WeChat now answers 42001 for the token both instances hold
    assert pair.call(pair.a, "check", {"text": "hello"}).json()["data"]["suggest"] == "pass"
    assert pair.call(pair.b, "check", {"text": "hello"}).json()["data"]["suggest"] == "pass"
    tokens = pair.checks()
    # a: refused, fetched, retried; b: refused, took a's from the database, retried.
    assert tokens[2:] == [first, tokens[3], first, tokens[3]] and tokens[3] != first
    assert pair.api.stable_calls == [False, False]  # one new token, no force refresh
    # A token WeChat invalidated (40001) is replaced the same way.
    pair.api.invalidate(tokens[3])
    assert pair.call(pair.b, "check", {"text": "hi"}).status_code == 200
    assert pair.call(pair.a, "check", {"text": "hi"}).status_code == 200
    assert pair.api.stable_calls == [False, False, False]


def test_token_is_replaced_before_it_expires(pair: Pair) -> None:
    pair.call(pair.a, "check", {"text": "hello"})
    pair.clock.advance(7200 - 200)  # inside the last five minutes
    assert pair.call(pair.b, "check", {"text": "hello"}).status_code == 200
    assert pair.call(pair.a, "check", {"text": "hello"}).status_code == 200
    tokens = pair.checks()
    assert len(tokens) == 3 and tokens[1] == tokens[2] != tokens[0]  # no call was refused
    assert pair.api.stable_calls == [False, False]


def test_subscribe_message_media_check_and_errors(pair: Pair) -> None:
    r = pair.call(pair.a, "notify", {"tpl": "TPL_DONE", "title": "milk"})
    assert r.status_code == 200 and isinstance(r.json()["data"], int)
    sent = pair.api.sent[0]
    assert sent["touser"] == "o-alice" and sent["data"] == {"thing1": {"value": "milk"}}
    r = pair.call(pair.a, "notify", {"tpl": "TPL_NOPE", "title": "milk"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "ProviderError"
    assert "40037" in r.json()["error"]["message"]
    r = pair.call(pair.a, "media", {"url": "https://cdn.example/cat.jpg"})
    assert r.json()["data"] == pair.api.media[0]["trace_id"]
    # The generic call: WeChat checks the openid belongs to the app.
    r = pair.call(
        pair.a,
        "raw",
        {
            "api": "/wxa/msg_sec_check",
            "params": {"content": "x", "version": 2, "scene": 1, "openid": "o-stranger"},
        },
    )
    assert r.status_code == 502 and "40003" in r.json()["error"]["message"]
    r = pair.call(pair.a, "raw", {"api": "https://evil.example/x", "params": {}})
    assert r.status_code == 400
    # Secrets never reach the client.
    assert WX_SECRET not in r.text and pair.checks()[0] not in r.text


def test_wechat_outage_is_unavailable(pair: Pair) -> None:
    pair.api.down = True
    r = pair.call(pair.a, "check", {"text": "hello"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "Unavailable"


def test_access_token_never_reaches_a_log(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.DEBUG):
        # In this process the server runs in a thread: its httpx log lines land here.
        assert pair.call(pair.a, "check", {"text": "hello"}).status_code == 200
    token = pair.checks()[0]
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "msg_sec_check" in messages
    assert "access_token=%2A%2A%2A" in messages or "access_token=***" in messages
    assert token not in messages and WX_SECRET not in messages
