"""One parametrized fixture runs the data suite on every backend, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from minibase.app import create_app
from minibase.config import Config
from minibase.core import Minibase
from tests.fakes.tablestore_server import FakeTableStore, run_fake_tablestore
from tests.support.config import Live
from tests.support.data import (
    BACKENDS,
    OTS_KEY_ID,
    OTS_SECRET,
    OTS_TOKEN,
    data_config,
    tablestore_url,
)
from tests.support.live import run_uvicorn


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def fake_tablestore() -> Iterator[tuple[FakeTableStore, str]]:
    """One fake TableStore server for the session; tests each take a fresh instance."""
    fake = FakeTableStore(OTS_KEY_ID, OTS_SECRET, OTS_TOKEN)
    with run_fake_tablestore(fake) as endpoint:
        yield fake, endpoint


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """A fresh database for the postgres param (the server starts on first use) or a fresh
    instance of the fake TableStore for the tablestore param; None for sqlite."""
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    if backend == "tablestore":
        fake, endpoint = request.getfixturevalue("fake_tablestore")
        return tablestore_url(fake, endpoint)
    return None


@pytest.fixture
def data_live(make_config: Callable[..., Config], backend: str, db_url: str | None) -> Iterator[Live]:
    config = data_config(make_config, backend, db_url)
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        server = Live(url, core)
        try:
            yield server
        finally:
            for c in server.clients:
                c.close()
