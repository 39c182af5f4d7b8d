"""Stable URLs for public areas, caching headers and ranges, ``downloadUrls`` and file ids,
on local disk and S3 (moto behind the signature-checking gateway)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from minibase.config import Config
from minibase.errors import InvalidArgument, NotFound, PermissionDenied
from minibase.files import LocalFileStore
from tests.support.files import files_config
from tests.support.files_harness import FilesEnv, caller

ALICE = "u_alice000000000000000"
BOB = "u_bob00000000000000000"
BODY = bytes(range(256)) * 40  # 10240 bytes: within the public area's 16 KiB


def _put_public(env: FilesEnv, path: str = "public/cat.png", body: bytes = BODY) -> None:
    assert env.upload(ALICE, path, body, "image/png").status_code == 200


def test_a_public_file_has_one_stable_url_that_never_expires(files_backend: FilesEnv) -> None:
    env = files_backend
    _put_public(env)
    links = [env.call(uid, "downloadUrl", path="public/cat.png") for uid in (ALICE, BOB, None)]
    assert all(link["expiresAt"] is None for link in links)
    assert len({link["url"] for link in links}) == 1  # the same for everyone, every time
    url = links[0]["url"]
    assert "?" not in url and url.endswith("/public/cat.png")
    got = env.http.get(url)
    assert got.status_code == 200 and got.content == BODY
    # Replaced: the same URL serves the new bytes, under a new ETag.
    assert env.upload(ALICE, "public/cat.png", b"new", "image/png").status_code == 200
    assert env.call(None, "downloadUrl", path="public/cat.png")["url"] == url
    again = env.http.get(url)
    assert again.content == b"new" and again.headers["etag"] != got.headers["etag"]
    env.pass_time(30 * 86400)  # a month on the serving side: still served
    assert env.http.get(url).content == b"new"
    # Removed: the URL answers a refusal, not stale bytes.
    env.call(ALICE, "remove", path="public/cat.png")
    assert env.http.get(url).status_code in (403, 404)


def test_private_areas_keep_expiring_signed_urls(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "team/a.txt", b"team", "text/plain").status_code == 200
    assert env.upload(ALICE, "mine.txt", b"mine", "text/plain").status_code == 200
    for path in ("team/a.txt", "mine.txt"):
        link = env.call(ALICE, "downloadUrl", path=path)
        assert isinstance(link["expiresAt"], str) and "?" in link["url"]
        # Without its signature the URL serves nothing.
        assert env.http.get(link["url"].split("?", 1)[0]).status_code == 403


def test_content_a_browser_could_run_keeps_a_signed_attachment_url(files_backend: FilesEnv) -> None:
    env = files_backend
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    assert env.upload(ALICE, "drawings/x.svg", svg, "image/svg+xml").status_code == 200
    link = env.call(None, "downloadUrl", path="drawings/x.svg")
    assert link["expiresAt"] is not None
    got = env.http.get(link["url"])
    assert got.status_code == 200 and got.headers["content-disposition"] == "attachment"


def test_ranges_on_both_backends(files_backend: FilesEnv) -> None:
    env = files_backend
    _put_public(env)
    url = env.call(None, "downloadUrl", path="public/cat.png")["url"]
    r = env.http.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == BODY[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(BODY)}"
    r = env.http.get(url, headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == BODY[-10:]
    r = env.http.get(url, headers={"Range": "bytes=10000-"})
    assert r.status_code == 206 and r.content == BODY[10000:]
    assert env.http.get(url, headers={"Range": f"bytes={len(BODY)}-"}).status_code == 416


def test_local_caching_headers_and_conditional_requests(local_files: FilesEnv) -> None:
    env = local_files
    _put_public(env)
    url = env.call(None, "downloadUrl", path="public/cat.png")["url"]
    r = env.http.get(url)
    assert r.headers["cache-control"] == "public, max-age=300"  # files.public_max_age
    assert r.headers["accept-ranges"] == "bytes"
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    assert env.http.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert env.http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert env.http.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    earlier = formatdate(0, usegmt=True)
    assert env.http.get(url, headers={"If-Modified-Since": earlier}).status_code == 200
    # If-Range: a range only while the client's copy is current.
    r = env.http.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert r.status_code == 206 and r.content == BODY[:10]
    r = env.http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == BODY
    # Several ranges, another unit or a malformed one: the whole file, which is allowed.
    for value in ("bytes=0-1,5-6", "items=0-1", "bytes=x-y", "bytes=9-3"):
        r = env.http.get(url, headers={"Range": value})
        assert (r.status_code, r.content) == (200, BODY), value
    head = env.http.head(url, headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.headers["content-length"] == "10"
    assert env.http.get(url, headers={"Range": "bytes=-0"}).status_code == 416


def test_an_unsigned_url_outside_a_public_area_is_refused(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "team/t.txt", b"t", "text/plain").status_code == 200
    base = env.url + "/files/"
    for key in ("team/t.txt", f"users/{ALICE}/none.txt", "publicity/x.png"):
        r = env.http.get(base + key)
        assert r.status_code == 403 and r.json()["error"]["code"] == "PermissionDenied", key
    _put_public(env)
    # Nothing may be added to a stable URL.
    assert env.http.get(base + "public/cat.png?x=1").status_code == 403


def test_a_stable_url_stops_when_the_area_stops_being_public(local_files: FilesEnv) -> None:
    env = local_files
    assert isinstance(env.store, LocalFileStore)
    _put_public(env)
    assert env.store.verify_download("public/cat.png", {}).expires is None
    # The same files, served under a config where public/ is no longer public-read.
    private = LocalFileStore(env.store.root, ["s" * 32], public_prefixes=())
    with pytest.raises(PermissionDenied):
        private.verify_download("public/cat.png", {})


def test_s3_public_url_can_be_a_cdn(
    make_config: Callable[..., Config], s3_endpoint: tuple[str, object]
) -> None:
    from minibase.files import FilesFunction, build_file_store

    endpoint, _ = s3_endpoint
    url = f"s3://bucket-x/app?endpoint={endpoint}&region=us-east-1&path_style=true"
    config = files_config(make_config, url, public_url="https://cdn.example.com/")
    store = build_file_store(config, ["s" * 32])
    try:
        got = asyncio.run(store.public_url("public/a b.png", base_url=None))
        assert got == "https://cdn.example.com/app/public/a%20b.png"
        assert FilesFunction(config, store).files.public_url == "https://cdn.example.com"
    finally:
        asyncio.run(store.close())


# ------------------------------------------------------------------ downloadUrls


def test_download_urls_marks_each_path(files_backend: FilesEnv) -> None:
    env = files_backend
    _put_public(env)
    assert env.upload(ALICE, "mine.txt", b"mine", "text/plain").status_code == 200
    assert env.upload(BOB, "inbox/bob.txt", b"bob's", "text/plain").status_code == 200
    paths = [
        "public/cat.png",
        "mine.txt",
        f"mb://users/{ALICE}/mine.txt",
        "missing.txt",
        f"users/{BOB}/x.txt",
        "inbox/bob.txt",  # owner-read: another's file reads as missing
        "archive/x.txt",  # read = none
        "a/../b",
        42,
    ]
    out = env.call(ALICE, "downloadUrls", paths=paths)
    assert [o["path"] for o in out] == [*paths[:-1], None]
    codes = [o.get("error", {}).get("code") for o in out]
    assert codes == [
        None,
        None,
        None,
        "NotFound",
        "PermissionDenied",
        "NotFound",
        "PermissionDenied",
        "InvalidArgument",
        "InvalidArgument",
    ]
    assert out[0]["expiresAt"] is None and out[0]["fileId"] == "mb://public/cat.png"
    assert out[1]["fileId"] == out[2]["fileId"] == f"mb://users/{ALICE}/mine.txt"
    for o in out[:3]:
        assert env.http.get(o["url"]).status_code == 200
    assert env.http.get(out[1]["url"]).content == b"mine"
    assert all(o["error"]["message"] for o in out[3:])
    # Without a session: the public file still, one's own area asks to log in.
    anon = env.call(None, "downloadUrls", paths=["public/cat.png", "mine.txt"])
    assert "url" in anon[0] and anon[1]["error"]["code"] == "Unauthenticated"


def test_download_urls_bounds(local_files: FilesEnv) -> None:
    env = local_files
    assert env.call(ALICE, "downloadUrls", paths=[]) == []
    assert isinstance(env.error(ALICE, "downloadUrls"), InvalidArgument)
    assert isinstance(env.error(ALICE, "downloadUrls", paths="public/a.png"), InvalidArgument)
    e = env.error(ALICE, "downloadUrls", paths=["x"] * 101)
    assert isinstance(e, InvalidArgument) and "at most 100" in e.message
    out = env.call(ALICE, "downloadUrls", paths=["x"] * 100)
    assert len(out) == 100 and {o["error"]["code"] for o in out} == {"NotFound"}


# ---------------------------------------------------------------------- file ids


def test_file_ids_work_wherever_paths_do(files_backend: FilesEnv) -> None:
    env = files_backend
    grant = env.call(ALICE, "uploadUrl", path="pics/a.png", contentType="image/png", size=3)
    fid = grant["fileId"]
    assert fid == f"mb://users/{ALICE}/pics/a.png"
    assert (
        env.http.request(grant["method"], grant["url"], headers=grant["headers"], content=b"abc").status_code
        == 200
    )
    assert env.call(ALICE, "stat", path=fid)["path"] == "pics/a.png"
    assert env.http.get(env.call(ALICE, "downloadUrl", path=fid)["url"]).content == b"abc"
    # A file id means the same file to everyone: another user may not read it.
    assert isinstance(env.error(BOB, "stat", path=fid), PermissionDenied)
    assert isinstance(env.error(BOB, "remove", path=fid), PermissionDenied)
    # A file id is a full key: a bare relative one is refused, not read as one's own.
    assert isinstance(env.error(ALICE, "stat", path="mb://pics/a.png"), InvalidArgument)
    assert isinstance(env.error(ALICE, "stat", path="mb://"), InvalidArgument)
    env.call(ALICE, "remove", path=fid)
    assert isinstance(env.error(ALICE, "downloadUrl", path=fid), NotFound)
    _put_public(env, "public/p.png", b"p")
    assert env.call(None, "stat", path="mb://public/p.png")["fileId"] == "mb://public/p.png"


def test_public_url_goes_through_the_real_app(make_config: Callable[..., Config]) -> None:
    """The stable URL is served by the whole app (not only the files app on its own)."""
    from minibase.app import create_app
    from minibase.core import Minibase
    from tests.support.live import run_uvicorn

    config = files_config(make_config, "file://files")
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url, httpx.Client(timeout=10) as http:

        def fn(name: str, event: dict[str, Any], who: Any, base_url: str) -> Any:
            return core._call_builtin(name, event, who, "", base_url)

        grant = asyncio.run(
            fn(
                "files",
                {"op": "uploadUrl", "path": "public/x.png", "contentType": "image/png", "size": 2},
                caller(ALICE),
                url,
            )
        )
        assert http.put(grant["url"], headers=grant["headers"], content=b"ok").status_code == 200
        link = asyncio.run(fn("files", {"op": "downloadUrl", "path": "public/x.png"}, None, url))
        assert link == {"url": f"{url}/files/public/x.png", "expiresAt": None}
        r = http.get(link["url"])
        assert (
            r.status_code == 200
            and r.content == b"ok"
            and r.headers["cache-control"] == "public, max-age=300"
        )
