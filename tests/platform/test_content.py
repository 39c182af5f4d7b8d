"""[collections.X] content_check end to end over HTTP, on SQLite and PostgreSQL: every
client write's text fields go to the caller's platform check (WeChat msgSecCheck v2 with
the caller's openid, Alipay text risk detection, Douyin antidirt); a refused text is 422
ContentRejected naming the field, an outage 503 Unavailable unless the collection allows
it; ctx.db is checked like a client, ctx.admin is the app's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.alipay_gateway import AlipayUser, make_alipay_gateway
from tests.fakes.alipay_openapi import AlipayOpenApi, new_aes_key
from tests.fakes.alipay_openapi import add_openapi as add_alipay
from tests.fakes.douyin_api import DouyinUser, make_douyin_api
from tests.fakes.douyin_openapi import DouyinOpenApi
from tests.fakes.douyin_openapi import add_openapi as add_douyin
from tests.fakes.server import serve_app
from tests.fakes.wechat_api import WechatUser, make_wechat_api
from tests.fakes.wechat_openapi import WechatOpenApi
from tests.fakes.wechat_openapi import add_openapi as add_wechat
from tests.support.config import Live
from tests.support.platform import make_config, serve, write_module

VEC = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "alipay_rsa2.json").read_text())
ALI_APP, WX_APP, DY_APP = "2021000000000077", "wx00000000000c0de", "tt00000000000c0de"

MODULE = """
from minibase import function

@function("add")
async def add(ctx, event):
    return await ctx.db.insert("todo_list", {"title": event["title"]})

@function("addAsApp")
async def add_as_app(ctx, event):
    return await ctx.admin.db.insert("todo_list", {"title": event["title"]}, owner=ctx.uid)
"""


@dataclass
class Stack:
    live: Live
    wechat: WechatOpenApi
    alipay: AlipayOpenApi
    douyin: DouyinOpenApi
    sids: dict[str, str]
    alipay_host: Any
    aes_key: str

    def db(self, who: str, event: dict[str, Any]) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.sids[who]}"}
        return httpx.post(
            self.live.url + "/invoke/db", json={"collection": "todo_list", **event}, headers=headers
        )

    def fn(self, who: str, name: str, event: dict[str, Any]) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.sids[who]}"}
        return httpx.post(f"{self.live.url}/invoke/{name}", json=event, headers=headers)


def stack_for(
    tmp_path: Path, database_url: str, on_outage: str = "refuse", module: str = MODULE
) -> Iterator[Stack]:
    (tmp_path / "app.pem").write_text(VEC["app_private_key_pem"])
    (tmp_path / "alipay.pem").write_text(VEC["alipay_public_key_pem"])
    wx_host = make_wechat_api(WX_APP, "wx-secret", users={"wx-1": WechatUser("o-wx-alice")})
    wx = WechatOpenApi(WX_APP, "wx-secret", lambda: {"o-wx-alice"})
    add_wechat(wx_host, wx)
    ali_host = make_alipay_gateway(
        VEC["app_public_key_pem"].encode(),
        VEC["alipay_private_key_pem"].encode(),
        ALI_APP,
        users={"ali-1": AlipayUser("2088000000000077", "074open-alice")},
    )
    ali = AlipayOpenApi({"074open-alice"})
    add_alipay(ali_host, ali)
    dy_host = make_douyin_api(DY_APP, "dy-secret", users={"dy-1": DouyinUser("o-dy-alice")})
    dy = DouyinOpenApi(DY_APP, "dy-secret")
    add_douyin(dy_host, dy)
    aes_key = new_aes_key()
    with serve_app(wx_host) as wx_url, serve_app(ali_host) as ali_url, serve_app(dy_host) as dy_url:
        config = make_config(
            tmp_path,
            environ={"WX": "wx-secret", "DY": "dy-secret"},
            database={"url": database_url},
            auth={
                "wechat": {"app_id": WX_APP, "secret": "env:WX", "api": wx_url},
                "douyin": {"app_id": DY_APP, "secret": "env:DY", "api": dy_url},
                "alipay": {
                    "app_id": ALI_APP,
                    "private_key_file": "app.pem",
                    "alipay_public_key_file": "alipay.pem",
                    "gateway": ali_url + "/gateway.do",
                    "aes_key": aes_key,
                },
            },
            functions={"module": write_module(tmp_path, module)},
            collections={
                "todo_list": {
                    "content_check": ["title", "notes.text"],
                    "content_check_on_outage": on_outage,
                }
            },
        )
        with serve(config) as [live]:
            sids = {}
            for who, code, provider in (
                ("wechat", "wx-1", "wechat"),
                ("alipay", "ali-1", "alipay"),
                ("douyin", "dy-1", "douyin"),
                ("dev", "dev:alice", "dev"),
            ):
                r = httpx.post(live.url + "/session", json={"authCode": code, "provider": provider})
                sids[who] = r.json()["sessionId"]
            yield Stack(live, wx, ali, dy, sids, ali_host, aes_key)


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    yield from stack_for(tmp_path, database_url)


@pytest.mark.parametrize("who", ["wechat", "alipay", "douyin"])
def test_risky_text_is_refused_naming_the_field(stack: Stack, who: str) -> None:
    r = stack.db(who, {"op": "insert", "obj": {"title": "buy milk"}})
    assert r.status_code == 200, r.text
    doc_id = r.json()["data"]["id"]
    r = stack.db(who, {"op": "insert", "obj": {"title": "let us gamble"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "ContentRejected"
    assert r.json()["error"]["field"] == "title"
    r = stack.db(who, {"op": "update", "id": doc_id, "set": {"notes": {"text": "gamble"}}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "notes.text"
    r = stack.db(
        who,
        {
            "op": "batch",
            "ops": [
                {"op": "put", "obj": {"id": "a", "title": "fine"}},
                {"op": "update", "id": doc_id, "set": {"title": "赌博"}},
            ],
        },
    )
    err = r.json()["error"]
    assert r.status_code == 422 and err["field"] == "title" and err["index"] == 1
    # Nothing of a refused write was stored.
    docs = stack.db(who, {"op": "query"}).json()["data"]
    assert [d["title"] for d in docs] == ["buy milk"]
    # Through a developer function's ctx.db too; ctx.admin is the app's own and unchecked.
    assert stack.fn(who, "add", {"title": "gamble"}).json()["error"]["code"] == "ContentRejected"
    assert stack.fn(who, "addAsApp", {"title": "gamble"}).status_code == 200


def test_wechat_check_sends_the_callers_openid(stack: Stack) -> None:
    stack.db("wechat", {"op": "insert", "obj": {"title": "buy milk", "other": "gamble"}})
    checks = [r for r in stack.wechat.requests if r.path == "/wxa/msg_sec_check"]
    assert [json.loads(r.body)["openid"] for r in checks] == ["o-wx-alice"]  # only title
    assert [json.loads(r.body)["content"] for r in checks] == ["buy milk"]


def test_outage_is_503_never_a_silent_pass(stack: Stack) -> None:
    stack.wechat.down = True
    stack.alipay.down = True
    stack.douyin.down = True
    for who in ("wechat", "alipay", "douyin"):
        r = stack.db(who, {"op": "insert", "obj": {"title": "buy milk"}})
        assert r.status_code == 503 and r.json()["error"]["code"] == "Unavailable", (who, r.text)
        assert r.headers["retry-after"]
    assert stack.db("wechat", {"op": "query"}).json()["data"] == []
    # Dev logins are not checked (development only).
    assert stack.db("dev", {"op": "insert", "obj": {"title": "gamble"}}).status_code == 200


def test_outage_allowed_when_the_collection_says_so(tmp_path: Path) -> None:
    for s in stack_for(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", on_outage="allow"):
        s.wechat.down = True
        assert s.db("wechat", {"op": "insert", "obj": {"title": "buy milk"}}).status_code == 200
        s.wechat.down = False
        assert s.db("wechat", {"op": "insert", "obj": {"title": "gamble"}}).status_code == 422


def test_douyin_token_expiry_mid_run(stack: Stack) -> None:
    assert stack.db("douyin", {"op": "insert", "obj": {"title": "one"}}).status_code == 200
    stack.douyin.expire_all()
    assert stack.db("douyin", {"op": "insert", "obj": {"title": "two"}}).status_code == 200
    assert stack.douyin.fetches == 2
