"""``minibase serve`` against slow clients and forged proxy headers (issue 18, point 9).

Found by a review: slow clients held connections 35 s and more (uvicorn has no limit on how
long a request's headers may take, and the app none on its body), and X-Forwarded-Host/-Proto
were trusted from anyone, so a client chose the host of the signed file URLs it was given.
The server here is the app under uvicorn as ``serve`` configures it (its protocol class,
ForwardedHeaders, no uvicorn proxy handling), with short timeouts, on loopback.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from minibase.app import MinibaseApp, create_app
from minibase.config import Config
from minibase.core import Minibase
from minibase.runtime import serve as serve_mod
from minibase.runtime.coalesced_writes import CoalescedWrites
from minibase.runtime.serve import ForwardedHeaders, header_timeout_protocol

PROTOCOLS = {"h11": H11Protocol, "httptools": HttpToolsProtocol}
SHORT = 1.0  # the header and body timeouts in these tests, seconds


@contextmanager
def serving(app: Any, protocol: type[Any]) -> Iterator[tuple[str, int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
            http=protocol,
            ws="none",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            timeout_keep_alive=30,  # longer than SHORT: the header timeout is what cuts
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.005)
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def new_app(make_config: Callable[..., Config]) -> Callable[[], MinibaseApp]:
    """A fresh app (a server's lifespan closes its store) with the short body timeout."""
    config = make_config()

    def make() -> MinibaseApp:
        minibase_app = create_app(config, core=Minibase.from_config(config))
        minibase_app.body_timeout = SHORT
        return minibase_app

    return make


@pytest.fixture
def app(new_app: Callable[[], MinibaseApp]) -> MinibaseApp:
    return new_app()


def closed_within(s: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed ``s`` within ``seconds`` (and what it sent first)."""
    s.settimeout(0.2)
    got = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def dribble(s: socket.socket, data: bytes, every: float, until: float) -> bool:
    """Send ``data`` a byte at a time; False as soon as the server has closed."""
    end = time.monotonic() + until
    for b in data:
        if time.monotonic() > end:
            return True
        try:
            s.sendall(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            return False
        time.sleep(every)
    return True


@pytest.mark.parametrize("name", PROTOCOLS)
def test_slow_headers_are_cut_off(app: MinibaseApp, name: str) -> None:
    protocol = header_timeout_protocol(PROTOCOLS[name], timeout=SHORT)
    with serving(app, protocol) as addr:
        # A client that never finishes its headers (one byte every 0.2 s, for up to 6 s).
        with socket.create_connection(addr) as s:
            start = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            still_open = dribble(s, b"X-Slow: " + b"a" * 100, 0.2, 6)
            assert not still_open or closed_within(s, 2)[0]
            assert time.monotonic() - start < SHORT + 3
        # An idle connection that never sends a byte is closed too.
        with socket.create_connection(addr) as s:
            assert closed_within(s, SHORT + 2)[0]
        # A normal client is unaffected, keep-alive included.
        with httpx.Client(base_url=f"http://{addr[0]}:{addr[1]}") as http:
            for _ in range(3):
                assert http.get("/healthz").status_code == 200
                time.sleep(SHORT / 2)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_slow_headers_are_not_cut_off_without_it(app: MinibaseApp, name: str) -> None:
    """The control: uvicorn's own protocol keeps such a connection open."""
    with serving(app, PROTOCOLS[name]) as addr, socket.create_connection(addr) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert dribble(s, b"X-Slow: aaaaaaaaaaaaaaa", 0.2, SHORT + 2)
        assert not closed_within(s, 0.5)[0]


def test_endless_headers_are_cut_off(app: MinibaseApp) -> None:
    protocol = header_timeout_protocol(HttpToolsProtocol, timeout=30, max_bytes=16 * 1024)
    with serving(app, protocol) as addr, socket.create_connection(addr) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sent = 0
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(200):
                s.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
                sent += 1
                time.sleep(0.005)
        assert sent < 100


@pytest.mark.parametrize("name", PROTOCOLS)
def test_a_slow_body_is_refused_and_the_connection_closed(app: MinibaseApp, name: str) -> None:
    protocol = header_timeout_protocol(PROTOCOLS[name], timeout=SHORT)
    with serving(app, protocol) as addr, socket.create_connection(addr) as s:
        start = time.monotonic()
        s.sendall(
            b"POST /session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
        )
        dribble(s, b'"authCode": "dev:slow"', 0.3, SHORT + 1)
        closed, answer = closed_within(s, 3)
        assert closed, answer
        assert time.monotonic() - start < SHORT + 5
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), answer
        assert b"connection: close" in head.lower()
        assert b"InvalidArgument" in body and b"did not arrive within 1 s" in body


# ------------------------------------------------------------------ forwarded headers


def _upload_url(base: str, host_headers: dict[str, str]) -> str:
    with httpx.Client(base_url=base) as http:
        sid = http.post("/session", json={"authCode": "dev:alice"}).json()["data"]["sessionId"]
        r = http.post(
            "/invoke/files",
            json={"op": "uploadUrl", "path": "a.txt", "contentType": "text/plain", "size": 1},
            headers={"authorization": f"Bearer {sid}", **host_headers},
        )
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["url"])


FORGED = {"x-forwarded-host": "evil.example", "x-forwarded-proto": "https"}


def test_forwarded_host_is_ignored_from_untrusted_peers(new_app: Callable[[], MinibaseApp]) -> None:
    """The finding: a client's own X-Forwarded-Host chose the host of its signed URLs."""
    # The bare app (as tests and FC's adapter run it), and serve's wrapper trusting a proxy
    # elsewhere.
    for wrapped in (new_app(), ForwardedHeaders(new_app(), "10.1.2.3")):
        with serving(wrapped, header_timeout_protocol(H11Protocol)) as (host, port):
            url = _upload_url(f"http://{host}:{port}", FORGED)
            assert urlsplit(url).netloc == f"{host}:{port}", url
            assert urlsplit(url).scheme == "http", url


def test_forwarded_host_is_honoured_from_a_trusted_proxy(app: MinibaseApp) -> None:
    with serving(ForwardedHeaders(app, "127.0.0.1"), header_timeout_protocol(H11Protocol)) as (host, port):
        url = _upload_url(f"http://{host}:{port}", {**FORGED, "x-forwarded-for": "203.0.113.9"})
        assert urlsplit(url)[:2] == ("https", "evil.example"), url
        # A list or a value with spaces is not a host: the real Host stays.
        url = _upload_url(f"http://{host}:{port}", {"x-forwarded-host": "a b"})
        assert urlsplit(url).netloc == f"{host}:{port}", url


def test_serve_wires_the_timeouts_and_proxy_handling(
    make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    class Server:  # what serve runs, as built (uvicorn's Server, which tells realtime of a stop)
        started = True

        def __init__(self, config: uvicorn.Config) -> None:
            keys = ("proxy_headers", "http", "timeout_keep_alive", "h11_max_incomplete_event_size")
            seen.update(app=config.app, **{k: getattr(config, k) for k in keys})
            seen["timeout_graceful_shutdown"] = config.timeout_graceful_shutdown

        def run(self) -> None:
            pass

    monkeypatch.setattr(serve_mod, "_server", lambda config, app: Server(config))
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    serve_mod.serve(make_config())
    assert isinstance(seen["app"], ForwardedHeaders)
    assert "127.0.0.1" in seen["app"].trusted and "::1" in seen["app"].trusted
    assert "10.0.0.1" not in seen["app"].trusted
    assert seen["proxy_headers"] is False
    assert issubclass(seen["http"], HttpToolsProtocol) and hasattr(seen["http"], "_expired")
    assert issubclass(seen["http"], CoalescedWrites)
    assert seen["timeout_keep_alive"] == serve_mod.KEEP_ALIVE
    assert seen["h11_max_incomplete_event_size"] == serve_mod.MAX_HEADER_BYTES
    assert seen["timeout_graceful_shutdown"] == serve_mod.GRACEFUL_TIMEOUT
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1")
    serve_mod.serve(make_config())
    assert "10.0.0.1" in seen["app"].trusted and "127.0.0.1" not in seen["app"].trusted


@pytest.mark.parametrize("value", ["0", "-1", "two", "1025"])
def test_workers_must_be_a_positive_count(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from minibase.cli import main

    with pytest.raises(SystemExit) as e:
        main(["serve", "--workers", value])
    assert e.value.code == 2
    assert "--workers: expected a whole number from 1 to 1024" in capsys.readouterr().err


def test_workers_default_to_the_cpus(
    monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]
) -> None:
    import minibase.cli as cli

    seen: list[int] = []
    monkeypatch.setattr(cli, "_config", lambda args: make_config())
    monkeypatch.setattr(
        serve_mod, "serve", lambda config, host, port, level, workers: seen.append(workers) or 0
    )
    assert cli.main(["serve"]) == 0 and cli.main(["serve", "--workers", "1"]) == 0
    assert seen == [len(os.sched_getaffinity(0)), 1]
