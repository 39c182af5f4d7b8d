"""Writes held to the end of the event loop's step and sent together (one ``writev``).

uvicorn writes a response's head as soon as the app sends ``http.response.start`` and its
body when the body comes, so a small JSON answer went out as two TCP segments. Measured on
loopback under wrk (bench/README.md, "one write per response"): each segment wakes the
client again, and that wake-up cost the server about 20 µs of kernel time per request,
more than a third of a `db get`. Held to the end of the step, head and body leave in one
segment, and so do the answers of pipelined requests.

Leaf module: imports nothing of ours.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["FLUSH_AT", "CoalescedWrites", "CoalescingTransport"]

FLUSH_AT = 64 * 1024  # bytes held at most: a bigger write flushes at once (flow control sees it)


class CoalescingTransport(asyncio.Transport):
    """``transport`` with writes held until the loop's next step, or :data:`FLUSH_AT` bytes."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes | bytearray | memoryview] | None = None
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not isinstance(data, bytes):
            data = bytes(data)  # the caller may reuse its buffer once write returns
        held = self._held
        if held is None:
            self._held = [data]
            self._held_bytes = len(data)
            self._loop.call_soon(self.flush)
        else:
            held.append(data)
            self._held_bytes += len(data)
        if self._held_bytes >= FLUSH_AT:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held now (a no-op when nothing is)."""
        held = self._held
        if held is None:
            return
        self._held = None
        self._held_bytes = 0
        if self._transport.is_closing():
            return  # the peer went away meanwhile: the transport would drop it too (uvloop raises)
        if len(held) == 1:
            self._transport.write(held[0])
        else:
            self._transport.writelines(held)

    def close(self) -> None:
        self.flush()  # what was written before close still goes, as with the transport itself
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._held_bytes = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self._transport.get_write_buffer_size()

    # The rest as the transport has it.
    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


class CoalescedWrites:
    """Mixed in before an asyncio protocol class (uvicorn's h11 or httptools protocol): the
    protocol, and any protocol it hands the connection to (a WebSocket upgrade), writes
    through a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        super().connection_made(CoalescingTransport(transport, loop))  # type: ignore[misc]
