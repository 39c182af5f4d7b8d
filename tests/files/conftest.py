"""One parametrized fixture runs the file suite on every backend, over real HTTP.

``local``: a LocalFileStore in the test's data dir, its ``/files`` routes served by
uvicorn on loopback. ``s3``: moto's standalone S3 server (a subprocess, started once per
session) behind a gateway that checks presigned URLs as S3 does (``s3server.py``), a
fresh bucket per test, dummy credentials passed through the config's ``env:`` values."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from minibase.config import Config
from minibase.files import build_file_store
from tests.fakes.s3server import REGION
from tests.support.config import SECRET
from tests.support.files import BACKENDS, FILES, files_config, local_env, make_bucket
from tests.support.files_harness import FilesEnv


@pytest.fixture(params=BACKENDS)
def files_backend(request: pytest.FixtureRequest, make_config: Callable[..., Config]) -> Iterator[FilesEnv]:
    backend = str(request.param)
    if backend == "local":
        with local_env(files_config(make_config, "file://files")) as env:
            yield env
        return
    endpoint, gateway = request.getfixturevalue("s3_endpoint")
    gateway.offset = 0.0
    public = [a["prefix"] for a in FILES["areas"].values() if a["read"] == "public"]
    bucket = make_bucket(endpoint, public)
    config = files_config(make_config, f"s3://{bucket}?endpoint={endpoint}&region={REGION}&path_style=true")

    def gateway_time(seconds: float) -> None:
        gateway.offset += seconds

    env = FilesEnv(backend, endpoint, config, build_file_store(config, [SECRET]), gateway_time)
    try:
        yield env
    finally:
        env.close()
        gateway.offset = 0.0


@pytest.fixture
def local_files(make_config: Callable[..., Config]) -> Iterator[FilesEnv]:
    """The local backend alone (for tests of the /files routes themselves)."""
    with local_env(files_config(make_config, "file://files")) as env:
        yield env
