"""The Python client's ``watch()``: an async iterator of snapshots over a real WebSocket, its
credentials renewed on the open socket, a dropped connection resumed without a gap or a
repeat, and refusals raised."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from minibase import client_watch
from minibase.client import AsyncClient, Client, ClientError
from minibase.client_watch import Snapshot, WatchStream
from minibase.config import Config
from tests.realtime.conftest import realtime_config
from tests.realtime.test_http import Server, serve
from tests.support.config import SERVICE


@pytest.fixture
def server(make_config: Callable[..., Config]) -> Server:
    gen = serve(realtime_config(make_config, "sqlite", None))
    live = next(gen)
    yield live  # type: ignore[misc]
    gen.close()


async def _next(stream: WatchStream) -> Snapshot:
    return await asyncio.wait_for(stream.__anext__(), 10)


def test_watch_yields_snapshots_renews_credentials_and_resumes(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, SERVICE) as mb, AsyncClient(server.url, SERVICE) as writer:
            await mb.login("dev:alice")
            await writer.login("dev:alice")
            todos = writer.db.collection("items")
            await todos.doc("a").set({"n": 1})
            stream = mb.db.collection("items").where({"n": {"$gte": 1}}).order_by("n").watch()
            async with stream:
                first = await _next(stream)
                assert first.init and [d["id"] for d in first.docs] == ["a"]
                assert [c["dataType"] for c in first.docChanges] == ["init"]
                await todos.doc("b").set({"n": 0})  # filtered out: no snapshot
                await todos.doc("c").set({"n": 2})
                snap = await _next(stream)
                assert [d["id"] for d in snap.docs] == ["a", "c"] and snap.doc_changes[0]["dataType"] == "add"
                # Renew the credentials on the open socket (as if they were near expiry).
                socket, refreshes = stream._ws, []
                refresh = mb.refresh

                async def counted() -> dict[str, Any]:
                    refreshes.append(1)
                    return await refresh()

                monkeypatch.setattr(mb, "refresh", counted)
                assert mb.credentials is not None
                monkeypatch.setattr(
                    client_watch, "REFRESH_MARGIN", mb.credentials.expiration - 1 - time.time()
                )
                await asyncio.sleep(1.2)  # renewal is due now
                await todos.doc("a").update(set={"n": 3})
                snap = await _next(stream)
                assert refreshes and stream._ws is socket  # new credentials, same socket
                assert [d["id"] for d in snap.docs] == ["c", "a"] and snap.doc_changes[0][
                    "dataType"
                ] == "update"
                monkeypatch.setattr(client_watch, "REFRESH_MARGIN", 60.0)
                # The connection drops; meanwhile a document leaves and another comes.
                assert stream._ws is not None
                await stream._ws.close()
                await todos.doc("c").remove()
                await todos.doc("d").set({"n": 5})
                snap = await _next(stream)
                assert not snap.init  # resumed, not started over
                assert sorted((c["dataType"], c["id"]) for c in snap.doc_changes) == [
                    ("add", "d"),
                    ("remove", "c"),
                ]
                assert [d["id"] for d in snap.docs] == ["a", "d"]
                removed = next(c for c in snap.doc_changes if c["dataType"] == "remove")
                assert removed["doc"]["id"] == "c"  # filled in from the list held

    asyncio.run(main())


def test_refusals_are_raised_and_the_sync_client_says_why(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, SERVICE) as anon:
            with pytest.raises(ClientError) as e:
                await _next(anon.db.collection("todo_list").watch())  # owner rule: log in
            assert e.value.code == "Unauthenticated"
            with pytest.raises(ClientError) as e:
                await _next(anon.db.collection("notes").where({"$nope": 1}).watch())
            assert e.value.code == "InvalidArgument"

    asyncio.run(main())
    with Client(server.url, SERVICE) as mb, pytest.raises(TypeError, match="AsyncClient"):
        mb.db.collection("items").watch()
