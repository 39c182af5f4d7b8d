"""Helpers for the tests (moved out of tests/fc_sdks/conftest.py: conftest files hold fixtures only)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support.config import SERVICE

__all__ = ["SERVICE", "Seen", "Server"]


@dataclass
class Seen:
    """One request as it reached the server (the SDK's own headers and body)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


class Recorder:
    """Passes everything to the app; keeps each HTTP request's headers and body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[Seen] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        seen = Seen(
            scope["method"],
            scope["path"],
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        )
        self.seen.append(seen)

        async def recorded() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen.body += message.get("body", b"")
            return message

        await self.app(scope, recorded, send)


@dataclass
class Server:
    url: str
    seen: list[Seen]

    def invocations(self, function: str) -> list[Seen]:
        path = f"/2016-08-15/services/{SERVICE}/functions/{function}/invocations"
        return [s for s in self.seen if s.path == path]
