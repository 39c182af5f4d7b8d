"""ctx.platform.alipay and .douyin's generic calls end to end: RSA2-signed requests the fake
gateway verifies, answers accepted only with Alipay's valid signature, the template
message to the caller's open_id; Douyin's generic call with the shared token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.platform import Stack, stack_for

MODULE = """
from minibase import function

@function("notify")
async def notify(ctx, event):
    return await ctx.platform.alipay.send_template_message(
        ctx.identity.openid, event["tpl"], {"keyword1": "milk"}, page="pages/index/index")

@function("risk")
def risk(ctx, event):
    return ctx.platform.alipay.text_risk(event["text"])["action"]

@function("raw")
async def raw(ctx, event):
    return await ctx.platform.alipay.call(event["method"], event["biz"])

@function("antidirt")
async def antidirt(ctx, event):
    doc = await ctx.platform.douyin.call("/api/v2/tags/text/antidirt", {"tasks": [{"content": event["text"]}]})
    return doc["data"][0]["predicts"][0]["hit"]
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from stack_for(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", module=MODULE)


def test_template_message_goes_to_the_callers_open_id(stack: Stack) -> None:
    r = stack.fn("alipay", "notify", {"tpl": "TPL_DONE"})
    assert r.status_code == 200, r.text
    [sent] = stack.alipay.sent
    assert sent["to_open_id"] == "074open-alice" and sent["data"] == {"keyword1": {"value": "milk"}}
    assert sent["page"] == "pages/index/index"
    r = stack.fn("alipay", "notify", {"tpl": "TPL_NOPE"})
    assert r.status_code == 502 and "TEMPLATE_NOT_EXIST" in r.json()["error"]["message"]


def test_answers_need_alipays_signature(stack: Stack) -> None:
    assert stack.fn("alipay", "risk", {"text": "gamble"}).json()["data"] == "REJECTED"
    stack.alipay_host.state.fake.tamper = "signature"
    r = stack.fn("alipay", "risk", {"text": "hello"})
    assert r.status_code == 502 and "signature" in r.json()["error"]["message"]


def test_generic_calls(stack: Stack) -> None:
    r = stack.fn("alipay", "raw", {"method": "alipay.security.risk.content.detect", "biz": {"content": "hi"}})
    assert r.json()["data"]["action"] == "PASSED"
    r = stack.fn("alipay", "raw", {"method": "alipay.no.such.method", "biz": {}})
    assert r.status_code == 502 and "isv.invalid-method" in r.json()["error"]["message"]
    r = stack.fn("alipay", "raw", {"method": "not a method", "biz": {}})
    assert r.status_code == 400
    assert stack.fn("douyin", "antidirt", {"text": "gamble"}).json()["data"] is True
    assert stack.fn("douyin", "antidirt", {"text": "hello"}).json()["data"] is False
