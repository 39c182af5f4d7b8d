"""ctx.identity, ctx.user and ctx.admin end to end over HTTP, on SQLite and PostgreSQL:
the app acts beyond the caller's rules, every act is audited, and no client request can
get there."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.config import Live
from tests.support.platform import make_config, serve, write_module

MODULE = """
from minibase import function

@function("me")
async def me(ctx, event):
    i = ctx.identity
    return {
        "identity": None if i is None else [i.provider, i.app_id, i.openid, i.unionid],
        "user": [ctx.user.uid, ctx.user.phone],
    }

@function("award")
async def award(ctx, event):
    # scores: nobody may write them from a client; the app records them.
    return await ctx.admin.db.insert("scores", {"points": event["points"]}, owner=ctx.uid)

@function("leaderboard", public=True)
async def leaderboard(ctx, event):
    page = await ctx.admin.db.query("scores", orderBy=[["points", "desc"]], fields=["points"])
    return [d["points"] for d in page["data"]]

@function("syncBump")
def sync_bump(ctx, event):
    # From a sync function (a worker thread) the handles are called directly.
    ctx.admin.db.update("scores", event["id"], owner=event["owner"], inc={"points": 1})
    return ctx.admin.db.get("scores", event["id"], owner=event["owner"])["points"]

@function("noOwner")
async def no_owner(ctx, event):
    return await ctx.admin.db.insert("scores", {"points": 1})

@function("mine")
async def mine(ctx, event):
    return await ctx.db.query("scores")

@function("report")
async def report(ctx, event):
    # A file in another user's area, which no client of theirs could be handed.
    return await ctx.admin.files("uploadUrl", path="report.txt", owner=event["owner"],
                                 contentType="text/plain", size=3)

@function("echoDb")
async def echo_db(ctx, event):
    # Whatever the client sends, ctx.db stays the caller's.
    return await ctx.db.query("scores", **event)
"""


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Live]:
    config = make_config(
        tmp_path,
        database={"url": database_url},
        functions={"module": write_module(tmp_path, MODULE)},
        collections={"scores": {"read": "none", "write": "none"}},
    )
    with serve(config) as [live]:
        yield live


def call(live: Live, name: str, event: dict[str, object], sid: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {sid}"} if sid else {}
    return httpx.post(f"{live.url}/invoke/{name}", json=event, headers=headers)


def login(live: Live, code: str) -> tuple[str, str]:
    body = httpx.post(live.url + "/session", json={"authCode": code}).json()
    return body["sessionId"], body["user"]["uid"]


def test_identity_comes_from_the_stored_identity(app: Live) -> None:
    sid, uid = login(app, "dev:alice")
    r = call(app, "me", {"identity": ["wechat", "x", "forged", "u"]}, sid)
    assert r.json()["data"] == {"identity": ["dev", "dev", "alice", None], "user": [uid, None]}


def test_admin_writes_what_rules_forbid_and_every_call_is_audited(
    app: Live, caplog: pytest.LogCaptureFixture
) -> None:
    alice, alice_uid = login(app, "dev:alice")
    bob, _ = login(app, "dev:bob")
    # The caller cannot write or read scores...
    r = httpx.post(
        app.url + "/invoke/db",
        json={"op": "insert", "collection": "scores", "obj": {"points": 9}},
        headers={"authorization": f"Bearer {alice}"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "PermissionDenied"
    # ...the app can, for them.
    with caplog.at_level(logging.INFO, logger="minibase.audit"):
        doc = call(app, "award", {"points": 5}, alice).json()["data"]
        call(app, "award", {"points": 7}, bob)
        rid = call(app, "leaderboard", {}).headers["x-fc-request-id"]
    assert doc["uid"] == alice_uid and doc["points"] == 5
    assert call(app, "leaderboard", {}).json()["data"] == [7, 5]
    assert call(app, "mine", {}, alice).json()["error"]["code"] == "PermissionDenied"
    lines = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "minibase.audit"]
    admin = [x for x in lines if x["event"] == "admin.db"]
    assert {k: admin[0][k] for k in ("function", "op", "collection", "owner")} == {
        "function": "award",
        "op": "insert",
        "collection": "scores",
        "owner": alice_uid,
    }
    assert any(x["function"] == "leaderboard" and x["op"] == "query" and x["requestId"] == rid for x in admin)
    assert sum(x["function"] == "award" for x in admin) == 2
    # From a sync function too.
    r = call(app, "syncBump", {"id": doc["id"], "owner": alice_uid}, alice)
    assert r.json()["data"] == 6


def test_admin_needs_an_owner_to_address_a_document(app: Live) -> None:
    sid, _ = login(app, "dev:alice")
    r = call(app, "noOwner", {}, sid)
    assert r.status_code == 400 and "owner" in r.json()["error"]["message"]


def test_admin_files_reach_another_users_area(app: Live) -> None:
    sid, _ = login(app, "dev:alice")
    _, bob_uid = login(app, "dev:bob")
    r = call(app, "report", {"owner": bob_uid}, sid)
    assert r.status_code == 200 and f"users/{bob_uid}/report.txt" in r.json()["data"]["url"]
    # The same upload from alice's own client is refused.
    r = httpx.post(
        app.url + "/invoke/files",
        headers={"authorization": f"Bearer {sid}"},
        json={
            "op": "uploadUrl",
            "path": f"users/{bob_uid}/report.txt",
            "contentType": "text/plain",
            "size": 3,
        },
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    "event",
    [
        {"admin": True},
        {"asApp": True, "owner": None},
        {"op": "query", "collection": "scores", "admin": True},
    ],
)
def test_no_client_request_reaches_admin(app: Live, event: dict[str, object]) -> None:
    sid, _ = login(app, "dev:alice")
    bob, _ = login(app, "dev:bob")
    call(app, "award", {"points": 3}, bob)
    headers = {"authorization": f"Bearer {sid}"}
    # The db function with any flag a client might try: still the caller's rules.
    r = httpx.post(
        app.url + "/invoke/db", json={"op": "query", "collection": "scores", **event}, headers=headers
    )
    assert r.status_code in (400, 403), r.text
    # No function by the admin's names.
    for name in ("admin", "admin.db", "admin/db", "ctx.admin"):
        r = httpx.post(
            f"{app.url}/invoke/{name}", json={"op": "query", "collection": "scores"}, headers=headers
        )
        assert r.status_code in (400, 404), (name, r.text)
    # A developer function handing the client's event to ctx.db stays the caller's.
    r = call(app, "echoDb", {k: v for k, v in event.items() if k not in ("op", "collection")}, sid)
    assert r.status_code in (400, 403) and "data" not in r.json()
