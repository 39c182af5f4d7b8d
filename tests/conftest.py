from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from minibase.app import create_app
from minibase.client import Client
from minibase.config import Config, parse_config
from minibase.core import Minibase
from tests.live import run_uvicorn
from tests.pg import pg_server, pg_url  # noqa: F401  (fixtures)

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


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def make(raw: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Config:
        return parse_config(
            raw if raw is not None else base_raw(),
            data_dir=tmp_path / "data",
            base_dir=tmp_path,
            environ=environ or {},
        )

    return make


class Clock:
    """A settable clock for expiry tests."""

    def __init__(self) -> None:
        import time

        self.t = time.time()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


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


@pytest.fixture
def live(make_config: Callable[..., Config]) -> Iterator[Live]:
    """A real minibase server on loopback (example-like config, dev login enabled)."""
    config = make_config()
    core = Minibase(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        server = Live(url, core)
        try:
            yield server
        finally:
            for c in server.clients:
                c.close()
