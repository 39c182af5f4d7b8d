"""Documents cannot grow without limit (issue 18, point 3).

A request body is capped at ``limits.max_body``, yet repeated ``update … push $each`` grew
a document to 30 MB. Every write path now checks the document it would store against
``limits.max_document`` (its compact JSON, system fields included): 413 PayloadTooLarge
naming the limit, nothing written. A query's page stops early, with ``next``, once its
documents total more than ``PAGE_DOCUMENTS`` times ``max_document``. Over real HTTP, on
SQLite, PostgreSQL and TableStore.
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
from minibase.data.api import PAGE_DOCUMENTS
from tests.support.config import Live, base_raw
from tests.support.data import COLLECTIONS, backend_environ, database_raw
from tests.support.live import run_uvicorn

LIMIT = 4096


@pytest.fixture
def small_live(make_config: Callable[..., Config], backend: str, db_url: str | None) -> Iterator[Live]:
    raw = base_raw(
        collections=COLLECTIONS, database=database_raw(backend, db_url), limits={"max_document": LIMIT}
    )
    config = make_config(raw, backend_environ(backend))
    assert config.limits.max_document == LIMIT
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        server = Live(url, core)
        try:
            yield server
        finally:
            for c in server.clients:
                c.close()


class Db:
    def __init__(self, live: Live) -> None:
        c = live.client("dev:alice")
        self.uid = c.uid
        self.http = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {c.session_id}"})

    def __call__(self, event: dict[str, Any]) -> tuple[int, Any]:
        r = self.http.post("/invoke/db", json=event)
        body = orjson.loads(r.content)
        return r.status_code, body.get("data", body.get("error"))

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def db(small_live: Live) -> Iterator[Db]:
    d = Db(small_live)
    yield d
    d.close()


def size(doc: dict[str, Any]) -> int:
    """The stored document's size as the limit counts it (compact JSON; key order aside)."""
    return len(orjson.dumps(doc))


def too_large(answer: tuple[int, Any]) -> None:
    status, error = answer
    assert status == 413 and error["code"] == "PayloadTooLarge", answer
    assert error["limit"] == "limits.max_document" and error["max"] == LIMIT, error


def test_insert_and_put_stop_at_the_limit(db: Db) -> None:
    status, doc = db({"op": "insert", "obj": {"id": "a", "s": "x" * 100}})
    assert status == 200
    room = LIMIT - size(doc)  # what one more character of "s" costs: one byte
    status, doc = db({"op": "insert", "obj": {"id": "b", "s": "x" * (100 + room)}})
    assert status == 200 and size(doc) == LIMIT, size(doc)  # exactly at the limit: stored
    too_large(db({"op": "insert", "obj": {"id": "c", "s": "x" * (101 + room)}}))
    too_large(db({"op": "put", "obj": {"id": "a", "s": "x" * LIMIT}}))
    status, doc = db({"op": "get", "id": "a"})
    assert doc["s"] == "x" * 100  # the refused put wrote nothing
    assert db({"op": "get", "id": "c"})[1] is None


def test_repeated_pushes_cannot_grow_a_document_past_the_limit(db: Db) -> None:
    assert db({"op": "insert", "obj": {"id": "grow", "l": []}})[0] == 200
    chunk = ["y" * 90] * 5
    pushes = 0
    while True:
        status, answer = db({"op": "update", "id": "grow", "push": {"l": {"$each": chunk}}})
        if status != 200:
            too_large((status, answer))
            break
        pushes += 1
        assert size(answer) <= LIMIT
        assert pushes < 100, "never refused"
    status, doc = db({"op": "get", "id": "grow"})
    assert len(doc["l"]) == 5 * pushes and doc["_version"] == 1 + pushes  # the refused push wrote nothing
    # The same inside a batch: all or nothing, the op named.
    status, error = db(
        {
            "op": "batch",
            "ops": [
                {"op": "insert", "obj": {"id": "other"}},
                {"op": "update", "id": "grow", "set": {"big": "z" * LIMIT}},
            ],
        }
    )
    too_large((status, error))
    assert error["index"] == 1
    assert db({"op": "get", "id": "other"})[1] is None
    # Shrinking is always allowed.
    assert db({"op": "update", "id": "grow", "set": {"l": []}})[0] == 200


def test_a_page_stops_once_its_documents_are_large(db: Db) -> None:
    filler = "w" * (LIMIT - 300)
    ids = [f"d{i:02}" for i in range(3 * PAGE_DOCUMENTS + 2)]
    for doc_id in ids:
        assert db({"op": "insert", "obj": {"id": doc_id, "s": filler}})[0] == 200
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        event: dict[str, Any] = {"op": "query", "owner": db.uid, "orderBy": [["id", "asc"]], "limit": 1000}
        if cursor:
            event["cursor"] = cursor
        r = db.http.post("/invoke/db", json=event)
        assert r.status_code == 200
        page = orjson.loads(r.content)
        assert len(r.content) <= PAGE_DOCUMENTS * LIMIT + 1024  # the answer's size is bounded
        assert len(page["data"]) <= PAGE_DOCUMENTS
        seen += [d["id"] for d in page["data"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ids  # every document once, in order
    assert pages >= 3


def test_max_document_defaults_to_max_body(make_config: Callable[..., Config]) -> None:
    assert make_config(base_raw(limits={"max_body": 5000})).limits.max_document == 5000
    assert make_config(base_raw(limits={"max_body": 5000, "max_document": 9000})).limits.max_document == 9000
    assert make_config(base_raw()).limits.max_document == make_config(base_raw()).limits.max_body
