from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from minibase.app import create_app
from minibase.config import Config, parse_config
from minibase.core import Minibase
from tests.fakes.s3server import SigV4Gateway, s3_server
from tests.support.config import Clock, Live, base_raw
from tests.support.http import share_ssl_context
from tests.support.live import run_uvicorn
from tests.support.pg import pg_server, pg_url  # noqa: F401  (fixtures)


def pytest_configure(config: pytest.Config) -> None:
    share_ssl_context()


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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def live(make_config: Callable[..., Config]) -> Iterator[Live]:
    """A real minibase server on loopback (example-like config, dev login enabled)."""
    config = make_config()
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        server = Live(url, core)
        try:
            yield server
        finally:
            for c in server.clients:
                c.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[tuple[str, SigV4Gateway]]:
    """One S3 fake per session (moto behind the SigV4-checking gateway): files and backups."""
    with s3_server() as pair:
        yield pair
