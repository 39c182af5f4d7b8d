"""The example mini-programs' page logic against a real server.

miniprogram_sim.cjs loads each app's own app.js, pages and vendored SDK in Node with a
fake `my` / `wx` (real HTTP requests, in-memory storage) and walks the seed's flow: the
platform login refused with a message, the dev login, add two todos on the add-todo
page, toggle one, delete one, clear completed, and a refused change shown as a message.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.examples.conftest import ROOT, TODO, Served

SIM = ROOT / "tests" / "examples" / "miniprogram_sim.cjs"


@pytest.mark.parametrize("platform", ["alipay", "wechat"])
def test_miniprogram_pages_against_the_server(platform: str, node: str, served: Served) -> None:
    out = subprocess.run(
        [node, str(SIM), str(TODO / platform), served.url, platform],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert f"{platform}: ok" in out.stdout
