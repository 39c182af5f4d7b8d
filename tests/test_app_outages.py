"""Outages over real HTTP: a stopped PostgreSQL server, an S3 endpoint that refuses
connections and a SQLite database locked by another process answer 503 ``Unavailable``
with ``Retry-After`` (not 500); the Python client sends retry-safe calls again after it
and never the others."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from minibase.app import create_app
from minibase.client import AsyncClient, Client, ClientError
from minibase.config import Config
from minibase.core import Minibase
from minibase.errors import RETRY_AFTER
from minibase.store import sqlite_writer
from tests.fakes.server import free_port
from tests.support.config import SERVICE, base_raw
from tests.support.http import PROXY_SESSION, signed_post
from tests.support.live import run_uvicorn
from tests.support.pg import PgServer, start_server


@contextmanager
def serve(config: Config) -> Iterator[tuple[str, Minibase]]:
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        yield url, core


def assert_unavailable(r: httpx.Response, status: int = 503) -> None:
    assert r.status_code == status, r.text
    assert r.headers["retry-after"] == str(RETRY_AFTER)
    error = r.json()["error"]
    assert error["code"] == "Unavailable" and error["retryAfter"] == RETRY_AFTER
    assert "Traceback" not in r.text


@pytest.fixture
def private_pg() -> Iterator[PgServer]:
    """A server of this test's own, so stopping it cannot disturb any other test."""
    server = start_server()
    try:
        yield server
    finally:
        server.destroy()


def test_a_stopped_postgres_answers_503_and_clients_retry_only_reads(
    private_pg: PgServer, make_config: Callable[..., Config]
) -> None:
    config = make_config(base_raw(database={"url": private_pg.url_for(private_pg.create_database())}))
    slept: list[float] = []
    with (
        serve(config) as (url, _),
        Client(url, SERVICE, sleep=lambda s: (slept.append(s), time.sleep(s))) as c,
    ):
        c.login("dev:pg")
        c.db("put", obj={"id": "a", "n": 1})
        assert c.credentials is not None and c.session_id is not None
        bearer = {"authorization": f"Bearer {c.session_id}"}

        private_pg.stop("immediate")
        # /invoke answers the code's own status; FC's Invoke API path 200 + the FC error type.
        assert_unavailable(httpx.post(url + "/invoke/db", json={"op": "get", "id": "a"}, headers=bearer))
        # FC's Invoke API path: the signed call's session cannot be looked up, so it is
        # refused before the function, in FC's own shape (as FC answers its own outages).
        r = signed_post(url, c.credentials, {"sid": c.session_id, "op": "get", "id": "a"})
        assert r.status_code == 503 and r.headers["retry-after"] == str(RETRY_AFTER)
        assert r.json()["ErrorCode"] == "Unavailable"
        assert_unavailable(httpx.post(url + PROXY_SESSION, json={"authCode": "dev:other"}))

        # Not retry-safe: raised at once, never sent again (an insert without an id would
        # store twice, an update with inc would count twice).
        for call in (
            lambda: c.db.collection("todo_list").add({"n": 2}),
            lambda: c.db.collection("todo_list").doc("a").update(inc={"n": 1}),
        ):
            with pytest.raises(ClientError) as e:
                call()
            assert e.value.code == "Unavailable" and e.value.retry_after == RETRY_AFTER
        assert slept == []
        # Reads are retried, waiting at least Retry-After, and succeed once the server is back.
        back = threading.Thread(target=private_pg.start)
        back.start()
        try:
            assert c.db("get", id="a")["n"] == 1
        finally:
            back.join()
        assert slept and all(s >= RETRY_AFTER for s in slept) and len(slept) <= c.max_retries
        # Still down after every retry: the error, after max_retries waits.
        private_pg.stop("immediate")
        slept.clear()
        with pytest.raises(ClientError) as e:
            c.db("count", collection="todo_list")
        assert e.value.code == "Unavailable" and len(slept) == c.max_retries
        private_pg.start()
        assert c.db("count", collection="todo_list") == 1


def test_an_s3_endpoint_that_refuses_connections_answers_503(make_config: Callable[..., Config]) -> None:
    files = {
        "url": f"s3://bucket-1?endpoint=http://127.0.0.1:{free_port()}&region=us-east-1&path_style=true",
        "access_key_id": "AKIDTEST",
        "secret_access_key": "secret-test",
    }
    with serve(make_config(base_raw(files=files))) as (url, _), Client(url, SERVICE, max_retries=0) as c:
        c.login("dev:s3")
        bearer = {"authorization": f"Bearer {c.session_id}"}
        for event in ({"op": "stat", "path": "a.txt"}, {"op": "list"}, {"op": "remove", "path": "a.txt"}):
            assert_unavailable(httpx.post(url + "/invoke/files", json=event, headers=bearer))
        with pytest.raises(ClientError) as e:
            c.files.stat("a.txt")
        assert e.value.code == "Unavailable"


def test_a_sqlite_database_locked_by_another_process_answers_503(
    make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_writer, "_BUSY_WAIT_MS", 200)
    with serve(make_config()) as (url, core), Client(url, SERVICE) as c:
        c.login("dev:lite")
        bearer = {"authorization": f"Bearer {c.session_id}"}
        path: Any = core.store.path  # type: ignore[attr-defined]
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the write lock, held past the busy timeout
        try:
            put = {"op": "put", "obj": {"id": "a"}}
            assert_unavailable(httpx.post(url + "/invoke/db", json=put, headers=bearer))
            # Reads do not need the write lock (WAL).
            r = httpx.post(url + "/invoke/db", json={"op": "list"}, headers=bearer)
            assert r.status_code == 200 and r.json()["data"] == []
        finally:
            other.execute("ROLLBACK")
            other.close()
        r = httpx.post(url + "/invoke/db", json={"op": "put", "obj": {"id": "a"}}, headers=bearer)
        assert r.status_code == 200, r.text


def test_the_async_client_retries_a_put_until_the_lock_is_released_and_never_an_insert(
    make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_writer, "_BUSY_WAIT_MS", 200)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    async def main(url: str, path: Any) -> None:
        async with AsyncClient(url, SERVICE, sleep=sleep) as c:
            await c.login("dev:async")
            other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(ClientError) as e:
                await c.db.collection("todo_list").add({"n": 1})
            assert e.value.code == "Unavailable" and slept == []
            # Released while the client waits out Retry-After: the put goes through.
            release = threading.Timer(0.5, lambda: (other.execute("ROLLBACK"), other.close()))
            release.start()
            await c.db.collection("todo_list").doc("a").set({"n": 2})
            release.join()
            assert slept and all(s >= RETRY_AFTER for s in slept)
            assert (await c.db.collection("todo_list").doc("a").get())["n"] == 2
            assert await c.db.collection("todo_list").count() == 1  # the insert never landed

    with serve(make_config()) as (url, core):
        asyncio.run(main(url, core.store.path))  # type: ignore[attr-defined]
