"""Helpers for the tests (moved out of tests/conftest.py: conftest files hold fixtures only)."""

from __future__ import annotations

from typing import Any

from minibase.client import Client
from minibase.core import Minibase

SERVICE = "todo-list-svc"


SECRET = "test-secret-0123456789-abcdefghijklmnop"


RATE_LIMIT_KEYS = ("login_per_ip", "login_per_subject", "calls_per_user", "calls_per_ip")


def base_raw(**sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "app": {"name": "todo", "service": SERVICE, "default_collection": "todo_list", "secret": SECRET},
        "auth": {"dev": {"enabled": True}},
        # Off unless a test is about them: suites make hundreds of calls a second as one user.
        "rate_limits": {k: "off" for k in RATE_LIMIT_KEYS},
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **value}
        else:
            raw[name] = value
    return raw


class Clock:
    """A settable clock for expiry tests."""

    def __init__(self) -> None:
        import time

        self.t = time.time()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Live:
    def __init__(self, url: str, core: Minibase) -> None:
        self.url = url
        self.core = core
        self.clients: list[Client] = []

    def client(self, code: str | None = None) -> Client:
        c = Client(self.url, SERVICE)
        self.clients.append(c)
        if code:
            c.login(auth_code=code)
        return c
