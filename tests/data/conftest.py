"""One parametrized fixture runs the data suite on every backend, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from minibase.app import create_app
from minibase.config import Config
from minibase.core import Minibase
from tests.conftest import Live, base_raw
from tests.live import run_uvicorn

BACKENDS = ["sqlite", "postgres"]

COLLECTIONS: dict[str, Any] = {
    "todo_list": {"indexes": [["done", "n"]]},
    "notes": {"read": "public", "write": "owner"},
    "board": {
        "read": "authenticated",
        "create": "authenticated",
        "update": "doc.uid == auth.uid || auth.uid in doc.editors",
        "delete": "owner",
    },
    "shared": {"read": "doc.uid == auth.uid || doc.shared == true", "write": "owner"},
    "locked": {"read": "none", "write": "none"},
    "typed": {
        "schema": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "maxLength": 20},
                "n": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["title"],
        }
    },
}


def data_config(make_config: Callable[..., Config], backend: str, pg_url: str | None, **extra: Any) -> Config:
    collections = {**COLLECTIONS, **extra}
    database = {"url": pg_url} if backend == "postgres" else {"url": "sqlite:///minibase.db"}
    return make_config(base_raw(collections=collections, database=database))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """A fresh PostgreSQL database for the postgres param (the server starts on first use)."""
    if backend != "postgres":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def data_live(make_config: Callable[..., Config], backend: str, db_url: str | None) -> Iterator[Live]:
    config = data_config(make_config, backend, db_url)
    core = Minibase(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        server = Live(url, core)
        try:
            yield server
        finally:
            for c in server.clients:
                c.close()
