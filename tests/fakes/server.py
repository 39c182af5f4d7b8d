"""Run an ASGI app under a real uvicorn server in a background thread, for tests that must
go over real HTTP (timeouts, closed ports, exact bytes on the wire)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from tests.support.live import run_uvicorn

__all__ = ["RecordedRequest", "free_port", "record", "serve_app", "wait_or_disconnect"]


@contextmanager
def serve_app(app: ASGIApp, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port; yields the base URL (no trailing slash)."""
    with run_uvicorn(app, lifespan="off", startup_timeout=startup_timeout) as url:
        yield url


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class RecordedRequest:
    """What a fake received, for tests to assert on."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None


async def record(request: Request) -> RecordedRequest:
    body = await request.body()
    return RecordedRequest(
        method=request.method,
        path=request.url.path,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )


async def wait_or_disconnect(request: Request, seconds: float) -> None:
    """Sleep up to ``seconds``, returning early once the client hung up, so a slow fake
    never holds up server shutdown after the client gave up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.02)
