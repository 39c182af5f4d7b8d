"""Local disk: how upload and download URLs are bound to the file their permission was checked
against (the ``Expect`` and ``Version`` fields of the signed message). The scenarios on both
backends, through the whole app, are in ``test_auth_matrix.py``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from minibase.errors import Conflict
from minibase.files import LocalFileStore, UploadCondition
from tests.support.files_harness import FilesEnv, send_upload

ALICE = "u_alice000000000000000"
BOB = "u_bob00000000000000000"


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root`` (temp and metadata files included) and its identity."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            if name != ".~mb-lock":
                st = path.stat()
                out[path.relative_to(root).as_posix()] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def _with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    pairs = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in changes.items():
        if value is None:
            pairs.pop(name, None)
        else:
            pairs[name] = value
    return urlunsplit(parts._replace(query=urlencode(list(pairs.items()))))


def _root(env: FilesEnv) -> Path:
    assert isinstance(env.store, LocalFileStore)
    return env.store.root


def test_expect_is_signed(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "public/a.txt", b"alice").status_code == 200
    stale = env.call(BOB, "uploadUrl", path="public/b.txt", contentType="text/plain", size=3)
    expect = dict(parse_qsl(urlsplit(stale["url"]).query))["Expect"]
    assert expect == "new"
    alice_version = asyncio.run(env.store.stat("public/a.txt"))
    assert alice_version is not None and alice_version.version
    before = _snapshot(_root(env))
    # Bob's URL for public/b.txt cannot be turned into an unconditional one, nor one that
    # expects alice's version, nor be pointed at alice's file.
    for url in (
        _with_query(stale["url"], Expect=None),
        _with_query(stale["url"], Expect=alice_version.version),
        _with_query(stale["url"], Expect=""),
        stale["url"].replace("public/b.txt", "public/a.txt"),
    ):
        r = send_upload({**stale, "url": url}, b"bob")
        assert r.status_code == 403 and r.json()["error"]["code"] == "PermissionDenied", r.text
    assert _snapshot(_root(env)) == before
    # Own-area URLs carry no Expect: they were never owner-checked.
    own = env.call(BOB, "uploadUrl", path="x.txt", contentType="text/plain", size=3)
    assert "Expect" not in dict(parse_qsl(urlsplit(own["url"]).query))


def test_stale_url_is_refused_before_its_body_and_nothing_is_stored(local_files: FilesEnv) -> None:
    env = local_files
    stale = env.call(BOB, "uploadUrl", path="public/logo.txt", contentType="text/plain", size=5)
    assert env.upload(ALICE, "public/logo.txt", b"alice").status_code == 200
    before = _snapshot(_root(env))
    r = send_upload(stale, b"bob's")
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "Conflict"
    assert "ask for a new one" in r.json()["error"]["message"]
    assert r.headers["connection"] == "close"  # the body was never read
    assert _snapshot(_root(env)) == before
    info = asyncio.run(env.store.stat("public/logo.txt"))
    assert info is not None and info.uploader == ALICE


def test_condition_is_checked_at_the_commit(local_files: FilesEnv) -> None:
    """The check that counts runs under the commit lock right before the rename: a file
    created while the upload streams wins, and the stale upload leaves nothing behind."""
    env = local_files
    store = env.store
    assert isinstance(store, LocalFileStore)

    async def racing_body(key: str) -> AsyncIterator[bytes]:
        yield b"bob's "

        async def alice() -> AsyncIterator[bytes]:
            yield b"alice's logo"

        await store.write(key, alice(), size=12, content_type="text/plain", uploader=ALICE)
        yield b"logo"

    async def run() -> None:
        with pytest.raises(Conflict):
            await store.write(
                "public/new.txt",
                racing_body("public/new.txt"),
                size=10,
                content_type="text/plain",
                uploader=BOB,
                condition=UploadCondition(None),
            )
        info = await store.stat("public/new.txt")
        assert info is not None and info.uploader == ALICE and info.version
        # A replacement bound to alice's version loses to one that lands first.
        mine = UploadCondition(info.version)
        with pytest.raises(Conflict):
            await store.write(
                "public/new.txt",
                racing_body("public/new.txt"),
                size=10,
                content_type="text/plain",
                uploader=ALICE,
                condition=mine,
            )
        info2 = await store.stat("public/new.txt")
        assert info2 is not None and info2.version != info.version
        with pytest.raises(Conflict):  # not even the same bytes make it the same version
            await store.write(
                "public/new.txt",
                _one(b"alice's logo"),
                size=12,
                content_type="text/plain",
                uploader=ALICE,
                condition=mine,
            )
        done = await store.write(
            "public/new.txt",
            _one(b"v3"),
            size=2,
            content_type="text/plain",
            uploader=ALICE,
            condition=UploadCondition(info2.version),
        )
        info3 = await store.stat("public/new.txt")
        assert info3 is not None and info3.version == done.version != info2.version

    asyncio.run(run())
    assert (_root(env) / "public" / "new.txt").read_bytes() == b"v3"
    leftovers = [k for k in _snapshot(_root(env)) if ".~mb-tmp-" in k]
    assert leftovers == []


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_owner_read_download_urls_serve_only_their_version(local_files: FilesEnv) -> None:
    env = local_files
    assert env.upload(ALICE, "inbox/x.txt", b"alice's note").status_code == 200
    link = env.call(ALICE, "downloadUrl", path="inbox/x.txt")["url"]
    assert "Version" in dict(parse_qsl(urlsplit(link).query))
    with httpx.Client(timeout=30) as http:
        assert http.get(link).content == b"alice's note"
        # Tampering with the version breaks the signature.
        assert http.get(_with_query(link, Version=None)).status_code == 403
        assert env.call(ALICE, "remove", path="inbox/x.txt") is None
        # Bob's file in its place, even byte-identical, is not what alice's URL was for.
        assert env.upload(BOB, "inbox/x.txt", b"alice's note").status_code == 200
        for method in ("GET", "HEAD"):
            r = http.request(method, link)
            assert r.status_code == 404, (method, r.status_code)
            if method == "GET":
                assert r.json()["error"]["code"] == "NotFound"
        assert env.download(BOB, "inbox/x.txt").content == b"alice's note"

        # Public and own-area links are not bound: they follow their owner's replacements.
        assert env.upload(ALICE, "public/p.txt", b"v1").status_code == 200
        assert env.upload(ALICE, "mine.txt", b"m1").status_code == 200
        public = env.call(None, "downloadUrl", path="public/p.txt")["url"]
        own = env.call(ALICE, "downloadUrl", path="mine.txt")["url"]
        assert "Version" not in public and "Version" not in own
        assert env.upload(ALICE, "public/p.txt", b"v2").status_code == 200
        assert env.upload(ALICE, "mine.txt", b"m2").status_code == 200
        assert http.get(public).content == b"v2"
        assert http.get(own).content == b"m2"
