"""[collections.X] content_check end to end over HTTP, on SQLite and PostgreSQL: every
client write's text fields go to the caller's platform check (WeChat msgSecCheck v2 with
the caller's openid, Alipay text risk detection, Douyin antidirt); a refused text is 422
ContentRejected naming the field, an outage 503 Unavailable unless the collection allows
it; ctx.db is checked like a client, ctx.admin is the app's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.platform import (
    Stack,
    stack_for,
)


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
