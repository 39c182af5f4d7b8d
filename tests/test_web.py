"""The ``[app] web`` folder serves the web app and nothing else (issue 18, point 4).

Found by a review: with ``web = "."`` and the default data dir, ``/data/secret.key``,
``/data/minibase.db`` and ``/minibase.toml`` answered 200; with a normal config, dotfiles
(``/.env``, ``/.git/config``) were served and symlinks followed out of the folder.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from minibase.app import create_app
from minibase.config import DEFAULT_CSP, Config, load_config, parse_config
from minibase.core import Minibase
from minibase.errors import ConfigError
from tests.support.config import base_raw
from tests.support.live import run_uvicorn

SECRET = "TOP-SECRET-do-not-serve"


def _toml(path: Path, web: str, extra: str = "") -> Path:
    path.write_text(
        f'[app]\nname = "todo"\nservice = "svc"\nweb = "{web}"\n{extra}\n[auth.dev]\nenabled = true\n'
    )
    return path


# ------------------------------------------------------------------ config time


def test_web_dot_with_default_data_dir_is_refused(tmp_path: Path) -> None:
    """The finding itself: the project folder as the web folder would serve data/ and the
    config (the data dir defaults to ./data beside the config)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret.key").write_text(SECRET)
    with pytest.raises(ConfigError) as e:
        load_config(_toml(tmp_path / "minibase.toml", "."))
    assert e.value.key == "app.web"
    assert "data dir" in str(e.value)


@pytest.mark.parametrize(
    ("web", "data", "extra", "what"),
    [
        ("data", "data", "", "data dir"),  # is the data dir
        ("data/public", "data", "", "data dir"),  # inside it
        ("site", "site/data", "", "data dir"),  # holds it
        (
            "site",
            "data",
            '[files]\nurl = "file://{root}/site/uploads"\n',
            "files root",
        ),  # holds the files root
        ("uploads/web", "data", '[files]\nurl = "file://{root}/uploads"\n', "files root"),  # inside it
        ("site", "data", '[database]\nurl = "sqlite:///{root}/site/app.db"\n', "SQLite database"),
        ("conf", "data", "", "config file"),  # the config file lives in conf/
    ],
)
def test_web_overlapping_secrets_is_refused(
    tmp_path: Path, web: str, data: str, extra: str, what: str
) -> None:
    for d in ("data", "site", "conf", "uploads/web", "site/data", "data/public"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    folder = tmp_path / "conf" if web == "conf" else tmp_path
    config_file = _toml(folder / "minibase.toml", str(tmp_path / web), extra.format(root=tmp_path))
    with pytest.raises(ConfigError) as e:
        load_config(config_file, data_dir=tmp_path / data)
    assert e.value.key == "app.web"
    assert what in str(e.value), str(e.value)


def test_web_through_a_symlink_to_the_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "site").symlink_to(tmp_path / "data")
    with pytest.raises(ConfigError):
        load_config(_toml(tmp_path / "minibase.toml", "site"))


def test_login_key_file_inside_web_is_refused(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    for name in ("app.pem", "alipay.pem"):
        (tmp_path / "web" / name).write_text("-----BEGIN PRIVATE KEY-----\n")
    extra = (
        '[auth.alipay]\napp_id = "2021000000000000"\n'
        f'private_key_file = "{tmp_path}/web/app.pem"\nalipay_public_key_file = "{tmp_path}/web/alipay.pem"\n'
    )
    with pytest.raises(ConfigError) as e:
        load_config(_toml(tmp_path / "minibase.toml", "web", extra))
    assert "auth.alipay" in str(e.value)


def test_a_separate_web_folder_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    config = load_config(_toml(tmp_path / "minibase.toml", "web"))
    assert config.app.web == tmp_path / "web"
    assert config.app.csp == DEFAULT_CSP


@pytest.mark.parametrize(
    "csp", ["default-src 'self'\nX-Evil: 1", "", "a" * 5000, "default-src 'self'\r; img-src *"]
)
def test_bad_csp_is_refused(tmp_path: Path, csp: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(base_raw(app={"csp": csp}), data_dir=tmp_path / "data", base_dir=tmp_path, environ={})
    assert e.value.key == "app.csp"


# ------------------------------------------------------------------ over HTTP


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A web folder with the traps the review found, next to a secret outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>app</title>")
    (web / "app.js").write_text("export const x = 1\n")
    (web / ".env").write_text(f"KEY={SECRET}\n")
    (web / ".git").mkdir()
    (web / ".git" / "config").write_text(f"[remote]\nurl = {SECRET}\n")
    (web / "sub" / ".hidden").write_text(SECRET)
    (web / ".well-hidden").mkdir()
    (web / ".well-hidden" / "index.html").write_text(SECRET)
    (web / "out.txt").symlink_to(outside / "secret.txt")
    (web / "outdir").symlink_to(outside)
    (web / "dotlink.txt").symlink_to(web / ".env")
    (web / "inlink.js").symlink_to(web / "app.js")  # inside the folder: fine
    return web


def _serve(tmp_path: Path, web: Path, **app: Any) -> Iterator[str]:
    config: Config = parse_config(
        base_raw(app={"web": str(web), **app}), data_dir=tmp_path / "data", base_dir=tmp_path, environ={}
    )
    with run_uvicorn(create_app(config, core=Minibase.from_config(config))) as url:
        yield url


@pytest.fixture
def url(tmp_path: Path, site: Path) -> Iterator[str]:
    yield from _serve(tmp_path, site)


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (no client-side normalisation)."""
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/.env",
        "/.git/config",
        "/sub/.hidden",
        "/.well-hidden/",
        "/.well-hidden/index.html",
        "/%2Eenv",
        "/%2egit/config",
        "/sub/../.env",
        "/sub/%2E%2E/.env",
        "/./.env",
        "//.env",
        "/sub/..%2F.env",
        "/out.txt",
        "/outdir/secret.txt",
        "/dotlink.txt",
        "/../outside/secret.txt",
        "/%2E%2E/outside/secret.txt",
        "/..%2Foutside%2Fsecret.txt",
    ],
)
def test_hidden_and_outside_files_are_not_served(url: str, target: str) -> None:
    status, body = raw_get(url, target)
    assert status in (400, 404), (target, status, body[:200])
    assert SECRET.encode() not in body


def test_the_web_app_is_served_with_security_headers(url: str) -> None:
    with httpx.Client(base_url=url) as http:
        for path in ("/", "/index.html", "/app.js", "/inlink.js"):
            resp = http.get(path)
            assert resp.status_code == 200, path
            assert resp.headers["x-content-type-options"] == "nosniff"
            assert resp.headers["content-security-policy"] == DEFAULT_CSP
            assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
        assert http.get("/inlink.js").text == "export const x = 1\n"
        # The API is untouched by the mount.
        assert http.get("/healthz").json() == {"data": {"ok": True}}


def test_csp_is_configurable(tmp_path: Path, site: Path) -> None:
    csp = "default-src 'self' https://cdn.example.com"
    for base in _serve(tmp_path, site, csp=csp):
        resp = httpx.get(base + "/")
        # Framing stays refused unless the policy names frame-ancestors itself.
        assert resp.headers["content-security-policy"] == csp + "; frame-ancestors 'none'"
    csp2 = "default-src 'self'; frame-ancestors https://portal.example.com"
    for base in _serve(tmp_path, site, csp=csp2):
        assert httpx.get(base + "/").headers["content-security-policy"] == csp2


def test_the_example_serves_no_symlink(tmp_path: Path) -> None:
    """The example's web folder is served as is: no symlink (the SDK is a copy)."""
    root = Path(__file__).resolve().parents[1] / "examples" / "todo" / "web"
    links = [str(p) for p in root.rglob("*") if p.is_symlink()]
    assert links == []
    assert os.path.isfile(root / "sdk" / "index.js")
