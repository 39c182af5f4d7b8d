"""Realtime test plumbing: a started core with its hub (SQLite or PostgreSQL), callers, and
a client-side copy of each watch's result built only from the frames, as a client builds it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson

from minibase.auth.sessions import Caller
from minibase.config import Config
from minibase.core import Minibase
from minibase.realtime.connection import Connection
from tests.support.config import base_raw
from tests.support.data import database_raw

COLLECTIONS: dict[str, Any] = {
    "items": {"read": "doc.uid == auth.uid || doc.shared == true", "write": "owner"},
    "notes": {"read": "public", "write": "owner", "search": ["title"]},
}


def realtime_config(
    make_config: Callable[..., Config], backend: str, db_url: str | None, **extra: Any
) -> Config:
    raw = base_raw(
        collections={**COLLECTIONS, **extra.pop("collections", {})}, database=database_raw(backend, db_url)
    )
    for k, v in extra.items():
        raw[k] = {**raw.get(k, {}), **v}
    return make_config(raw)


async def started(config: Config, **kw: Any) -> Minibase:
    core = Minibase.from_config(config, background=True, **kw)  # as `minibase serve`: the hub runs
    await core.start()
    assert core.realtime is not None
    return core


async def login(core: Minibase, name: str) -> tuple[str, Caller]:
    result = await core.invoke("session", {"authCode": f"dev:{name}"}, None)
    sid = getattr(result, "value", result)["sessionId"]
    return sid, await core.caller_from_session_id(sid)


def plain(value: Any) -> Any:
    """A result with orjson Fragments (stored bodies) as plain JSON values."""
    return orjson.loads(orjson.dumps(value))


def apply_frame(docs: list[dict[str, Any]], frame: dict[str, Any]) -> None:
    """What a client does with a changes frame (docs/realtime.md)."""
    if frame["init"]:
        docs.clear()
    for c in frame["docChanges"]:
        if c["oldIndex"] >= 0:
            gone = docs.pop(c["oldIndex"])
            assert (gone["uid"], gone["id"]) == (c["uid"], c["id"]), (gone, c)
        if c["newIndex"] >= 0:
            assert c["doc"] is not None and (c["doc"]["uid"], c["doc"]["id"]) == (c["uid"], c["id"])
            docs.insert(c["newIndex"], c["doc"])


class Client:
    """A connection at the core (no transport) and the frames it was sent, applied."""

    def __init__(self, core: Minibase, caller: Caller | None = None) -> None:
        assert core.realtime is not None
        self.conn = Connection(core.realtime, "127.0.0.1")
        core.realtime.connect(self.conn)
        if caller is not None:
            self.conn.adopt(caller, None)
        self.frames: list[dict[str, Any]] = []
        self.docs: dict[str, list[dict[str, Any]]] = {}
        self.errors: dict[str | None, dict[str, Any]] = {}
        self.token: str | None = None
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for data in self.conn.frames():
            frame = orjson.loads(data)
            self.frames.append(frame)
            if frame["type"] == "changes":
                apply_frame(self.docs.setdefault(frame["id"], []), frame)
            if frame["type"] == "error":
                self.errors[frame.get("id")] = frame["error"]
            if "token" in frame:
                self.token = frame["token"]

    async def send(self, **msg: Any) -> None:
        await self.conn.receive(orjson.dumps(msg))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        self.conn.hub.disconnect(self.conn)


async def quiet(clients: list[Client], period: float = 0.25, timeout: float = 10.0) -> None:
    """Wait until no client got a frame for ``period`` seconds (the hub caught up)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    seen = -1
    while loop.time() < end:
        count = sum(len(c.frames) for c in clients)
        if count == seen:
            return
        seen = count
        await asyncio.sleep(period)
    raise AssertionError("the watches never went quiet")


def keys(docs: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(d["uid"], d["id"], d["_version"]) for d in docs]
