"""Files, the web folder and CORS through the real app over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from minibase.app import create_app
from minibase.client import ClientError
from minibase.config import Config
from minibase.core import Minibase
from tests.support.config import Live, base_raw
from tests.support.files_harness import roundtrip, send_upload
from tests.support.live import run_uvicorn


def test_files_end_to_end(live: Live) -> None:
    alice, bob = live.client("dev:alice"), live.client("dev:bob")
    info, download = roundtrip(
        lambda ev: alice.invoke("files", ev)["data"], "todos/a/pic.png", b"\x89PNG-bytes", "image/png"
    )
    assert info["size"] == 10 and info["contentType"] == "image/png" and download.content == b"\x89PNG-bytes"
    assert download.headers["content-type"] == "image/png"
    assert [f["path"] for f in alice.files.list()["data"]] == ["todos/a/pic.png"]
    # Bob's "todos/a/pic.png" is his own path: alice's file is not there.
    assert bob.files.stat("todos/a/pic.png") is None
    with pytest.raises(ClientError) as e:
        bob.files.download_url(f"users/{alice.uid}/todos/a/pic.png")
    assert e.value.code == "PermissionDenied"
    # The signed URL is bound to its content type.
    grant = alice.files.upload_url("x.txt", "text/plain", 3)
    r = send_upload(grant, b"abc", headers={"content-type": "text/html"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "PermissionDenied"
    alice.files.remove("todos/a/pic.png")
    assert alice.files.stat("todos/a/pic.png") is None
    # Anonymous callers have no area of their own.
    r = httpx.post(live.url + "/invoke/files", json={"op": "stat", "path": "a"})
    assert r.status_code == 401


def test_web_folder_and_cors(tmp_path: Path, make_config: Callable[..., Config]) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<h1>todo</h1>")
    (web / "app.js").write_text("export {}")
    config = make_config(base_raw(app={"web": str(web), "cors_origins": ["https://shop.example"]}))
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        assert "<h1>todo</h1>" in httpx.get(url + "/").text
        assert (
            httpx.get(url + "/app.js")
            .headers["content-type"]
            .startswith(("text/javascript", "application/javascript"))
        )
        assert httpx.get(url + "/healthz").json() == {"data": {"ok": True}}  # API routes win
        pre = httpx.options(
            url + "/invoke/db",
            headers={
                "origin": "https://shop.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization",
            },
        )
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "https://shop.example"
        assert "x-fc-date" in pre.headers["access-control-allow-headers"]
        r = httpx.post(
            url + "/session", json={"authCode": "dev:a"}, headers={"origin": "https://shop.example"}
        )
        assert r.headers["access-control-allow-origin"] == "https://shop.example"
        assert "x-fc-request-id" in r.headers["access-control-expose-headers"]
        other = httpx.post(
            url + "/session", json={"authCode": "dev:a"}, headers={"origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
    bad = base_raw(app={"cors_origins": ["shop.example"]})
    from minibase.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        make_config(bad)
    assert e.value.key == "app.cors_origins"
