"""A real minibase server on loopback for FC's own SDKs, recording what each request carried."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from minibase.app import create_app
from minibase.config import Config
from tests.support.fc_sdks import Recorder, Server
from tests.support.live import run_uvicorn


@pytest.fixture
def server(make_config: Callable[..., Config]) -> Iterator[Server]:
    """The test config (the template's service name, dev login) served by uvicorn."""
    recorder = Recorder(create_app(make_config()))
    with run_uvicorn(recorder) as url:
        yield Server(url, recorder.seen)
