"""[auth] link_by_unionid: a WeChat user logging in from a second app of the same open
platform account (two servers, two app ids, one database) is the same user."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from minibase.config import Config
from tests.fakes.server import serve_app
from tests.fakes.wechat_api import WechatUser, make_wechat_api
from tests.support.platform import make_config, serve, write_module

MODULE = """
from minibase import function

@function("me")
async def me(ctx, event):
    i = ctx.identity
    return [i.provider, i.app_id, i.openid, i.unionid]
"""


def app_config(tmp_path: Path, url: str, api: str, app_id: str, link: bool, module: str) -> Config:
    return make_config(
        tmp_path,
        data=f"data-{app_id}",
        environ={"WX_SECRET": f"secret-of-{app_id}"},
        database={"url": url},
        auth={"wechat": {"app_id": app_id, "secret": "env:WX_SECRET", "api": api}, "link_by_unionid": link},
        functions={"module": module},
    )


def login(url: str, code: str) -> tuple[str, str]:
    body = httpx.post(url + "/session", json={"authCode": code, "provider": "wechat"}).json()
    return body["sessionId"], body["user"]["uid"]


@pytest.mark.parametrize("link", [True, False])
def test_second_app_same_unionid(tmp_path: Path, database_url: str, link: bool) -> None:
    module = write_module(tmp_path, MODULE)
    a = make_wechat_api("wxA", "secret-of-wxA", users={"a-1": WechatUser("openid-A", "union-1")})
    b = make_wechat_api(
        "wxB",
        "secret-of-wxB",
        users={"b-1": WechatUser("openid-B", "union-1"), "b-2": WechatUser("openid-C", "union-2")},
    )
    with serve_app(a) as a_api, serve_app(b) as b_api:
        configs = [
            app_config(tmp_path, database_url, a_api, "wxA", link, module),
            app_config(tmp_path, database_url, b_api, "wxB", link, module),
        ]
        with serve(*configs) as [server_a, server_b]:
            sid_a, uid_a = login(server_a.url, "a-1")
            sid_b, uid_b = login(server_b.url, "b-1")
            _, uid_c = login(server_b.url, "b-2")
            assert (uid_a == uid_b) is link
            assert uid_c not in (uid_a, uid_b)  # another unionid is another user
            me = httpx.post(
                server_b.url + "/invoke/me", json={}, headers={"authorization": f"Bearer {sid_b}"}
            )
            assert me.json()["data"] == ["wechat", "wxB", "openid-B", "union-1"]
            me = httpx.post(
                server_a.url + "/invoke/me", json={}, headers={"authorization": f"Bearer {sid_a}"}
            )
            assert me.json()["data"] == ["wechat", "wxA", "openid-A", "union-1"]
            # A later login from the second app stays the same user.
            b.state.fake.users["b-3"] = WechatUser("openid-B", "union-1")
            assert login(server_b.url, "b-3")[1] == uid_b
