"""Form uploads (``uploadForm``): a multipart POST streamed to storage, with the limits of
``uploadUrl``. Local disk (minibase parses the body) and S3 (a PostObject policy, checked
by the gateway as S3 does)."""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from minibase.config import Config
from minibase.errors import InvalidArgument, PayloadTooLarge
from tests.support.files import files_config, local_env
from tests.support.files_harness import FilesEnv

ALICE = "u_alice000000000000000"
BOB = "u_bob00000000000000000"


def post_form(
    env: FilesEnv,
    form: dict[str, Any],
    data: bytes,
    *,
    part_type: str = "application/octet-stream",
    fields: dict[str, str] | None = None,
) -> httpx.Response:
    """POST like a mini-program's uploadFile / a browser's FormData: the fields, then the file."""
    return env.http.post(
        form["url"],
        data={**form["formData"], **(fields or {})},
        files={form["name"]: ("photo.bin", data, part_type)},
    )


def test_a_form_upload_lands_with_the_signed_type(files_backend: FilesEnv) -> None:
    env = files_backend
    body = b"\x89PNG fake bytes" * 100
    form = env.call(ALICE, "uploadForm", path="pics/a.png", contentType="image/png", size=len(body))
    assert set(form) == {"url", "name", "formData", "expiresAt", "fileId"}
    assert form["fileId"] == f"mb://users/{ALICE}/pics/a.png" and form["name"] == "file"
    # The part says octet-stream: what is stored is the signed type.
    r = post_form(env, form, body)
    assert r.status_code in (200, 204), r.text
    stat = env.call(ALICE, "stat", path="pics/a.png")
    assert (stat["size"], stat["contentType"]) == (len(body), "image/png")
    assert env.download(ALICE, "pics/a.png").content == body
    # Without a size: anything up to the limit (64 KiB here).
    form = env.call(ALICE, "uploadForm", path="pics/b.png", contentType="image/png")
    assert post_form(env, form, b"x" * 5000).status_code in (200, 204)
    assert env.call(ALICE, "stat", path="pics/b.png")["size"] == 5000
    empty = env.call(ALICE, "uploadForm", path="pics/e.png", contentType="image/png")
    assert post_form(env, empty, b"").status_code in (200, 204)


def test_size_and_type_limits_hold_as_for_upload_url(files_backend: FilesEnv) -> None:
    env = files_backend
    e = env.error(ALICE, "uploadForm", path="big.png", contentType="image/png", size=65 * 1024)
    assert isinstance(e, PayloadTooLarge) and e.details == {"maxSize": 64 * 1024}
    assert isinstance(
        env.error(ALICE, "uploadForm", path="a.pdf", contentType="application/pdf"), InvalidArgument
    )
    assert isinstance(env.error(ALICE, "uploadForm", path="a.png"), InvalidArgument)
    assert isinstance(
        env.error(ALICE, "uploadForm", path="a.png", contentType="image/png", size=-1), InvalidArgument
    )
    e = env.error(ALICE, "uploadForm", path="public/big.png", contentType="image/png", size=17 * 1024)
    assert isinstance(e, PayloadTooLarge)  # the area's own limit
    assert env.error(None, "uploadForm", path="a.png", contentType="image/png").code == "Unauthenticated"
    assert env.error(BOB, "uploadForm", path=f"users/{ALICE}/a.png", contentType="image/png").code == (
        "PermissionDenied"
    )
    # The signed size is exact; without one, the area's limit is the bound.
    form = env.call(ALICE, "uploadForm", path="s.png", contentType="image/png", size=10)
    assert post_form(env, form, b"x" * 11).status_code in (400, 403, 413)
    assert post_form(env, form, b"x" * 9).status_code in (400, 403)
    form = env.call(ALICE, "uploadForm", path="t.png", contentType="image/png")
    assert post_form(env, form, b"x" * (64 * 1024 + 1)).status_code in (400, 403, 413)
    assert env.call(ALICE, "stat", path="s.png") is None and env.call(ALICE, "stat", path="t.png") is None


def test_a_form_cannot_be_altered(files_backend: FilesEnv) -> None:
    env = files_backend
    form = env.call(ALICE, "uploadForm", path="x.png", contentType="image/png")
    if env.backend == "local":
        for a, b in (
            ("MaxSize=65536", "MaxSize=99999999"),
            ("ContentType=image%2Fpng", "ContentType=text%2Fhtml"),
        ):
            assert a in form["url"]
            r = post_form(env, {**form, "url": form["url"].replace(a, b)}, b"x")
            assert r.status_code == 403 and r.json()["error"]["code"] == "PermissionDenied"
        other = form["url"].replace("/x.png?", "/y.png?")
        assert post_form(env, {**form, "url": other}, b"x").status_code == 403
    else:
        for name, value in (
            ("Content-Type", "text/html"),
            ("key", f"users/{BOB}/x.png"),
            ("x-amz-meta-uploader", BOB),
        ):
            r = post_form(env, form, b"x", fields={name: value})
            assert r.status_code == 403, (name, r.text)
        r = post_form(env, form, b"x", fields={"x-amz-meta-extra": "1"})
        assert r.status_code == 403  # a field the policy does not cover
    env.pass_time(3600)  # past the URL's lifetime
    assert post_form(env, form, b"x").status_code == 403
    env.pass_time(-3600)
    assert env.call(ALICE, "stat", path="x.png") is None and env.call(ALICE, "stat", path="y.png") is None


def test_owner_write_areas(files_backend: FilesEnv) -> None:
    env = files_backend
    if env.backend != "local":
        # A POST policy cannot be bound to the file's state: use uploadUrl there.
        e = env.error(ALICE, "uploadForm", path="inbox/a.png", contentType="image/png")
        assert isinstance(e, InvalidArgument) and e.details == {"fallback": "uploadUrl"}
        return
    form = env.call(ALICE, "uploadForm", path="inbox/a.png", contentType="image/png")
    assert post_form(env, form, b"one").status_code == 200
    # Bound to the key being empty when it was made: it wrote once.
    r = post_form(env, form, b"two")
    assert r.status_code == 409 and r.json()["error"]["code"] == "Conflict"
    assert (
        env.error(BOB, "uploadForm", path="inbox/a.png", contentType="image/png").code == "PermissionDenied"
    )
    again = env.call(ALICE, "uploadForm", path="inbox/a.png", contentType="image/png")
    assert post_form(env, again, b"three").status_code == 200
    assert env.download(ALICE, "inbox/a.png").content == b"three"


def test_malformed_forms_are_refused_and_store_nothing(local_files: FilesEnv) -> None:
    env = local_files
    form = env.call(ALICE, "uploadForm", path="m.png", contentType="image/png")
    url = form["url"]

    def post(body: bytes, content_type: str = "multipart/form-data; boundary=XyZ") -> httpx.Response:
        return env.http.post(url, content=body, headers={"content-type": content_type})

    part = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nDATA\r\n'
    other = b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n'
    cases = {
        "not multipart": post(b"DATA", "image/png"),
        "no boundary": post(part + b"--XyZ--\r\n", "multipart/form-data"),
        "no file part": post(other + b"--XyZ--\r\n"),
        "two file parts": post(part + part + b"--XyZ--\r\n"),
        "cut short": post(part[:-10]),
        "garbage": post(b"--nope\r\n\r\n"),
        "huge fields": post(
            b'--XyZ\r\nContent-Disposition: form-data; name="n"\r\n\r\n' + b"x" * 70_000 + b"\r\n--XyZ--\r\n"
        ),
    }
    for what, r in cases.items():
        assert r.status_code in (400, 413) and r.json()["error"]["code"] in (
            "InvalidArgument",
            "PayloadTooLarge",
        ), (
            what,
            r.status_code,
            r.text,
        )
    assert env.call(ALICE, "stat", path="m.png") is None
    # Fields before and after the file are fine.
    assert post(other + part + other + b"--XyZ--\r\n").status_code == 200
    assert env.download(ALICE, "m.png").content == b"DATA"
    # A declared length past the limit is refused before the body is read.
    split = urlsplit(url)
    with socket.create_connection((split.hostname, split.port), timeout=10) as sock:
        sock.sendall(
            f"POST {split.path}?{split.query} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n"
            "Content-Type: multipart/form-data; boundary=XyZ\r\n\r\n".encode()
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 413")


def test_a_large_form_upload_streams_in_bounded_memory(make_config: Callable[..., Config]) -> None:
    """24 MiB through the real HTTP server, the client sending it as a generator: the
    process's Python allocations stay bounded (a server that buffered the file would need
    24 MiB more). bench/files.py measures a 200 MB upload against ``minibase serve``."""
    size = 24 * 1024 * 1024
    config = files_config(make_config, "file://files", max_size="32MiB")
    with local_env(config) as env:
        form = env.call(
            ALICE, "uploadForm", path="big.bin", contentType="application/octet-stream", size=size
        )
        chunk = b"\xab" * (1024 * 1024)
        boundary = "streamtestboundary"

        def body() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            for _ in range(size // len(chunk)):
                yield chunk
            yield f"\r\n--{boundary}--\r\n".encode()

        tracemalloc.start()
        try:
            start = time.perf_counter()
            r = env.http.post(
                form["url"],
                content=body(),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            )
            took = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert r.status_code == 200, r.text
        assert env.call(ALICE, "stat", path="big.bin")["size"] == size
        print(f"form upload: {size / 2**20:.0f} MiB in {took:.1f}s, traced peak {peak / 2**20:.2f} MiB")
        assert peak < 8 * 1024 * 1024, (
            f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB upload ({took:.1f}s)"
        )


@pytest.mark.parametrize("size_given", [True, False])
def test_python_client_upload_form(size_given: bool, local_files: FilesEnv) -> None:
    """The op through the Python client's helper event shape (the event it builds)."""
    from minibase.client import Files

    events: list[dict[str, Any]] = []

    class Fake:
        def _data(self, function: str, event: dict[str, Any]) -> Any:
            events.append(event)
            return local_files.call(ALICE, event.pop("op"), **event)

    form = Files(Fake()).upload_form("c.png", "image/png", 3 if size_given else None)  # type: ignore[arg-type]
    assert post_form(local_files, form, b"abc").status_code == 200
    assert ("size" in events[0]) is size_given
