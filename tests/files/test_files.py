"""The files function on every backend, over real HTTP (docs/files.md).

Uploads go to the signed URL with exactly the returned method and headers; downloads
fetch the signed URL. Refusals are checked on the serving side (our /files routes or
the S3 endpoint), and then that nothing was stored.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from minibase.errors import (
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from minibase.files.store.local_io import in_thread
from tests.support.files_harness import FilesEnv, send_upload

ALICE = "u_alice000000000000000"
BOB = "u_bob00000000000000000"
RFC3339_S = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for k, v in changes.items():
        if v is None:
            query.pop(k, None)
        else:
            query[k] = v
    return urlunsplit(parts._replace(query=urlencode(query)))


def _refused(status: int) -> bool:
    return status in (400, 403, 413)


# ------------------------------------------------------------------ upload, download


def test_upload_then_download(files_backend: FilesEnv) -> None:
    env = files_backend
    body = b"hello, files\n" * 100
    grant = env.call(ALICE, "uploadUrl", path="notes/hello.txt", contentType="text/plain", size=len(body))
    assert set(grant) == {"url", "method", "headers", "expiresAt", "fileId"}
    assert grant["fileId"] == f"mb://users/{ALICE}/notes/hello.txt"
    assert grant["method"] == "PUT"
    assert grant["headers"]["Content-Type"] == "text/plain"
    assert RFC3339_S.match(grant["expiresAt"])
    expires = datetime.strptime(grant["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert 890 <= expires - datetime.now(UTC).timestamp() <= 901  # default 15 min
    r = send_upload(grant, body)
    assert r.status_code == 200, r.text

    stat = env.call(ALICE, "stat", path="notes/hello.txt")
    assert stat["path"] == "notes/hello.txt" and stat["fileId"] == grant["fileId"]
    assert stat["size"] == len(body)
    assert stat["contentType"] == "text/plain"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", stat["updated"])

    link = env.call(ALICE, "downloadUrl", path="notes/hello.txt")
    assert set(link) == {"url", "expiresAt"} and RFC3339_S.match(link["expiresAt"])
    got = env.http.get(link["url"])
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "text/plain"
    assert int(got.headers["content-length"]) == len(body)
    assert got.headers.get("etag")


def test_the_same_url_works_twice_and_overwrite_replaces(files_backend: FilesEnv) -> None:
    env = files_backend
    grant = env.call(ALICE, "uploadUrl", path="a.json", contentType="application/json", size=2)
    assert send_upload(grant, b"{}").status_code == 200
    assert send_upload(grant, b"[]").status_code == 200
    assert env.download(ALICE, "a.json").content == b"[]"
    assert env.upload(ALICE, "a.json", b"new text", "text/plain; charset=utf-8").status_code == 200
    got = env.download(ALICE, "a.json")
    assert got.content == b"new text" and got.headers["content-type"] == "text/plain; charset=utf-8"
    assert env.call(ALICE, "stat", path="a.json")["size"] == 8


def test_unicode_and_odd_characters_in_paths(files_backend: FilesEnv) -> None:
    env = files_backend
    path = "照片/猫 1+1=2 (final) & more?#%.png"
    assert env.upload(ALICE, path, b"\x89PNG...", "image/png").status_code == 200
    assert env.download(ALICE, path).content == b"\x89PNG..."
    [item] = env.call(ALICE, "list", prefix="照片/")["data"]
    assert item["path"] == path


def test_empty_file(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "empty.txt", b"").status_code == 200
    assert env.call(ALICE, "stat", path="empty.txt")["size"] == 0
    assert env.download(ALICE, "empty.txt").content == b""


def test_stat_and_download_of_a_missing_file(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.call(ALICE, "stat", path="nope.txt") is None
    assert isinstance(env.error(ALICE, "downloadUrl", path="nope.txt"), NotFound)


# ------------------------------------------------------------------ refusals on the wire


def test_expired_urls_are_refused(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "old.txt", b"v1").status_code == 200
    upload = env.call(ALICE, "uploadUrl", path="old.txt", contentType="text/plain", size=2)
    download = env.call(ALICE, "downloadUrl", path="old.txt")
    env.pass_time(16 * 60)
    r = send_upload(upload, b"v2")
    assert r.status_code == 403, r.text
    assert env.http.get(download["url"]).status_code == 403
    env.pass_time(-16 * 60)
    assert env.download(ALICE, "old.txt").content == b"v1"  # the expired upload changed nothing


def test_tampered_urls_are_refused(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "mine.txt", b"secret").status_code == 200
    grant = env.call(ALICE, "uploadUrl", path="mine.txt", contentType="text/plain", size=5)
    link = env.call(ALICE, "downloadUrl", path="mine.txt")

    # Another path with the same signature: not written, not readable.
    other_put = dict(grant, url=grant["url"].replace("mine.txt", "yours.txt"))
    assert send_upload(other_put, b"owned").status_code == 403
    assert env.call(ALICE, "stat", path="yours.txt") is None
    assert env.http.get(link["url"].replace("mine.txt", "yours.txt")).status_code == 403
    # Into another user's area.
    bob_put = dict(grant, url=grant["url"].replace(f"users/{ALICE}/", f"users/{BOB}/"))
    assert send_upload(bob_put, b"owned").status_code == 403
    assert env.call(BOB, "stat", path="mine.txt") is None

    # A changed or missing query parameter (expiry, signature, bound values).
    params = dict(parse_qsl(urlsplit(grant["url"]).query))
    expires_key = "Expires" if "Expires" in params else "X-Amz-Expires"
    signature_key = "Signature" if "Signature" in params else "X-Amz-Signature"
    for changed in (
        _with_query(grant["url"], **{expires_key: str(int(params[expires_key]) + 3600)}),
        _with_query(grant["url"], **{signature_key: None}),
        _with_query(grant["url"], **{signature_key: params[signature_key][:-2] + "AA"}),
        _with_query(grant["url"], extra="1"),
    ):
        r = send_upload(dict(grant, url=changed), b"owned")
        assert r.status_code == 403, (changed, r.status_code, r.text)
    if env.backend == "local":  # the bound values travel in the query here
        for name, value in (("Size", "6"), ("ContentType", "text/html"), ("Uploader", BOB)):
            r = send_upload(dict(grant, url=_with_query(grant["url"], **{name: value})), b"owned")
            assert r.status_code == 403, (name, r.text)
        assert env.http.get(_with_query(link["url"], Public="1")).status_code == 403
    assert env.http.get(_with_query(link["url"], **{signature_key: None})).status_code == 403
    assert env.download(ALICE, "mine.txt").content == b"secret"


def test_oversize_is_refused(files_backend: FilesEnv) -> None:
    env = files_backend
    e = env.error(
        ALICE, "uploadUrl", path="big.bin", contentType="application/octet-stream", size=64 * 1024 + 1
    )
    assert isinstance(e, PayloadTooLarge) and e.status == 413
    assert isinstance(
        env.error(ALICE, "uploadUrl", path="public/big.png", contentType="image/png", size=16 * 1024 + 1),
        PayloadTooLarge,
    )
    # The URL binds the declared size: more (or fewer) bytes are refused, nothing is stored.
    grant = env.call(ALICE, "uploadUrl", path="small.bin", contentType="application/octet-stream", size=10)
    r = send_upload(grant, b"x" * 11)
    assert r.status_code in (403, 413), r.text  # S3: the signed Content-Length differs
    r = send_upload(grant, b"x" * 9)
    assert _refused(r.status_code), r.text
    assert env.call(ALICE, "stat", path="small.bin") is None
    assert send_upload(grant, b"x" * 10).status_code == 200


def test_wrong_content_type_is_refused(files_backend: FilesEnv) -> None:
    env = files_backend
    e = env.error(ALICE, "uploadUrl", path="page.html", contentType="application/x-sh", size=3)
    assert isinstance(e, InvalidArgument) and "not allowed" in e.message
    # The public area allows fewer types than the rest.
    assert isinstance(
        env.error(ALICE, "uploadUrl", path="public/a.json", contentType="application/json", size=2),
        InvalidArgument,
    )
    for bad in ("", "png", "image/", "image/png\r\nX: y", "a" * 300 + "/b"):
        assert isinstance(env.error(ALICE, "uploadUrl", path="x", contentType=bad, size=1), InvalidArgument)
    # The URL binds the content type: sending another one is refused.
    grant = env.call(ALICE, "uploadUrl", path="pic.png", contentType="image/png", size=3)
    r = send_upload(grant, b"<b>", headers={"Content-Type": "text/html"})
    assert r.status_code == 403, r.text
    assert env.call(ALICE, "stat", path="pic.png") is None
    assert send_upload(grant, b"PNG").status_code == 200
    assert env.download(ALICE, "pic.png").headers["content-type"] == "image/png"


# ------------------------------------------------------------------ areas and users


def test_users_are_kept_apart(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "diary.txt", b"dear diary").status_code == 200
    # Bob's relative path is his own area: there is nothing there.
    assert env.call(BOB, "stat", path="diary.txt") is None
    assert env.call(BOB, "list")["data"] == []
    # Alice's area spelled out: hers to use, refused to Bob for every op.
    assert env.call(ALICE, "stat", path=f"users/{ALICE}/diary.txt")["size"] == 10
    theirs = f"users/{ALICE}/diary.txt"
    for op, extra in (
        ("stat", {}),
        ("downloadUrl", {}),
        ("remove", {}),
        ("uploadUrl", {"contentType": "text/plain", "size": 1}),
    ):
        e = env.error(BOB, op, path=theirs, **extra)
        assert isinstance(e, PermissionDenied), (op, e)
    assert isinstance(env.error(BOB, "list", prefix=f"users/{ALICE}/"), PermissionDenied)
    assert isinstance(env.error(BOB, "list", prefix="users/"), PermissionDenied)
    assert env.download(ALICE, "diary.txt").content == b"dear diary"


def test_not_logged_in(files_backend: FilesEnv) -> None:
    env = files_backend
    for op, extra in (("stat", {"path": "a"}), ("list", {}), ("remove", {"path": "a"})):
        assert isinstance(env.error(None, op, **extra), Unauthenticated)
    assert isinstance(
        env.error(None, "uploadUrl", path="public/a.png", contentType="image/png", size=1), Unauthenticated
    )


def test_public_area(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "public/avatar.png", b"PNG!", "image/png").status_code == 200
    # Anyone reads, even without logging in.
    got = env.download(None, "public/avatar.png")
    assert got.content == b"PNG!"
    assert env.call(None, "stat", path="public/avatar.png")["path"] == "public/avatar.png"
    assert [f["path"] for f in env.call(BOB, "list", prefix="public/")["data"]] == ["public/avatar.png"]
    # Only the uploader replaces or removes it; others may add their own files.
    e = env.error(BOB, "uploadUrl", path="public/avatar.png", contentType="image/png", size=1)
    assert isinstance(e, PermissionDenied)
    assert isinstance(env.error(BOB, "remove", path="public/avatar.png"), PermissionDenied)
    assert env.upload(BOB, "public/bob.png", b"B", "image/png").status_code == 200
    assert env.upload(ALICE, "public/avatar.png", b"PNG2", "image/png").status_code == 200
    assert env.call(ALICE, "remove", path="public/avatar.png") is None
    assert env.call(None, "stat", path="public/avatar.png") is None
    if env.backend == "local":
        assert got.headers["cache-control"].startswith("public")
        assert env.download(BOB, "public/bob.png").headers["cache-control"].startswith("public")


def test_authenticated_owner_and_none_areas(files_backend: FilesEnv) -> None:
    env = files_backend
    # team: any logged-in user reads and writes.
    assert env.upload(ALICE, "team/plan.txt", b"plan").status_code == 200
    assert env.download(BOB, "team/plan.txt").content == b"plan"
    assert env.upload(BOB, "team/plan.txt", b"plan B").status_code == 200
    assert isinstance(env.error(None, "stat", path="team/plan.txt"), Unauthenticated)
    assert env.call(BOB, "remove", path="team/plan.txt") is None
    # inbox: only the uploader reads (and lists) a file.
    assert env.upload(ALICE, "inbox/a1.txt", b"a1").status_code == 200
    assert env.upload(BOB, "inbox/b1.txt", b"b1").status_code == 200
    assert env.upload(ALICE, "inbox/a2.txt", b"a2").status_code == 200
    # Another user's file reads exactly as a missing one: no existence oracle.
    assert env.call(BOB, "stat", path="inbox/a1.txt") is None
    assert env.call(BOB, "stat", path="inbox/nothing.txt") is None
    hidden = env.error(BOB, "downloadUrl", path="inbox/a1.txt")
    missing = env.error(BOB, "downloadUrl", path="inbox/nothing.txt")
    assert isinstance(hidden, NotFound) and isinstance(missing, NotFound)
    assert (hidden.status, hidden.code, hidden.message) == (missing.status, missing.code, missing.message)
    assert env.download(ALICE, "inbox/a1.txt").content == b"a1"
    page = env.call(ALICE, "list", prefix="inbox/", limit=1)
    assert [f["path"] for f in page["data"]] == ["inbox/a1.txt"]
    page = env.call(ALICE, "list", prefix="inbox/", limit=1, cursor=page["next"])
    assert [f["path"] for f in page["data"]] == ["inbox/a2.txt"]
    assert env.call(ALICE, "list", prefix="inbox/", cursor=page["next"]) == {"data": [], "next": None}
    assert [f["path"] for f in env.call(BOB, "list", prefix="inbox/")["data"]] == ["inbox/b1.txt"]
    # archive: nobody.
    for op, extra in (
        ("stat", {"path": "archive/x"}),
        ("list", {"prefix": "archive/"}),
        ("uploadUrl", {"path": "archive/x", "contentType": "text/plain", "size": 1}),
    ):
        assert isinstance(env.error(ALICE, op, **extra), PermissionDenied)


# ------------------------------------------------------------------ list and remove


def test_listing_is_paginated(files_backend: FilesEnv) -> None:
    env = files_backend
    names = ["b.txt", "a.txt", "dir/c.txt", "dir/sub/d.txt", "a-b.txt", "e.txt"]
    for name in names:
        assert env.upload(ALICE, name, name.encode()).status_code == 200
    assert env.upload(BOB, "bob.txt", b"bob").status_code == 200
    assert env.upload(ALICE, "public/p.png", b"p", "image/png").status_code == 200

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = env.call(ALICE, "list", limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["data"]) <= 2
        seen += [f["path"] for f in page["data"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert seen == sorted(names)  # key order; the own area only: no Bob, no public/
    assert pages in (3, 4)
    item = env.call(ALICE, "list", prefix="dir/sub/")["data"][0]
    assert item == {
        "path": "dir/sub/d.txt",
        "fileId": f"mb://users/{ALICE}/dir/sub/d.txt",
        "size": len(b"dir/sub/d.txt"),
        "contentType": "text/plain",
        "updated": item["updated"],
    }
    assert [f["path"] for f in env.call(ALICE, "list", prefix="dir/")["data"]] == [
        "dir/c.txt",
        "dir/sub/d.txt",
    ]
    assert [f["path"] for f in env.call(ALICE, "list", prefix="a")["data"]] == ["a-b.txt", "a.txt"]
    assert env.call(ALICE, "list", prefix="zzz") == {"data": [], "next": None}
    assert env.call(ALICE, "list", limit=1000)["next"] is None

    first = env.call(ALICE, "list", prefix="dir/", limit=1)
    assert isinstance(env.error(ALICE, "list", prefix="a", cursor=first["next"]), InvalidArgument)
    assert isinstance(env.error(BOB, "list", cursor=first["next"]), InvalidArgument)
    for bad in ("nope", "f1.!!!", 5):
        assert isinstance(env.error(ALICE, "list", cursor=bad), InvalidArgument)
    for bad_limit in (0, 1001, "2", True):
        assert isinstance(env.error(ALICE, "list", limit=bad_limit), InvalidArgument)


def test_remove(files_backend: FilesEnv) -> None:
    env = files_backend
    assert env.upload(ALICE, "dir/gone.txt", b"bye").status_code == 200
    link = env.call(ALICE, "downloadUrl", path="dir/gone.txt")
    assert env.call(ALICE, "remove", path="dir/gone.txt") is None
    assert env.call(ALICE, "stat", path="dir/gone.txt") is None
    assert env.call(ALICE, "list")["data"] == []
    assert env.http.get(link["url"]).status_code in (403, 404)  # S3 answers 403 to hide absence
    assert env.call(ALICE, "remove", path="dir/gone.txt") is None  # idempotent
    # The folder can become a file now.
    assert env.upload(ALICE, "dir", b"file").status_code == 200


def test_bad_requests(files_backend: FilesEnv) -> None:
    env = files_backend
    assert isinstance(env.error(ALICE, "rename", path="a"), InvalidArgument)
    e = env.error(ALICE, "nothing")
    assert isinstance(e, InvalidArgument) and "uploadUrl" in e.message
    for path in ("a/../b", "a//b", "a\\b", None):
        assert isinstance(env.error(ALICE, "stat", path=path), InvalidArgument)
    for size in (-1, "3", 1.5, True, None):
        e = env.error(ALICE, "uploadUrl", path="a.txt", contentType="text/plain", size=size)
        assert isinstance(e, InvalidArgument), size


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'


def test_wildcards_do_not_admit_svg_and_active_files_download_as_attachments(files_backend: FilesEnv) -> None:
    """Issue 18: `image/*` admitted image/svg+xml, which a browser runs. A wildcard no longer
    admits a type a browser could run; where one is named, its download is an attachment
    (S3: a signed response-content-disposition; local: the header, plus nosniff/sandbox)."""
    env = files_backend
    for ct in ("image/svg+xml", "IMAGE/SVG+XML; charset=utf-8", "text/html", "application/xhtml+xml"):
        e = env.error(ALICE, "uploadUrl", path="a.svg", contentType=ct, size=len(SVG))
        assert isinstance(e, InvalidArgument) and "not allowed" in e.message, (ct, e)
    assert env.upload(ALICE, "a.png", b"png", "image/png").status_code == 200
    assert "content-disposition" not in env.download(ALICE, "a.png").headers

    for path, ct in (("drawings/x.svg", "image/svg+xml"), ("drawings/x.html", "text/html; charset=utf-8")):
        assert env.upload(ALICE, path, SVG, ct).status_code == 200
        r = env.download(BOB, path)
        assert r.status_code == 200 and r.content == SVG
        assert r.headers["content-disposition"] == "attachment", r.headers
    assert env.upload(ALICE, "drawings/y.png", b"png", "image/png").status_code == 200
    assert "content-disposition" not in env.download(BOB, "drawings/y.png").headers


# ------------------------------------------------------------------ a failing disk


def test_a_full_disk_is_unavailable_other_os_errors_are_not() -> None:
    """The local store runs its disk work through ``in_thread``: a full disk (a real ENOSPC,
    from /dev/full) is 503 Unavailable; a missing file is left to the caller."""

    def write_full() -> None:
        fd = os.open("/dev/full", os.O_WRONLY)
        try:
            os.write(fd, b"x" * 4096)
        finally:
            os.close(fd)

    with pytest.raises(Unavailable, match=r"^the file store is unavailable$") as e:
        asyncio.run(in_thread(write_full))
    assert isinstance(e.value.__cause__, OSError) and e.value.__cause__.errno == errno.ENOSPC
    with pytest.raises(FileNotFoundError):
        asyncio.run(in_thread(os.stat, "/nonexistent/minibase"))
