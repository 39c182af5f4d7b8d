"""The transports over loopback, with real clients: a WebSocket (the `websockets` client) and
SSE (httpx streaming) against `uvicorn` serving the app with its hub; authentication by
session and by FC-signed credentials, refreshed credentials on an open socket, and streams
ended within seconds by an expiry, a logout or a disabled user."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from minibase.app import create_app
from minibase.auth import fc_signature
from minibase.client import Credentials, signed_headers
from minibase.config import Config
from minibase.core import Minibase
from minibase.realtime.hub import CHECK_EVERY
from tests.realtime.conftest import realtime_config
from tests.support.config import Clock
from tests.support.live import run_uvicorn


class Server:
    def __init__(self, url: str, core: Minibase, clock: Clock) -> None:
        self.url = url
        self.ws_url = url.replace("http://", "ws://") + "/realtime"
        self.core = core
        self.clock = clock

    def login(self, name: str) -> dict[str, Any]:
        r = httpx.post(self.url + "/session", json={"authCode": f"dev:{name}"})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def db(self, sid: str, **event: Any) -> Any:
        r = httpx.post(self.url + "/invoke/db", json=event, headers={"authorization": f"Bearer {sid}"})
        assert r.status_code == 200, r.text
        return r.json()["data"]


def serve(config: Config) -> Iterator[Server]:
    clock = Clock()
    core = Minibase.from_config(config, clock=clock, background=True)  # as `minibase serve`
    with run_uvicorn(create_app(config, core=core), ws="websockets-sansio") as url:
        yield Server(url, core, clock)


@pytest.fixture
def server(make_config: Callable[..., Config]) -> Iterator[Server]:
    yield from serve(
        realtime_config(make_config, "sqlite", None, auth={"session_idle": "30d", "session_max": "90d"})
    )


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    while True:
        frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] != "heartbeat":
            return frame


async def closed(ws: ClientConnection, timeout: float = 5.0) -> tuple[list[dict[str, Any]], int]:
    """The frames until the server closes, and its close code."""
    frames = []
    try:
        while True:
            frames.append(orjson.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed as e:
        assert e.rcvd is not None
        return frames, e.rcvd.code


def fc_auth(creds: Credentials, clock: Clock) -> dict[str, Any]:
    return {
        "type": "auth",
        "headers": signed_headers(creds, "GET", "/realtime", b"", date=fc_signature.format_date(clock())),
    }


def test_a_watch_over_a_websocket_sees_adds_updates_and_removes(server: Server) -> None:
    alice = server.login("alice")
    sid = alice["sessionId"]

    async def main() -> None:
        async with connect(server.ws_url) as ws:
            await ws.send(orjson.dumps({"type": "auth", "sessionId": sid}).decode())
            assert await recv(ws) == {"type": "authed", "uid": alice["user"]["uid"], "expires": None}
            await ws.send(
                '{"type": "subscribe", "id": "w1", "collection": "items", "orderBy": [["n", "asc"]]}'
            )
            init = await recv(ws)
            assert (init["type"], init["id"], init["init"], init["docChanges"]) == ("changes", "w1", True, [])
            await asyncio.to_thread(server.db, sid, op="put", collection="items", obj={"id": "a", "n": 2})
            add = await recv(ws)
            [c] = add["docChanges"]
            assert (c["dataType"], c["id"], c["doc"]["n"], c["oldIndex"], c["newIndex"]) == (
                "add",
                "a",
                2,
                -1,
                0,
            )
            await asyncio.to_thread(server.db, sid, op="put", collection="items", obj={"id": "b", "n": 1})
            [c] = (await recv(ws))["docChanges"]
            assert (c["dataType"], c["id"], c["newIndex"]) == ("add", "b", 0)
            await asyncio.to_thread(server.db, sid, op="update", collection="items", id="b", set={"n": 3})
            [c] = (await recv(ws))["docChanges"]
            assert (c["dataType"], c["id"], c["oldIndex"], c["newIndex"], c["doc"]["n"]) == (
                "update",
                "b",
                0,
                1,
                3,
            )
            await asyncio.to_thread(server.db, sid, op="remove", collection="items", id="a")
            [c] = (await recv(ws))["docChanges"]
            assert (c["dataType"], c["id"], c["oldIndex"], c["newIndex"], c["doc"]) == (
                "remove",
                "a",
                0,
                -1,
                None,
            )
            await ws.send('{"type": "ping"}')
            assert await recv(ws) == {"type": "pong"}
            await ws.send('{"type": "unsubscribe", "id": "w1"}')
            await ws.send('{"type": "ping"}')
            assert await recv(ws) == {"type": "pong"}
            await asyncio.to_thread(server.db, sid, op="remove", collection="items", id="b")
            await ws.send('{"type": "ping"}')
            assert await recv(ws) == {"type": "pong"}  # nothing for the closed watch

    asyncio.run(main())


def test_fc_signed_auth_refreshed_on_the_open_socket_and_expiry_ending_it(server: Server) -> None:
    alice = server.login("alice")
    sid, creds = alice["sessionId"], Credentials.from_wire(alice["sts"])
    ttl = server.core.config.auth.credentials_ttl

    async def main() -> None:
        async with connect(server.ws_url) as ws:
            await ws.send(orjson.dumps(fc_auth(creds, server.clock)).decode())
            authed = await recv(ws)
            assert authed["type"] == "authed" and authed["expires"] == pytest.approx(creds.expiration, abs=1)
            await ws.send('{"type": "subscribe", "id": "w", "collection": "items"}')
            assert (await recv(ws))["init"] is True
            # Near the end of the credentials' life: refresh, and hand the socket the new ones.
            server.clock.advance(ttl - 60)
            r = httpx.post(server.url + "/session", json={"op": "refresh", "sessionId": sid})
            fresh = Credentials.from_wire(r.json()["sts"])
            await ws.send(orjson.dumps(fc_auth(fresh, server.clock)).decode())
            assert (await recv(ws))["expires"] == pytest.approx(fresh.expiration, abs=1)
            server.clock.advance(120)  # past the first credentials' expiry
            await asyncio.sleep(CHECK_EVERY + 0.5)
            await asyncio.to_thread(server.db, sid, op="put", collection="items", obj={"id": "a"})
            assert (await recv(ws))["docChanges"][0]["dataType"] == "add"  # the watch went on
            # Another session's credentials are refused on this socket.
            bob = Credentials.from_wire(server.login("bob")["sts"])
            await ws.send(orjson.dumps(fc_auth(bob, server.clock)).decode())
            frames, code = await closed(ws)
            assert frames[-1]["error"]["code"] == "PermissionDenied" and code == 4403
        async with connect(server.ws_url) as ws:
            await ws.send(orjson.dumps(fc_auth(fresh, server.clock)).decode())
            assert (await recv(ws))["type"] == "authed"
            server.clock.advance(ttl)  # the fresh credentials expire too, with no auth after
            start = time.monotonic()
            frames, code = await closed(ws)
            assert time.monotonic() - start < CHECK_EVERY + 2
            assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "Unauthenticated"
            assert "expired" in frames[-1]["error"]["message"] and code == 4401

    asyncio.run(main())


@pytest.mark.parametrize("how", ["logout", "disabled"])
def test_an_ended_session_ends_its_streams_within_seconds(server: Server, how: str) -> None:
    alice = server.login("alice")
    sid = alice["sessionId"]

    async def main() -> None:
        async with connect(server.ws_url) as ws:
            await ws.send(orjson.dumps({"type": "auth", "sessionId": sid}).decode())
            await recv(ws)
            await ws.send('{"type": "subscribe", "id": "w", "collection": "items"}')
            await recv(ws)
            start = time.monotonic()
            if how == "logout":
                httpx.post(server.url + "/session", json={"op": "logout", "sessionId": sid})
            else:  # the user disabled in the database, by another process (no revoke)
                other = Minibase.from_config(server.core.config)
                await other.store.open()
                assert await other.store.set_user_disabled(alice["user"]["uid"], True)
                await other.store.close()
            frames, code = await closed(ws)
            assert time.monotonic() - start < CHECK_EVERY + 2
            assert [f["type"] for f in frames] == ["error"] and frames[0]["error"][
                "code"
            ] == "Unauthenticated"
            assert code == 4401

    asyncio.run(main())


def test_bad_frames_and_refused_watches(server: Server) -> None:
    async def main() -> None:
        async with connect(server.ws_url) as ws:
            await ws.send("not json")
            frames, code = await closed(ws)
            assert frames[-1]["error"]["code"] == "InvalidArgument" and code == 4400
        async with connect(server.ws_url) as ws:
            await ws.send('{"type": "dance"}')
            frames, code = await closed(ws)
            assert "type must be one of" in frames[-1]["error"]["message"] and code == 4400
        async with connect(server.ws_url) as ws:
            await ws.send('{"type": "auth", "sessionId": "nope"}')
            frames, code = await closed(ws)
            assert frames[-1]["error"]["code"] == "Unauthenticated" and code == 4401
        async with connect(server.ws_url) as ws:  # anonymous: the rules decide, per watch
            await ws.send('{"type": "subscribe", "id": "w", "collection": "todo_list"}')
            err = await recv(ws)
            assert (err["type"], err["id"], err["error"]["code"]) == ("error", "w", "Unauthenticated")
            await ws.send('{"type": "subscribe", "id": "n", "collection": "notes", "where": {"$bad": 1}}')
            err = await recv(ws)
            assert (err["id"], err["error"]["code"]) == ("n", "InvalidArgument")
            await ws.send(
                '{"type": "subscribe", "id": "n", "collection": "notes", "where": {"title": {"$search": "a"}}}'
            )
            err = await recv(ws)  # a text search is not matched change by change
            assert (err["id"], err["error"]["code"]) == ("n", "InvalidArgument") and "$search" in err[
                "error"
            ]["message"]
            await ws.send('{"type": "subscribe", "id": "n", "collection": "notes", "limit": 5001}')
            err = await recv(ws)
            assert err["error"]["limit"] == "limits.max_watch_docs"
            await ws.send('{"type": "subscribe", "id": "n", "collection": "notes"}')
            assert (await recv(ws))["init"] is True  # public: anonymous may watch it
            sid = server.login("carol")["sessionId"]
            await ws.send(orjson.dumps({"type": "auth", "sessionId": sid}).decode())
            frames, code = await closed(ws)  # an anonymous connection stays anonymous
            assert frames[-1]["error"]["code"] == "PermissionDenied" and code == 4403

    asyncio.run(main())


def test_sse_streams_the_same_frames_and_refuses_before_streaming(server: Server) -> None:
    alice = server.login("alice")
    sid, creds = alice["sessionId"], Credentials.from_wire(alice["sts"])
    url = server.url + "/realtime/sse"
    body = orjson.dumps({"id": "w", "collection": "items", "where": {"n": {"$gt": 1}}})
    r = httpx.post(
        url,
        content=b'{"id": "w", "collection": "items", "where": {"$bad": 1}}',
        headers={"authorization": f"Bearer {sid}"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidArgument"
    r = httpx.post(url, content=b'{"id": "w", "collection": "todo_list"}')  # anonymous, owner rule
    assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthenticated"
    assert httpx.get(server.url + "/realtime").json()["error"]["code"] == "InvalidArgument"
    for n, headers in enumerate(
        (
            {"authorization": f"Bearer {sid}"},
            signed_headers(
                creds, "POST", "/realtime/sse", body, date=fc_signature.format_date(server.clock())
            ),
        )
    ):
        with (
            httpx.Client(timeout=10) as http,
            http.stream("POST", url, content=body, headers=headers) as resp,
        ):
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.iter_lines()
            frames = []

            def next_frame(
                lines: Iterator[str] = lines, frames: list[dict[str, Any]] = frames
            ) -> dict[str, Any]:
                for line in lines:
                    if line.startswith("data: "):
                        frame: dict[str, Any] = orjson.loads(line[6:])
                        frames.append(frame)
                        return frame
                raise AssertionError("the stream ended")

            assert next_frame()["type"] == "authed"
            assert next_frame()["init"] is True
            server.db(sid, op="put", collection="items", obj={"id": f"s{n}", "n": 0})  # filtered out
            server.db(sid, op="put", collection="items", obj={"id": f"s{n}", "n": 2})
            [c] = next_frame()["docChanges"]
            assert (c["dataType"], c["id"]) == ("add", f"s{n}")


def test_connection_and_watch_limits(make_config: Callable[..., Config]) -> None:
    config = realtime_config(
        make_config,
        "sqlite",
        None,
        limits={"max_connections": 1, "max_watches_per_user": 2, "max_watch_docs": 3},
    )
    with contextlib.contextmanager(serve)(config) as server:
        sid = server.login("alice")["sessionId"]
        for i in range(4):
            server.db(sid, op="put", collection="items", obj={"id": f"d{i}"})

        async def main() -> None:
            async with connect(server.ws_url) as ws:
                await ws.send(orjson.dumps({"type": "auth", "sessionId": sid}).decode())
                await recv(ws)
                async with connect(server.ws_url) as second:
                    frames, code = await closed(second)
                    assert frames[-1]["error"]["code"] == "RateLimited" and code == 4429
                await ws.send('{"type": "subscribe", "id": "a", "collection": "items"}')
                err = await recv(ws)  # 4 documents, no limit, at most 3 per watch
                assert (err["id"], err["error"]["code"], err["error"]["limit"]) == (
                    "a",
                    "PayloadTooLarge",
                    "limits.max_watch_docs",
                )
                for wid in ("b", "c"):
                    await ws.send(
                        orjson.dumps(
                            {"type": "subscribe", "id": wid, "collection": "items", "limit": 3}
                        ).decode()
                    )
                    assert len((await recv(ws))["docChanges"]) == 3
                await ws.send('{"type": "subscribe", "id": "d", "collection": "items", "limit": 1}')
                err = await recv(ws)
                assert (err["id"], err["error"]["code"]) == ("d", "RateLimited")

        asyncio.run(main())
