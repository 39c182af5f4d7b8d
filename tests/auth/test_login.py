"""The session function end to end: minibase over real HTTP, platforms faked on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from minibase.app import create_app
from minibase.config import Config
from minibase.core import Minibase
from tests.fakes.alipay_gateway import AlipayGatewayState, AlipayUser, make_alipay_gateway
from tests.fakes.server import free_port, serve_app
from tests.fakes.wechat_api import WechatApiState, WechatUser, make_wechat_api
from tests.support.config import SERVICE, base_raw
from tests.support.live import run_uvicorn

VEC = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "alipay_rsa2.json").read_text())
APP_ID = "2021000000000001"
WX_APP, WX_SECRET = "wx0123456789abcdef", "wechat-secret-never-shown"
SESSION = f"/2016-08-15/proxy/{SERVICE}/session/"

ALIPAY_USERS = {
    "ali-1": AlipayUser(user_id="2088000000000001", open_id="074openAlice"),
    "ali-2": AlipayUser(user_id="2088000000000001", open_id="074openAlice"),
    "ali-bob": AlipayUser(user_id="2088000000000002", open_id="074openBob"),
}
WECHAT_USERS = {
    "wx-1": WechatUser(openid="oWxAlice", unionid="uAlice"),
    "wx-2": WechatUser(openid="oWxAlice", unionid="uAlice"),
}


@dataclass
class Stack:
    url: str
    alipay: AlipayGatewayState
    wechat: WechatApiState
    core: Minibase

    def login(self, **event: Any) -> httpx.Response:
        return httpx.post(self.url + SESSION, json=event, timeout=10)


def _config(
    make_config: Callable[..., Config], tmp_path: Path, gateway: str, wx_api: str, **extra: Any
) -> Config:
    (tmp_path / "app.pem").write_text(VEC["app_private_key_pem"])
    (tmp_path / "alipay.pem").write_text(VEC["alipay_public_key_pem"])
    auth = {
        "dev": {"enabled": True},
        "alipay": {
            "app_id": "env:ALIPAY_APP_ID",
            "private_key_file": "app.pem",  # relative to the config file's folder
            "alipay_public_key_file": "env:ALIPAY_PUBLIC_KEY_FILE",
            "gateway": gateway,
            "timeout": "1s",
        },
        "wechat": {"app_id": WX_APP, "secret": "env:WX_SECRET", "api": wx_api, "timeout": "1s"},
        **extra,
    }
    env = {
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_PUBLIC_KEY_FILE": str(tmp_path / "alipay.pem"),
        "WX_SECRET": WX_SECRET,
    }
    return make_config(base_raw(auth=auth), environ=env)


@pytest.fixture
def stack(make_config: Callable[..., Config], tmp_path: Path) -> Iterator[Stack]:
    ali = make_alipay_gateway(
        VEC["app_public_key_pem"].encode(), VEC["alipay_private_key_pem"].encode(), APP_ID, users=ALIPAY_USERS
    )
    wx = make_wechat_api(WX_APP, WX_SECRET, users=WECHAT_USERS)
    with serve_app(ali) as ali_url, serve_app(wx) as wx_url:
        config = _config(make_config, tmp_path, ali_url + "/gateway.do", wx_url)
        core = Minibase.from_config(config)
        with run_uvicorn(create_app(config, core=core)) as url:
            yield Stack(url, ali.state.fake, wx.state.fake, core)


def test_alipay_login_and_same_uid(stack: Stack) -> None:
    r1 = stack.login(authCode="ali-1", provider="alipay")
    assert r1.status_code == 200, r1.text
    b1 = r1.json()
    assert b1["user"]["provider"] == "alipay" and b1["user"]["isNew"] is True
    # The gateway saw a correctly RSA2-signed request (it refuses others).
    assert len(stack.alipay.requests) == 1
    b2 = stack.login(authCode="ali-2", provider="alipay").json()
    assert b2["user"] == {**b1["user"], "isNew": False}
    b3 = stack.login(authCode="ali-bob", provider="alipay").json()
    assert b3["user"]["uid"] != b1["user"]["uid"]


def test_template_client_posts_the_whole_getauthcode_result(stack: Stack) -> None:
    # my.getAuthCode's success object; unknown keys are ignored.
    r = stack.login(authCode="ali-1", provider="alipay", authErrorScopes={}, authSuccessScopes=["auth_base"])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("invalid", 401, "Unauthenticated"),
        ("used", 401, "Unauthenticated"),
        ("tampered", 502, "ProviderError"),
        ("unsigned", 502, "ProviderError"),
        ("slow", 502, "ProviderError"),
        ("busy", 502, "ProviderError"),
    ],
)
def test_alipay_failures(stack: Stack, mode: str, status: int, code: str) -> None:
    auth_code = "ali-bob"
    if mode == "invalid":
        auth_code = "no-such-code"
    elif mode == "used":
        assert stack.login(authCode=auth_code, provider="alipay").status_code == 200
    elif mode == "tampered":
        stack.alipay.tamper = "signature"
    elif mode == "unsigned":
        stack.alipay.tamper = "missing"
    elif mode == "slow":
        stack.alipay.slow_seconds = 3  # the provider's timeout is 1 s
    elif mode == "busy":
        stack.alipay.unavailable = True
    r = stack.login(authCode=auth_code, provider="alipay")
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert "sessionId" not in r.text


def test_alipay_gateway_down(make_config: Callable[..., Config], tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = _config(make_config, tmp_path, dead + "/gateway.do", dead)
    with run_uvicorn(create_app(config)) as url:
        r = httpx.post(url + SESSION, json={"authCode": "ali-1", "provider": "alipay"})
        assert r.status_code == 502 and r.json()["error"]["code"] == "ProviderError"
        r = httpx.post(url + SESSION, json={"authCode": "wx-1", "provider": "wechat"})
        assert r.status_code == 502 and r.json()["error"]["code"] == "ProviderError"


def test_wechat_login_and_secrets_stay_secret(stack: Stack) -> None:
    r = stack.login(authCode="wx-1", provider="wechat")
    assert r.status_code == 200, r.text
    assert WX_SECRET not in r.text and WECHAT_USERS["wx-1"].session_key not in r.text
    uid = r.json()["user"]["uid"]
    assert stack.login(authCode="wx-2", provider="wechat").json()["user"]["uid"] == uid
    r = stack.login(authCode="wx-1", provider="wechat")  # used code
    assert r.status_code == 401 and WX_SECRET not in r.text


def test_same_subject_on_different_providers_are_different_users(stack: Stack) -> None:
    a = stack.login(authCode="ali-1", provider="alipay").json()["user"]["uid"]
    w = stack.login(authCode="wx-1", provider="wechat").json()["user"]["uid"]
    d = stack.login(authCode="dev:074openAlice").json()["user"]["uid"]
    assert len({a, w, d}) == 3


def test_provider_is_required_when_ambiguous(stack: Stack) -> None:
    r = stack.login(authCode="ali-1")
    assert r.status_code == 400 and "provider is required" in r.json()["error"]["message"]
    # dev: codes are recognised without a provider (the template's client sends none).
    assert stack.login(authCode="dev:zed").status_code == 200


def test_disabled_user_cannot_log_in_and_loses_sessions(stack: Stack) -> None:
    import asyncio

    body = stack.login(authCode="dev:mallory").json()
    uid, sid = body["user"]["uid"], body["sessionId"]

    async def disable() -> None:
        await stack.core.store.set_user_disabled(uid, True)

    asyncio.run(disable())
    r = httpx.post(stack.url + "/invoke/db", json={"op": "list"}, headers={"authorization": f"Bearer {sid}"})
    assert r.status_code == 401 and "disabled" in r.json()["error"]["message"]
    r = stack.login(authCode="dev:mallory")
    assert r.status_code == 401


def test_providers_lists_what_is_set_up_and_why_the_others_are_not(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    # Alipay declared but none of its variables set (the example's out-of-the-box state).
    auth = {
        "dev": {"enabled": True},
        "alipay": {
            "app_id": "env:ALIPAY_APP_ID",
            "private_key_file": "env:ALIPAY_PRIVATE_KEY_FILE",
            "alipay_public_key_file": "env:ALIPAY_PUBLIC_KEY_FILE",
        },
    }
    config = make_config(base_raw(auth=auth), environ={})
    with run_uvicorn(create_app(config)) as url:
        r = httpx.post(url + SESSION, json={"op": "providers"}, timeout=10)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["providers"] == ["dev"]
        assert set(data["unavailable"]) == {"alipay"} and "ALIPAY_APP_ID" in data["unavailable"]["alipay"]
        # The login refusal says the same; its body repeats the server's clock.
        r = httpx.post(url + SESSION, json={"authCode": "x", "provider": "alipay"}, timeout=10)
        assert r.status_code == 400 and "ALIPAY_APP_ID" in r.json()["error"]["message"]
        assert r.json()["error"]["serverTime"].endswith("Z")
        r = httpx.post(url + SESSION, json={"op": "nope"}, timeout=10)
        assert r.status_code == 400 and "providers" in r.json()["error"]["message"]
