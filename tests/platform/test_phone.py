"""Phone numbers end to end over HTTP, on SQLite and PostgreSQL: the session function's
linkPhone exchanges a WeChat phone code (getuserphonenumber) or checks and decrypts
Alipay's my.getPhoneNumber answer (RSA2 signature, AES-128-CBC under aes_key), stores the
number on the user, and functions read it as ctx.user.phone."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.alipay_openapi import new_aes_key, phone_answer
from tests.support.platform import Stack, stack_for

ME = """
from minibase import function

@function("me")
async def me(ctx, event):
    return ctx.user.phone
"""


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    yield from stack_for(tmp_path, database_url, module=ME)


def link(stack: Stack, who: str, **event: Any) -> httpx.Response:
    return httpx.post(
        stack.live.url + "/session", json={"op": "linkPhone", "sessionId": stack.sids[who], **event}
    )


def phone_of(stack: Stack, who: str) -> Any:
    return stack.fn(who, "me", {}).json()["data"]


def test_wechat_phone_code(stack: Stack) -> None:
    stack.wechat.phone_codes["pc-1"] = "+8613800000001"
    assert phone_of(stack, "wechat") is None
    r = link(stack, "wechat", code="pc-1")
    assert r.status_code == 200 and r.json()["data"]["phone"] == "13800000001", r.text
    assert phone_of(stack, "wechat") == "13800000001"
    r = link(stack, "wechat", code="pc-1")  # single use
    assert r.status_code == 400 and "40029" in r.json()["error"]["message"]
    assert link(stack, "wechat").status_code == 400  # no code
    assert phone_of(stack, "alipay") is None  # another user


def test_alipay_phone_answer_is_verified_and_decrypted(stack: Stack) -> None:
    answer = phone_answer(stack.alipay_host, stack.aes_key, "13900000002")
    r = link(stack, "alipay", response=json.dumps(answer))
    assert r.status_code == 200 and r.json()["data"]["phone"] == "13900000002", r.text
    assert phone_of(stack, "alipay") == "13900000002"
    # A forged answer: encrypted with the right key, but not signed by Alipay.
    forged = phone_answer(stack.alipay_host, stack.aes_key, "13000000000")
    forged["sign"] = answer["sign"]
    r = link(stack, "alipay", response=forged)
    assert r.status_code == 400 and "signature" in r.json()["error"]["message"]
    # Ciphertext tampered after signing.
    raw = bytearray(base64.b64decode(answer["response"]))
    raw[0] ^= 1
    r = link(stack, "alipay", response={**answer, "response": base64.b64encode(bytes(raw)).decode()})
    assert r.status_code == 400
    # Signed by Alipay but encrypted for another app's key.
    other = phone_answer(stack.alipay_host, new_aes_key(), "13000000000")
    r = link(stack, "alipay", response=other)
    assert r.status_code == 400
    assert phone_of(stack, "alipay") == "13900000002"


def test_link_phone_needs_a_live_session(stack: Stack) -> None:
    r = httpx.post(stack.live.url + "/session", json={"op": "linkPhone", "sessionId": "nope", "code": "x"})
    assert r.status_code == 401
    r = link(stack, "douyin", code="x")
    assert r.status_code == 400 and "douyin" in r.json()["error"]["message"]


def test_a_bad_aes_key_stops_the_start(tmp_path: Path) -> None:
    import asyncio

    from minibase.core import Minibase
    from minibase.errors import ConfigError
    from tests.support.platform import VEC, make_config

    (tmp_path / "app.pem").write_text(VEC["app_private_key_pem"])
    (tmp_path / "alipay.pem").write_text(VEC["alipay_public_key_pem"])
    alipay = {
        "app_id": "2021000000000099",
        "private_key_file": "app.pem",
        "alipay_public_key_file": "alipay.pem",
    }
    config = make_config(tmp_path, auth={"alipay": {**alipay, "aes_key": "c2hvcnQ="}})
    core = Minibase.from_config(config)

    async def start() -> None:
        try:
            await core.start()
        finally:
            await core.stop()

    with pytest.raises(ConfigError) as e:
        asyncio.run(start())
    assert e.value.key == "auth.alipay.aes_key"
