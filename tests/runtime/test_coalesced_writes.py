"""Writes held to the end of the loop's step: one segment per small response, nothing lost.

The end-to-end test counts the TCP segments that carried data to the client (``tcp_info``'s
``tcpi_data_segs_in``, Linux): uvicorn's own protocol sends a response in two, the one
``serve`` uses in one.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from minibase.app import MinibaseApp, create_app
from minibase.config import Config
from minibase.core import Minibase
from minibase.runtime.coalesced_writes import FLUSH_AT, CoalescingTransport
from minibase.runtime.serve import serve_protocol

from .test_serve import serving


class Recording(asyncio.Transport):
    """A transport that records the calls made on it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(("writelines", [bytes(d) for d in list_of_data]))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)

    def pause_reading(self) -> None:
        self.calls.append(("pause_reading", None))


def run(body: Any) -> Any:
    async def main() -> Any:
        return await body(asyncio.get_running_loop())

    return asyncio.run(main())


def test_writes_of_one_step_go_out_together_in_order() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> list[tuple[str, Any]]:
        inner = Recording()
        t = CoalescingTransport(inner, loop)
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")  # nothing to send: not held, not sent
        t.writelines([b"{", bytearray(b'"a":1'), memoryview(b"}")])
        assert inner.calls == []  # held until the step ends
        assert t.get_write_buffer_size() == 19 + 7 + 7
        await asyncio.sleep(0)
        assert t.get_write_buffer_size() == 7  # the inner transport's own
        t.write(b"next")
        await asyncio.sleep(0)
        return inner.calls

    assert run(body) == [
        ("writelines", [b"HTTP/1.1 200 OK\r\n\r\n", b"{", b'"a":1', b"}"]),
        ("write", b"next"),
    ]


def test_close_and_eof_send_what_is_held_first_and_abort_drops_it() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> list[tuple[str, Any]]:
        inner = Recording()
        t = CoalescingTransport(inner, loop)
        t.write(b"a")
        t.write_eof()
        t.write(b"b")
        t.close()
        t.write(b"dropped")
        t.abort()
        await asyncio.sleep(0)  # the scheduled flushes find nothing
        return inner.calls

    assert run(body) == [
        ("write", b"a"),
        ("write_eof", None),
        ("write", b"b"),
        ("close", None),
        ("abort", None),
    ]


def test_a_buffer_reused_after_write_does_not_change_what_is_sent() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> list[tuple[str, Any]]:
        inner = Recording()
        t = CoalescingTransport(inner, loop)
        buf = bytearray(b"first")
        t.write(buf)
        buf[:] = b"later"
        t.write(memoryview(buf))
        await asyncio.sleep(0)
        return inner.calls

    assert run(body) == [("writelines", [b"first", b"later"])]


def test_what_is_held_when_the_connection_goes_is_dropped() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> list[tuple[str, Any]]:
        inner = Recording()
        t = CoalescingTransport(inner, loop)
        t.write(b"answer")
        inner.closing = True  # the peer went away before the step ended
        await asyncio.sleep(0)
        return inner.calls

    assert run(body) == []


def test_a_big_write_is_not_held() -> None:
    """Held bytes are bounded, so flow control (the transport's own buffer) still works."""

    async def body(loop: asyncio.AbstractEventLoop) -> list[tuple[str, Any]]:
        inner = Recording()
        t = CoalescingTransport(inner, loop)
        t.write(b"head")
        t.write(b"x" * FLUSH_AT)
        sent = list(inner.calls)
        await asyncio.sleep(0)
        return sent

    assert run(body) == [("writelines", [b"head", b"x" * FLUSH_AT])]


def test_the_rest_is_the_transports() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        inner = Recording()
        t = CoalescingTransport(inner, loop)
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)
        assert t.get_extra_info("sockname", "none") == "none"
        t.pause_reading()
        assert inner.calls == [("pause_reading", None)]
        assert not t.is_closing()
        t.close()
        assert t.is_closing()

    run(body)


@pytest.fixture
def app(make_config: Callable[..., Config]) -> MinibaseApp:
    config = make_config()
    return create_app(config, core=Minibase.from_config(config))


def data_segments_in(s: socket.socket) -> int:
    # struct tcp_info (linux/tcp.h): tcpi_data_segs_in is the u32 at byte 152
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, 152)[0])


def segments_of_one_response(port: int) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got or not got.endswith(b"}"):
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        return data_segments_in(s), got


@pytest.mark.skipif(sys.platform != "linux", reason="tcp_info's data segment count is Linux's")
@pytest.mark.parametrize(("protocol", "segments"), [(serve_protocol, 1), (lambda: HttpToolsProtocol, 2)])
def test_a_response_leaves_in_one_segment(app: MinibaseApp, protocol: Any, segments: int) -> None:
    """``serve``'s protocol: head and body in one segment. uvicorn's own (the control, which
    shows the count can tell them apart): two."""
    with serving(app, protocol()) as (_, port):
        for _ in range(3):
            count, answer = segments_of_one_response(port)
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"data":{"ok":true}}')
            assert count == segments
