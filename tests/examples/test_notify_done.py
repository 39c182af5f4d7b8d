"""The example's platform features over HTTP: its shipped config and functions, a WeChat
login through a fake WeChat: todo titles pass the content check (a risky one is
ContentRejected), and notifyDone sends the subscribe message to the user's openid."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from minibase.app import create_app
from minibase.config import parse_config
from minibase.core import Minibase
from tests.fakes.server import serve_app
from tests.fakes.wechat_api import WechatUser, make_wechat_api
from tests.fakes.wechat_openapi import WechatOpenApi, add_openapi
from tests.support.examples import EXAMPLE, TODO
from tests.support.live import run_uvicorn

APP, SECRET = "wx0000000000e4a3p1", "example-wechat-secret"


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, WechatOpenApi]]:
    monkeypatch.setenv("WECHAT_DONE_TEMPLATE", "TPL_DONE")  # read by the example's module
    host = make_wechat_api(APP, SECRET, users={"wx-1": WechatUser("o-example")})
    api = WechatOpenApi(APP, SECRET, lambda: {"o-example"})
    add_openapi(host, api)
    with serve_app(host) as wx_url:
        raw: dict[str, Any] = tomllib.loads(EXAMPLE.read_text())
        raw["auth"]["wechat"]["api"] = wx_url  # the shipped config, pointed at the fake
        raw["app"].pop("web")
        config = parse_config(
            raw,
            data_dir=tmp_path,
            base_dir=TODO,
            environ={"WECHAT_APP_ID": APP, "WECHAT_SECRET": SECRET},
        )
        with run_uvicorn(create_app(config, core=Minibase.from_config(config))) as url:
            yield url, api


def test_titles_are_checked_and_done_is_notified(example: tuple[str, WechatOpenApi]) -> None:
    url, api = example
    sid = httpx.post(url + "/session", json={"authCode": "wx-1", "provider": "wechat"}).json()["sessionId"]
    headers = {"authorization": f"Bearer {sid}"}
    r = httpx.post(
        url + "/invoke/db", json={"op": "insert", "obj": {"title": "gamble tonight"}}, headers=headers
    )
    assert r.status_code == 422 and r.json()["error"] == {
        **r.json()["error"],
        "code": "ContentRejected",
        "field": "title",
    }
    r = httpx.post(
        url + "/invoke/db",
        json={"op": "insert", "obj": {"title": "buy milk", "completed": False}},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    todo = r.json()["data"]
    r = httpx.post(url + "/invoke/notifyDone", json={"id": todo["id"]}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["sent"] is True and r.json()["data"]["todo"]["completed"] is True
    [sent] = api.sent
    assert sent["touser"] == "o-example" and sent["template_id"] == "TPL_DONE"
    assert sent["data"]["thing1"] == {"value": "buy milk"}
