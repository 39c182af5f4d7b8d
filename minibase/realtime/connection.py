"""One realtime connection, whatever carries it (WebSocket or SSE): who is calling, its
watches, and the frames waiting to be sent, bounded (docs/realtime.md#slow-clients)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import Internal, InvalidArgument, MinibaseError, PermissionDenied, Unavailable, error_body
from ..util import jsonin
from ..util.ids import new_request_id
from ..util.waits import wait_event
from .hub import Watch, watch_id

if TYPE_CHECKING:
    from ..auth.sessions import Caller
    from .hub import Hub

__all__ = ["HEARTBEAT", "MAX_BYTES", "MAX_FRAMES", "PATH", "Connection"]

log = logging.getLogger("minibase.realtime")

PATH = "/realtime"  # the request an FC-signed auth message signs: GET, this path, no body
HEARTBEAT = 25.0  # seconds of quiet before a heartbeat frame
MAX_FRAMES = 1000  # frames waiting for one connection, at most
MAX_BYTES = 8 * 1024 * 1024  # bytes waiting for one connection, at most (one larger frame passes alone)
_TYPES = "auth, subscribe, unsubscribe, ping"


class Connection:
    def __init__(self, hub: Hub, ip: str | None) -> None:
        self.hub = hub
        self.ip = ip
        self.rid = new_request_id()  # in error frames: finds the connection in the log
        self.caller: Caller | None = None
        self.anonymous = False  # its first message was a subscribe
        self.expires: float | None = None  # FC-signed: when the credentials expire
        self.watches: dict[str, Watch] = {}
        self.error: MinibaseError | None = None  # set once the connection is ending
        self.ended = asyncio.Event()
        self._out: deque[bytes] = deque()
        self._size = 0
        self._ready = asyncio.Event()

    @property
    def close_code(self) -> int:
        """The WebSocket close code: 1000, or 4000 + the ending error's HTTP status."""
        return 1000 if self.error is None else 4000 + self.error.status

    # ------------------------------------------------------------------ input

    async def receive(self, data: str | bytes) -> None:
        """One client frame. A subscribe's error ends that watch (an error frame with its
        id); any other error ends the connection."""
        if self.error is not None:
            return
        try:
            msg = self._parse(data)
            kind = msg.get("type")
            if kind == "subscribe":
                if self.caller is None:
                    self.anonymous = True
                wid = watch_id(msg)
                try:
                    await self.subscribe(msg)
                except MinibaseError as e:
                    self._push({"type": "error", "id": wid, "error": self._error(e)})
            elif kind == "unsubscribe":
                w = self.watches.get(watch_id(msg))
                if w is not None:
                    self.hub.remove(w)
            elif kind == "auth":
                await self.authenticate(msg)
            elif kind == "ping":
                self._push({"type": "pong"})
            else:
                raise InvalidArgument(f"type must be one of: {_TYPES}")
        except MinibaseError as e:
            self.fail(e)
        except Exception:
            log.exception("realtime connection %s failed", self.rid)
            self.fail(Internal())

    def _parse(self, data: str | bytes) -> dict[str, Any]:
        limit = self.hub.limits.max_body
        if len(data) > limit:
            raise InvalidArgument(f"a frame is at most {limit} bytes (limits.max_body)")
        try:
            msg = jsonin.loads(data)
        except orjson.JSONDecodeError:
            raise InvalidArgument("a frame must be a JSON object") from None
        if not isinstance(msg, dict):
            raise InvalidArgument(f"a frame must be a JSON object with a type ({_TYPES})")
        return msg

    async def subscribe(self, msg: dict[str, Any]) -> None:
        """Start a watch (errors raised: SSE answers them as HTTP errors)."""
        await self.hub.open_watch(self, msg)

    async def authenticate(self, msg: Mapping[str, Any]) -> None:
        if self.anonymous:
            raise PermissionDenied(
                "this connection is anonymous (it began with a subscribe): open another to log in"
            )
        sid, headers = msg.get("sessionId"), msg.get("headers")
        expires: float | None = None
        if isinstance(sid, str) and headers is None:
            caller = await self.hub.core.caller_from_session_id(sid)
        elif (
            sid is None
            and isinstance(headers, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            lower = {k.lower(): v for k, v in headers.items()}
            caller, expires = await self.hub.signed_caller(
                "GET", PATH, lower, None, b"", require_body_digest=False
            )
        else:
            raise InvalidArgument(
                "auth needs sessionId (a string) or headers (an object of strings), not both"
            )
        self.adopt(caller, expires)

    def adopt(self, caller: Caller, expires: float | None) -> None:
        """Make the connection ``caller``'s; a later auth must name the same session."""
        if self.caller is not None and caller.session_ref != self.caller.session_ref:
            raise PermissionDenied(
                "auth must name this connection's session: open another connection to switch"
            )
        self.caller, self.expires = caller, expires
        self._push({"type": "authed", "uid": caller.uid, "expires": expires})

    # ----------------------------------------------------------------- output

    def send_changes(self, wid: str, changes: list[dict[str, Any]], init: bool) -> None:
        frame = {"type": "changes", "id": wid, "init": init, "token": self.hub.token(), "docChanges": changes}
        self._push(frame)

    def end_watch(self, w: Watch, e: MinibaseError) -> None:
        if w.ended:
            return
        self.hub.remove(w)
        self._push({"type": "error", "id": w.wid, "error": self._error(e)})

    def _error(self, e: MinibaseError) -> dict[str, Any]:
        body: dict[str, Any] = error_body(e, self.rid)["error"]
        return body

    def _push(self, frame: dict[str, Any]) -> None:
        if self.error is not None:
            return
        if len(self._out) >= MAX_FRAMES or self._size > MAX_BYTES:
            self.fail(
                Unavailable(
                    f"the connection fell behind (over {MAX_FRAMES} frames or {MAX_BYTES >> 20} MiB waiting):"
                    " reconnect and resume"
                )
            )
            return
        data = orjson.dumps(frame)
        self._out.append(data)
        self._size += len(data)
        self._ready.set()

    def fail(self, e: MinibaseError) -> None:
        """End the connection: its watches stop now, frames not yet sent are dropped, and
        the error frame is the last one."""
        if self.error is not None:
            return
        self.error = e
        self.hub.disconnect(self)
        self._out.clear()
        self._out.append(orjson.dumps({"type": "error", "error": self._error(e)}))
        self._size = 0
        self._ready.set()
        self.ended.set()

    async def frames(self) -> AsyncIterator[bytes]:
        """What to send, in order, until the connection ends (its error frame last);
        a heartbeat after :data:`HEARTBEAT` seconds of quiet."""
        while True:
            while self._out:
                data = self._out.popleft()
                self._size = max(0, self._size - len(data))
                yield data
            if self.error is not None:
                return
            self._ready.clear()
            if not await wait_event(self._ready, HEARTBEAT):  # not wait_for: it may drop a cancel
                self._push({"type": "heartbeat", "token": self.hub.token()})
