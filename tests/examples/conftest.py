"""Shared by the example tests: paths, node, and a real `minibase serve` of the example."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.server import free_port
from tests.support.examples import ENV, EXAMPLE, MINIBASE, Served


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node (>= 18) is needed for the example tests: apt-get install -y nodejs")
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`minibase serve --config examples/todo/minibase.toml` on a free port and a temp data dir."""
    data = tmp_path_factory.mktemp("todo-data")
    port = free_port()
    proc = subprocess.Popen(
        [*MINIBASE, "serve", "--config", str(EXAMPLE), "--port", str(port), "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                pytest.fail("minibase serve exited:\n" + (proc.stdout.read() if proc.stdout else ""))
            if time.monotonic() > deadline:
                pytest.fail("minibase serve did not answer /healthz within 20 s")
            time.sleep(0.05)
        yield Served(url, data)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
