"""``watch()`` for the Python client (docs/realtime.md): an async iterator of snapshots over
the realtime WebSocket.

    async with AsyncClient(url, service) as mb:
        await mb.login("dev:alice")
        async for snapshot in mb.db.collection("todo_list").where({"done": False}).watch():
            print(len(snapshot.docs), [c["dataType"] for c in snapshot.doc_changes])

It authenticates with the client's invoke credentials (FC-signed, like every call), hands the
socket refreshed credentials before they expire, and after a dropped connection reconnects
and resumes (nothing missed, nothing sent twice); errors that retrying cannot fix are raised
as :class:`~minibase.client.ClientError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .client import REFRESH_MARGIN, ClientError, signed_headers

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from .client import AsyncClient

__all__ = ["Snapshot", "WatchStream"]

PATH = "/realtime"
SILENCE = 60.0  # seconds without a frame (the server beats every 25 s) before reconnecting
RECONNECTS = 5  # tries in a row before the error is raised
_FATAL = {4400, 4403, 4404}  # a bad request or a refusal: trying again cannot help


@dataclass
class Snapshot:
    """The watch's result now (``docs``, in query order) and what changed (``doc_changes``:
    ``{dataType, id, uid, doc, oldIndex, newIndex}``); ``init`` for the first one (or a
    fresh start after a long disconnection)."""

    docs: list[dict[str, Any]]
    doc_changes: list[dict[str, Any]] = field(default_factory=list)
    init: bool = False

    @property
    def docChanges(self) -> list[dict[str, Any]]:
        return self.doc_changes


class WatchStream:
    def __init__(self, client: AsyncClient, event: dict[str, Any]) -> None:
        self.client = client
        self.event = event
        self.docs: list[dict[str, Any]] = []
        self.token: str | None = None
        self._ws: ClientConnection | None = None
        self._expires: float | None = None
        self._failures = 0
        self._closed = False

    def __aiter__(self) -> WatchStream:
        return self

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None

    async def __anext__(self) -> Snapshot:
        from websockets.exceptions import ConnectionClosed

        while not self._closed:
            if self._ws is None:
                await self._connect()
            assert self._ws is not None
            if self._renewal_due():  # checked before every read: a busy stream never goes quiet
                await self._renew()
            try:
                raw = await asyncio.wait_for(self._ws.recv(), self._wait())
            except (TimeoutError, asyncio.TimeoutError):
                await self._on_quiet()
                continue
            except (ConnectionClosed, OSError) as e:
                await self._on_closed(e)
                continue
            try:
                snapshot = self._on_frame(orjson.loads(raw))
            except ClientError:
                await self._drop()
                raise
            if snapshot is not None:
                self._failures = 0
                return snapshot
        raise StopAsyncIteration

    # ------------------------------------------------------------ connection

    def _url(self) -> str:
        endpoint = self.client.endpoint
        return ("wss://" + endpoint[8:] if endpoint.startswith("https://") else "ws://" + endpoint[7:]) + PATH

    async def _auth_frame(self) -> bytes | None:
        client = self.client
        if client.session_id is None:
            return None  # anonymous: the rules decide
        if client._needs_refresh():
            await client.refresh()
        creds = client.credentials
        assert creds is not None
        self._expires = creds.expiration
        return orjson.dumps({"type": "auth", "headers": signed_headers(creds, "GET", PATH, b"")})

    async def _connect(self) -> None:
        from websockets.asyncio.client import connect

        try:
            self._ws = await connect(self._url(), open_timeout=10, max_size=None)
        except (OSError, asyncio.TimeoutError, TimeoutError) as e:
            await self._backoff(ClientError("Unavailable", f"cannot connect: {e}", 503, None))
            return
        auth = await self._auth_frame()
        if auth is not None:
            await self._ws.send(auth.decode())
        subscribe = {"type": "subscribe", "id": "w", **self.event}
        if self.token is not None:
            held = [[d["uid"], d["id"], d.get("_created", ""), d.get("_version", 0)] for d in self.docs]
            subscribe["resume"] = {"token": self.token, "docs": held}
        await self._ws.send(orjson.dumps(subscribe).decode())

    def _wait(self) -> float:
        """Seconds to wait for a frame: until the credentials need renewing, or the silence
        after which the connection counts as lost."""
        if self._expires is None:
            return SILENCE
        return max(0.1, min(SILENCE, self._expires - REFRESH_MARGIN - time.time()))

    def _renewal_due(self) -> bool:
        return self._expires is not None and self._expires - REFRESH_MARGIN <= time.time() + 0.1

    async def _renew(self) -> None:
        """New credentials, handed to the open socket (the watch goes on)."""
        await self.client.refresh()
        auth = await self._auth_frame()
        if self._ws is not None and auth is not None:
            await self._ws.send(auth.decode())

    async def _on_quiet(self) -> None:
        if not self._renewal_due():
            await self._drop()  # silence: the connection is gone without a close

    async def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _on_closed(self, e: Exception) -> None:
        from websockets.exceptions import ConnectionClosed

        code = e.rcvd.code if isinstance(e, ConnectionClosed) and e.rcvd is not None else 1006
        await self._drop()
        if self._closed:
            return
        if code in _FATAL:
            raise ClientError("Closed", f"the server closed the watch ({code})", code - 4000, None)
        if code == 4401 and self.client.session_id is not None:
            await self.client.refresh()  # raises if the session itself has ended
        await self._backoff(ClientError("Unavailable", f"the connection closed ({code})", 503, None))

    async def _backoff(self, error: ClientError) -> None:
        self._failures += 1
        if self._failures > RECONNECTS:
            raise error
        await asyncio.sleep(min(10.0, 0.2 * 2**self._failures) * (0.5 + random.random() / 2))  # noqa: S311

    # ---------------------------------------------------------------- frames

    def _on_frame(self, frame: dict[str, Any]) -> Snapshot | None:
        kind = frame.get("type")
        if "token" in frame:
            self.token = frame["token"]
        if kind == "authed":
            self._expires = frame.get("expires")
        elif kind == "error":
            err = frame["error"]
            status = {"RateLimited": 429, "Unavailable": 503}.get(err.get("code"), 400)
            error = ClientError(
                err.get("code", "Internal"), err.get("message", ""), status, err.get("requestId")
            )
            if frame.get("id") is not None or err.get("code") not in ("Unavailable", "Unauthenticated"):
                self._closed = True
                raise error
            # the connection ends (server stopping, a slow read, expired credentials): the
            # close follows, then a reconnect resumes
        elif kind == "changes":
            changes = frame["docChanges"]
            if frame["init"]:
                self.docs = []
            for c in changes:
                if c["oldIndex"] >= 0:
                    gone = self.docs.pop(c["oldIndex"])
                    if c["doc"] is None:
                        c["doc"] = gone  # a remove names the document you held
                if c["newIndex"] >= 0:
                    self.docs.insert(c["newIndex"], c["doc"])
            if changes or frame["init"]:
                return Snapshot(list(self.docs), changes, bool(frame["init"]))
        return None
