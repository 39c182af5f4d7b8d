"""The Python client (sync and async) against a real server."""

from __future__ import annotations

import asyncio

import pytest

from minibase.client import AsyncClient, Client, ClientError
from tests.conftest import SERVICE, Live


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
