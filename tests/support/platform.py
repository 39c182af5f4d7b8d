"""Helpers for the tests (moved out of tests/platform/conftest.py: conftest files hold fixtures only)."""

from __future__ import annotations

import json
import secrets
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from minibase.app import create_app
from minibase.config import Config, parse_config
from minibase.core import Minibase
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
from tests.support.config import Live, base_raw
from tests.support.live import run_uvicorn


def write_module(tmp_path: Path, source: str) -> str:
    name = f"fns_{secrets.token_hex(4)}"  # unique: modules are cached per process
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def make_config(
    tmp_path: Path, environ: dict[str, str] | None = None, data: str = "data", **sections: Any
) -> Config:
    """A config whose functions module lives in ``tmp_path``; ``data``: its data folder."""
    return parse_config(
        base_raw(**sections), data_dir=tmp_path / data, base_dir=tmp_path, environ=environ or {}
    )


@contextmanager
def serve(*configs: Config, clock: Callable[[], float] = time.time) -> Iterator[list[Live]]:
    """One real server per config (several configs on one database: several instances)."""
    with ExitStack() as stack:
        servers = []
        for config in configs:
            core = Minibase.from_config(config, clock=clock)
            url = stack.enter_context(run_uvicorn(create_app(config, core=core)))
            servers.append(Live(url, core))
        try:
            yield servers
        finally:
            for s in servers:
                for c in s.clients:
                    c.close()


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
