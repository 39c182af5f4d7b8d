"""The local backend's ``/files/...`` routes: signatures, streaming, atomic writes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from minibase.config import Config
from minibase.errors import Internal, PermissionDenied
from minibase.files import LocalFilesApp, LocalFileStore
from minibase.util.record import replace
from tests.support.config import SECRET
from tests.support.files import files_config, local_env
from tests.support.files_harness import FilesEnv, caller, roundtrip, send_upload

ALICE = "u_alice000000000000000"


def _root(env: FilesEnv) -> Path:
    root = env.config.files_root
    assert root is not None
    return root


def _temps(root: Path) -> list[Path]:
    return list(root.rglob(".~mb-tmp-*"))


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_refusals_use_the_error_envelope(local_files: FilesEnv) -> None:
    env = local_files
    grant = env.call(ALICE, "uploadUrl", path="a.txt", contentType="text/plain", size=2)
    r = send_upload(grant, b"ab", headers={"Content-Type": "text/html"})
    assert r.status_code == 403
    body = r.json()["error"]
    assert body["code"] == "PermissionDenied" and "Content-Type" in body["message"] and body["requestId"]
    r = env.http.put(grant["url"].split("?")[0], content=b"ab", headers=grant["headers"])
    assert (
        r.status_code == 403
        and r.json()["error"]["message"] == "the signed URL's Expires is missing or malformed"
    )
    env.pass_time(3600)
    r = send_upload(grant, b"ab")
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]


def test_methods_and_unknown_paths(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "a.txt", b"ab").status_code == 200
    url = env.call(ALICE, "downloadUrl", path="a.txt")["url"]
    r = env.http.delete(url)
    assert r.status_code == 405 and r.headers["allow"] == "PUT, POST, GET, HEAD"
    assert r.json()["error"]["code"] == "MethodNotAllowed"
    for path in ("/files/", "/files/a//b", "/files/users/%2e%2e/x", "/files/.~mb-lock"):
        r = env.http.get(env.url + path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "NotFound"
    assert env.http.get(env.url + "/other").status_code == 404


def test_get_head_and_caching_headers(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "pic.png", b"PNGDATA", "image/png").status_code == 200
    url = env.call(ALICE, "downloadUrl", path="pic.png")["url"]
    r = env.http.get(url)
    assert r.status_code == 200 and r.content == b"PNGDATA"
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-length"] == "7"
    assert r.headers["cache-control"].startswith("private, max-age=")
    assert 800 < int(r.headers["cache-control"].rsplit("=", 1)[1]) <= 900
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["last-modified"].endswith("GMT")
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34  # the md5
    h = env.http.head(url)
    assert h.status_code == 200 and h.content == b"" and h.headers["content-length"] == "7"
    assert h.headers["etag"] == etag
    r304 = env.http.get(url, headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b""
    assert env.http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_etag_is_the_md5_like_s3(local_files: FilesEnv) -> None:
    env = local_files
    body = os.urandom(1000)
    r = env.upload(ALICE, "r.bin", body, "application/octet-stream")
    assert r.headers["etag"] == f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'


def test_large_file_streams_both_ways(make_config: Callable[..., Config]) -> None:
    config = files_config(make_config, "file://files", max_size="8MiB")
    with local_env(config) as env:
        body = os.urandom(5 * 1024 * 1024 + 123)
        grant = env.call(
            ALICE, "uploadUrl", path="big.bin", contentType="application/octet-stream", size=len(body)
        )
        chunks = (body[i : i + 100_000] for i in range(0, len(body), 100_000))
        assert send_upload(grant, chunks).status_code == 200  # chunked transfer encoding
        got = env.download(ALICE, "big.bin")
        assert got.content == body
        assert not _temps(_root(env))


def test_oversize_body_is_cut_off_mid_stream(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "keep.bin", b"old", "application/octet-stream").status_code == 200
    grant = env.call(ALICE, "uploadUrl", path="keep.bin", contentType="application/octet-stream", size=1000)
    # No Content-Length (chunked): refused once more than the signed size has arrived.
    r = send_upload(grant, (b"x" * 400 for _ in range(3)))
    assert r.status_code == 413 and r.json()["error"]["code"] == "PayloadTooLarge"
    # Declared up front: refused before reading the body.
    r = send_upload(grant, b"x" * 1001)
    assert r.status_code == 413
    r = send_upload(grant, (b"x" * 100 for _ in range(3)))  # short
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidArgument"
    assert env.download(ALICE, "keep.bin").content == b"old"
    _wait_for(lambda: not _temps(_root(env)))


def test_an_interrupted_upload_leaves_no_half_file(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "doc.txt", b"version 1").status_code == 200
    grant = env.call(ALICE, "uploadUrl", path="doc.txt", contentType="text/plain", size=60_000)
    url = urlsplit(grant["url"])
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80))
    try:
        sock.sendall(
            (
                f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "Content-Type: text/plain\r\nContent-Length: 60000\r\n\r\n"
            ).encode()
            + b"y" * 40_000
        )
        root = _root(env)
        _wait_for(lambda: bool(_temps(root)))  # the body is landing in a temp file...
        # ...while readers still get the old version, and listings don't show the temp file.
        assert env.download(ALICE, "doc.txt").content == b"version 1"
        assert [f["path"] for f in env.call(ALICE, "list")["data"]] == ["doc.txt"]
    finally:
        sock.close()  # the client dies mid-upload
    _wait_for(lambda: not _temps(root))
    assert env.download(ALICE, "doc.txt").content == b"version 1"
    assert env.call(ALICE, "stat", path="doc.txt")["size"] == 9


def test_concurrent_uploads_to_one_path_stay_consistent(local_files: FilesEnv) -> None:
    env = local_files
    bodies = {f"text/x-{i}": bytes([65 + i]) * (1000 + i) for i in range(6)}
    grants = {
        ct: env.call(ALICE, "uploadUrl", path="race.txt", contentType=ct, size=len(b))
        for ct, b in bodies.items()
    }
    barrier = threading.Barrier(len(grants))
    results: list[int] = []

    def put(ct: str) -> None:
        barrier.wait()
        with httpx.Client(timeout=30) as c:
            results.append(send_upload(grants[ct], bodies[ct], client=c).status_code)

    threads = [threading.Thread(target=put, args=(ct,)) for ct in grants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * len(grants)
    stat = env.call(ALICE, "stat", path="race.txt")
    got = env.download(ALICE, "race.txt")
    assert bodies[stat["contentType"]] == got.content  # metadata and bytes from one upload
    assert got.headers["content-type"] == stat["contentType"]


def test_file_and_folder_of_one_name_conflict(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "a", b"file").status_code == 200
    r = env.upload(ALICE, "a/b.txt", b"inside")
    assert r.status_code == 409 and r.json()["error"]["code"] == "Conflict"
    assert env.upload(ALICE, "c/d.txt", b"inside").status_code == 200
    assert env.upload(ALICE, "c", b"file").status_code == 409
    assert env.call(ALICE, "stat", path="c") is None  # a folder is not a file


def test_metadata_from_before_a_crash_is_not_trusted(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "p.png", b"PNG", "image/png").status_code == 200
    blob = _root(env) / "users" / ALICE / "p.png"
    # As if the process died between renaming the bytes and renaming their metadata.
    tmp = blob.with_name("replacement")
    tmp.write_bytes(b"other bytes")
    os.replace(tmp, blob)
    stat = env.call(ALICE, "stat", path="p.png")
    assert stat["contentType"] == "application/octet-stream" and stat["size"] == 11
    assert env.download(ALICE, "p.png").content == b"other bytes"


def test_remove_prunes_empty_folders(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "x/y/z.txt", b"z").status_code == 200
    assert env.call(ALICE, "remove", path="x/y/z.txt") is None
    root = _root(env)
    assert not (root / "users" / ALICE / "x").exists()
    assert [p for p in root.rglob("*") if p.name != ".~mb-lock"] == []


def test_secret_rotation(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "k.txt", b"key").status_code == 200
    old_url = env.call(ALICE, "downloadUrl", path="k.txt")["url"]
    root = _root(env)
    path = urlsplit(old_url).path
    query = dict(q.split("=", 1) for q in urlsplit(old_url).query.split("&"))
    key = path.removeprefix("/files/")
    rotated = LocalFileStore(root, ["n" * 40, SECRET])
    assert rotated.verify_download(unquote(key), {k: unquote(v) for k, v in query.items()}).key == unquote(
        key
    )
    replaced = LocalFileStore(root, ["n" * 40])
    with pytest.raises(PermissionDenied, match="signature does not match"):
        replaced.verify_download(unquote(key), {k: unquote(v) for k, v in query.items()})


@pytest.fixture(params=["mount", "plain", "nested"])
def mounted(request: pytest.FixtureRequest, make_config: Callable[..., Config]) -> Iterator[FilesEnv]:
    """The app reached through Starlette's Mount, as the only app, or under a sub-mount."""
    config = files_config(make_config, "file://files")
    kind = str(request.param)

    def app(store: LocalFileStore) -> Starlette | LocalFilesApp:
        if kind == "plain":
            return LocalFilesApp(store)
        if kind == "nested":
            store.mount = "/api/files"
            return Starlette(routes=[Mount("/api", routes=[Mount("/files", app=LocalFilesApp(store))])])
        return Starlette(routes=[Mount("/files", app=LocalFilesApp(store))])

    with local_env(config, app) as env:
        yield env


def test_mounting(mounted: FilesEnv) -> None:
    env = mounted
    assert env.upload(ALICE, "m/n.txt", b"mounted").status_code == 200
    assert env.download(ALICE, "m/n.txt").content == b"mounted"
    assert (_root(env) / "users" / ALICE / "m" / "n.txt").read_bytes() == b"mounted"


def test_roundtrip_helper_and_base_url(make_config: Callable[..., Config]) -> None:
    config = files_config(make_config, "file://files", base_url="https://files.example.com/api")
    with local_env(config) as env:
        grant = env.call(ALICE, "uploadUrl", path="x.txt", contentType="text/plain", size=1)
        # files.base_url wins over the request's own base.
        assert grant["url"].startswith("https://files.example.com/api/files/users/")
    with local_env(files_config(make_config, "file://files")) as env:
        stat, got = roundtrip(
            lambda ev: env.call(ALICE, ev.pop("op"), **ev), "r/t.json", b"{}", "application/json"
        )
        assert stat["path"] == "r/t.json" and got.headers["content-type"] == "application/json"
        # No base URL at all: the local backend cannot build its URLs.
        env.function.files = replace(env.config.files, base_url=None)
        with pytest.raises(Internal, match="base_url"):
            asyncio.run(env.function(caller(ALICE), {"op": "downloadUrl", "path": "r/t.json"}))
