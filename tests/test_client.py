"""The Python client (sync and async) against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from minibase.client import AsyncClient, Client, ClientError, retry_safe
from tests.support.config import SERVICE, Live


def test_sync_surface(live: Live) -> None:
    mb = live.client("dev:alice")
    todos = mb.db.collection("todo_list")
    a = todos.add({"title": "buy milk", "done": False})
    assert a["title"] == "buy milk" and a["uid"] == mb.uid and mb.user and mb.user["provider"] == "dev"
    todos.doc("b").set({"title": "walk", "done": True})
    assert todos.doc("b").get()["done"] is True
    assert todos.doc("b").update(set={"done": False}, ifVersion=1)["_version"] == 2
    for i in range(5):
        todos.add({"title": f"t{i}", "done": True, "n": i})
    page = todos.where({"done": True}).order_by("n", "desc").limit(2).get()
    assert [d["n"] for d in page["data"]] == [4, 3] and page["next"]
    rest = todos.where({"done": True}).order_by("n", "desc").limit(10).get(page["next"])
    assert [d["n"] for d in rest["data"]] == [2, 1, 0] and rest["next"] is None
    assert todos.where({"done": True}).count() == 5 and todos.count() == 7
    groups = todos.where({"done": True}).aggregate(
        [{"$group": {"_id": "$done", "n": {"$count": {}}, "top": {"$max": "$n"}}}, {"$limit": 1}]
    )
    assert groups == [{"_id": True, "n": 5, "top": 4}]
    assert todos.where({"n": 1}).fields(["n"]).get()["data"][0].keys() == {"id", "uid", "n"}
    results = mb.db.batch([{"op": "remove", "id": "b"}, {"op": "get", "id": a["id"]}], collection="todo_list")
    assert results[0] is None and results[1]["title"] == "buy milk"
    todos.doc(a["id"]).remove()
    assert todos.doc(a["id"]).get() is None
    with pytest.raises(ClientError) as e:
        mb.call_function("nope")
    assert e.value.code == "FunctionNotFound" and e.value.status == 404


def test_logout_forgets_the_session(live: Live) -> None:
    mb = live.client("dev:alice")
    mb.logout()
    assert mb.session_id is None
    with pytest.raises(ClientError) as e:
        mb.db("list")
    assert e.value.code == "Unauthenticated"


def test_async_surface(live: Live) -> None:
    async def main() -> None:
        async with AsyncClient(live.url, SERVICE) as mb:
            await mb.login(auth_code="dev:alice")
            todos = mb.db.collection("todo_list")
            doc = await todos.add({"title": "async", "n": 1})
            assert (await todos.doc(doc["id"]).get())["title"] == "async"
            await todos.doc(doc["id"]).update(inc={"n": 1})
            page = await todos.where({"n": 2}).get()
            assert [d["id"] for d in page["data"]] == [doc["id"]]
            assert await todos.count() == 1
            assert await todos.aggregate([{"$group": {"_id": None, "s": {"$sum": "$n"}}}]) == [
                {"_id": None, "s": 2}
            ]
            assert mb.credentials is not None
            mb.credentials.expiration = 0  # expired: refreshed before the next call
            assert await mb.db("count") == 1
            assert mb.credentials.expiration > 0
            await mb.logout()

    asyncio.run(main())


def test_sync_client_sees_async_writes(live: Live) -> None:
    with Client(live.url, SERVICE) as mb:
        mb.login(auth_code="dev:zoe")
        mb.db("put", obj={"id": "x"})

        async def read() -> object:
            async with AsyncClient(live.url, SERVICE) as amb:
                await amb.login(auth_code="dev:zoe")
                return await amb.db.collection("todo_list").doc("x").get()

        assert asyncio.run(read())["id"] == "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("function", "event", "safe"),
    [
        ("db", {"op": "get", "id": "a"}, True),
        ("db", {"op": "list"}, True),
        ("db", {"op": "query"}, True),
        ("db", {"op": "count"}, True),
        ("db", {"op": "put", "obj": {"id": "a"}}, True),
        ("db", {"op": "batch", "ops": [{"op": "get", "id": "a"}, {"op": "put", "obj": {"id": "b"}}]}, True),
        (
            "db",
            {"op": "batch", "ops": [{"op": "put", "obj": {"id": "b"}}, {"op": "insert", "obj": {}}]},
            False,
        ),
        ("db", {"op": "batch", "ops": []}, False),
        ("db", {"op": "batch", "ops": "get"}, False),
        ("db", {"op": "insert", "obj": {}}, False),
        ("db", {"op": "update", "id": "a", "inc": {"n": 1}}, False),
        ("db", {"op": "remove", "id": "a"}, False),
        ("files", {"op": "stat", "path": "a"}, True),
        ("files", {"op": "uploadUrl", "path": "a"}, True),
        ("files", {"op": "remove", "path": "a"}, False),
        ("session", {"op": "refresh"}, False),
        ("clearCompleted", {"op": "get"}, False),
    ],
)
def test_retry_safe_calls(function: str, event: dict[str, Any], safe: bool) -> None:
    assert retry_safe(function, event) is safe


def test_retry_delay_backs_off_honours_retry_after_and_is_bounded() -> None:
    c = Client("http://127.0.0.1:9", "svc")
    try:
        unavailable = ClientError("Unavailable", "down", 503, None, retry_after=2)
        assert (
            c._retry_delay(unavailable, 0) == pytest.approx(2, abs=0.5)
            and c._retry_delay(unavailable, 0) >= 2
        )
        no_header = ClientError("Unavailable", "down", 503, None)
        delays = [c._retry_delay(no_header, a) for a in range(3)]
        assert all(d is not None for d in delays)
        assert 0.1 <= delays[0] <= 0.2 and 0.4 <= delays[2] <= 0.8  # type: ignore[operator]
        assert c._retry_delay(no_header, 3) is None  # max_retries
        assert c._retry_delay(ClientError("Unavailable", "down", 503, None, retry_after=3600), 0) is None
        for code in ("Internal", "Conflict", "RateLimited", "Unauthenticated"):
            assert c._retry_delay(ClientError(code, "x", 500, None, retry_after=1), 0) is None
    finally:
        c.close()
