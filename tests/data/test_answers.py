"""What a write's answer may carry (issue 18, point 1): an answer built from a document
passes the read rule for the caller, decided in the write's own transaction; otherwise it
is ``{"id": …}`` alone, and a failed ``ifVersion`` or a patch that does not apply tells a
non-reader nothing about the document either.

The README's ``posts`` rules: read = owner or published; update = owner or a listed editor.
Every answer is read as raw HTTP bytes and searched for marker strings planted in the
draft's private fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from minibase.app import create_app
from minibase.config import Config
from minibase.core import Minibase
from tests.support.config import Live
from tests.support.data import data_config
from tests.support.live import run_uvicorn

POSTS = {
    "read": "doc.uid == auth.uid || doc.published == true",
    "update": "doc.uid == auth.uid || auth.uid in doc.editors",
    "create": "authenticated",
    "delete": "owner",
    "schema": {"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}},
}
SECRET = "SECRET-MARKER-7f3a"


@pytest.fixture
def posts_live(make_config: Callable[..., Config], backend: str, db_url: str | None) -> Iterator[Live]:
    config = data_config(make_config, backend, db_url, posts=POSTS)
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        server = Live(url, core)
        try:
            yield server
        finally:
            for c in server.clients:
                c.close()


def raw(live: Live, sid: str, event: dict[str, Any]) -> tuple[int, bytes]:
    resp = httpx.post(live.url + "/invoke/db", json=event, headers={"Authorization": f"Bearer {sid}"})
    return resp.status_code, resp.content


def setup(live: Live) -> tuple[str, str, str]:
    """Alice's draft with an editor (bob) who may not read it; (alice uid, bob sid, alice sid)."""
    alice, bob = live.client("dev:alice"), live.client("dev:bob")
    assert alice.uid and bob.uid and alice.session_id and bob.session_id
    alice.db(
        "insert",
        collection="posts",
        obj={"id": "draft", "body": SECRET, "notes": {"x": SECRET + "-nested"}, "editors": [bob.uid], "n": 1},
    )
    return alice.uid, bob.session_id, alice.session_id


def test_a_no_op_update_by_a_non_reader_answers_the_id_only(posts_live: Live) -> None:
    owner, bob, _ = setup(posts_live)
    status, body = raw(
        posts_live,
        bob,
        {"op": "update", "collection": "posts", "id": "draft", "owner": owner, "unset": ["doesNotExist"]},
    )
    assert status == 200, body
    assert SECRET.encode() not in body
    assert orjson.loads(body)["data"] == {"id": "draft"}
    # A write the editor makes is still made.
    status, body = raw(
        posts_live,
        bob,
        {"op": "update", "collection": "posts", "id": "draft", "owner": owner, "set": {"t": "bob-was-here"}},
    )
    assert status == 200 and orjson.loads(body)["data"] == {"id": "draft"}


def test_the_same_inside_a_batch(posts_live: Live) -> None:
    owner, bob, _ = setup(posts_live)
    op = {"op": "update", "collection": "posts", "id": "draft", "owner": owner, "unset": ["doesNotExist"]}
    status, body = raw(
        posts_live,
        bob,
        {
            "op": "batch",
            "ops": [op, dict(op), {"op": "get", "collection": "posts", "id": "draft", "owner": owner}],
        },
    )
    assert status == 200, body
    assert SECRET.encode() not in body
    assert orjson.loads(body)["data"] == [{"id": "draft"}, {"id": "draft"}, None]


def test_the_owner_and_a_reader_get_the_document(posts_live: Live) -> None:
    owner, bob, alice = setup(posts_live)
    _, body = raw(posts_live, alice, {"op": "update", "collection": "posts", "id": "draft", "set": {"k": 1}})
    assert orjson.loads(body)["data"]["body"] == SECRET
    # The editor publishes it: from then on they may read it, and the answer says so.
    _, body = raw(
        posts_live,
        bob,
        {"op": "update", "collection": "posts", "id": "draft", "owner": owner, "set": {"published": True}},
    )
    doc = orjson.loads(body)["data"]
    assert doc["body"] == SECRET and doc["published"] is True and doc["_version"] == 3


def test_a_version_conflict_hides_the_version_from_a_non_reader(posts_live: Live) -> None:
    owner, bob, alice = setup(posts_live)
    for _ in range(3):
        raw(posts_live, alice, {"op": "update", "collection": "posts", "id": "draft", "inc": {"n": 0}})
    _, body = raw(
        posts_live,
        bob,
        {
            "op": "update",
            "collection": "posts",
            "id": "draft",
            "owner": owner,
            "set": {"k": 1},
            "ifVersion": 1,
        },
    )
    error = orjson.loads(body)["error"]
    assert error.pop("code") == "Conflict" and error.pop("requestId"), error
    assert error.pop("serverTime").endswith("Z"), error  # the server's clock: digits of its own
    assert b"4" not in orjson.dumps(error), error  # the current version (4): nowhere
    # The owner is told.
    _, body = raw(
        posts_live,
        alice,
        {"op": "update", "collection": "posts", "id": "draft", "set": {"k": 1}, "ifVersion": 1},
    )
    assert orjson.loads(body)["error"]["version"] == 4


def test_a_patch_that_does_not_apply_tells_a_non_reader_nothing(posts_live: Live) -> None:
    owner, bob, alice = setup(posts_live)
    for event in (
        {"inc": {"body": 1}},  # not a number
        {"push": {"notes": 1}},  # not an array
        {"set": {"body.x": 1}},  # not an object
        {"inc": {"n": 10}},  # the schema's maximum
    ):
        _, body = raw(
            posts_live, bob, {"op": "update", "collection": "posts", "id": "draft", "owner": owner, **event}
        )
        error = orjson.loads(body)["error"]
        assert error["code"] in ("InvalidArgument", "ValidationFailed"), error
        text = orjson.dumps(error)
        for word in (b"body", b"notes", b"number", b"array", b"object", b"maximum", SECRET.encode()):
            assert word not in text, (event, error)
        # The owner gets the precise error.
        _, body = raw(posts_live, alice, {"op": "update", "collection": "posts", "id": "draft", **event})
        assert orjson.loads(body)["error"]["code"] in ("InvalidArgument", "ValidationFailed")
