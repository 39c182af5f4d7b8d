"""Run minibase's ASGI app under real uvicorn on loopback, lifespan and all, with ``serve``'s protocol."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from minibase.runtime.serve import serve_protocol


@contextmanager
def run_uvicorn(
    app: ASGIApp, *, lifespan: str = "on", startup_timeout: float = 10.0, ws: str = "none"
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port in a thread; yields the base URL. ``ws``:
    uvicorn's WebSocket implementation ("websockets" for realtime tests)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan=lifespan,
            loop="auto",  # uvloop: the asyncio loop in a non-main thread adds ~40 ms per request here
            # serve's: httptools (the h11 parser cost the suite more CPU than the fakes themselves),
            # the header timeout and coalesced writes, so every live test runs over them.
            http=serve_protocol(),
            ws=ws,  # type: ignore[arg-type]
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        if thread.is_alive():  # pragma: no cover - only when a handler hangs
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
