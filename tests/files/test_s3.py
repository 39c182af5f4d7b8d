"""What the S3 backend's presigned URLs bind, and that the test endpoint really checks them."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from minibase.config import parse_s3_url
from minibase.errors import Internal, Unavailable
from minibase.files.store.s3 import S3FileStore
from tests.fakes.s3server import SigV4Gateway
from tests.fakes.server import free_port, serve_app
from tests.support.files_harness import FilesEnv, send_upload

ALICE = "u_alice000000000000000"


@pytest.mark.parametrize("files_backend", ["s3"], indirect=True)
def test_presigned_upload_binds_size_type_and_uploader(
    files_backend: FilesEnv, s3_endpoint: tuple[str, SigV4Gateway]
) -> None:
    env = files_backend
    _, gateway = s3_endpoint
    grant = env.call(ALICE, "uploadUrl", path="a/b.txt", contentType="text/plain", size=3)
    url = urlsplit(grant["url"])
    query = dict(parse_qsl(url.query))
    assert url.path.endswith(f"/users/{ALICE}/a/b.txt")
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert 890 <= int(query["X-Amz-Expires"]) <= 900  # what is left of files.url_ttl (15 min)
    signed = query["X-Amz-SignedHeaders"].split(";")
    assert {"content-length", "content-type", "host", "x-amz-meta-uploader"} <= set(signed)
    assert grant["headers"] == {"Content-Type": "text/plain", "x-amz-meta-uploader": ALICE}

    before = gateway.checked
    assert send_upload(grant, b"abc").status_code == 200
    assert gateway.checked == before + 1
    # The uploader header is signed: another uid is refused.
    assert send_upload(grant, b"abc", headers={"x-amz-meta-uploader": "u_mallory"}).status_code == 403
    stat = env.call(ALICE, "stat", path="a/b.txt")
    assert stat["size"] == 3 and stat["contentType"] == "text/plain"
    info = env.call(ALICE, "downloadUrl", path="a/b.txt")
    assert dict(parse_qsl(urlsplit(info["url"]).query))["X-Amz-SignedHeaders"] == "host"


def test_key_prefix_inside_the_bucket() -> None:
    loc = parse_s3_url(
        "s3://bucket-1/apps/todo?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true"
    )
    store = S3FileStore(loc)
    assert store._full("users/u/a") == "apps/todo/users/u/a"


@pytest.mark.parametrize("files_backend", ["s3"], indirect=True)
def test_owner_area_upload_condition_is_a_signed_header(files_backend: FilesEnv) -> None:
    """The conditional-write header cannot be dropped or changed by the client: it is one
    of the signed headers, so the gateway (like S3) refuses the URL without it."""
    env = files_backend
    new = env.call(ALICE, "uploadUrl", path="public/n.txt", contentType="text/plain", size=3)
    assert new["headers"]["If-None-Match"] == "*"
    assert "if-none-match" in dict(parse_qsl(urlsplit(new["url"]).query))["X-Amz-SignedHeaders"].split(";")
    stripped = {k: v for k, v in new["headers"].items() if k != "If-None-Match"}
    assert send_upload({**new, "headers": stripped}, b"abc").status_code == 403
    assert env.call(ALICE, "stat", path="public/n.txt") is None
    assert send_upload(new, b"abc").status_code == 200

    # A replacement is bound to the ETag the owner check saw.
    info = asyncio.run(env.store.stat("public/n.txt"))
    assert info is not None and info.version == info.etag
    again = env.call(ALICE, "uploadUrl", path="public/n.txt", contentType="text/plain", size=3)
    assert again["headers"]["If-Match"] == info.etag
    assert "if-match" in dict(parse_qsl(urlsplit(again["url"]).query))["X-Amz-SignedHeaders"].split(";")
    r = send_upload(again, b"def", headers={"If-Match": "*"})
    assert r.status_code == 403 and "SignatureDoesNotMatch" in r.text
    assert send_upload(again, b"def").status_code == 200
    assert env.download(ALICE, "public/n.txt").content == b"def"


# ------------------------------------------------------------------ outages


def _store(endpoint: str) -> S3FileStore:
    loc = parse_s3_url(f"s3://bucket-1?endpoint={endpoint}&region=us-east-1&path_style=true")
    return S3FileStore(loc, access_key_id="AKIDTEST", secret_access_key="secret-test")


def test_an_endpoint_that_refuses_connections_is_unavailable() -> None:
    store = _store(f"http://127.0.0.1:{free_port()}")

    async def main() -> None:
        for request in (
            lambda: store.stat("users/u/a.txt"),
            lambda: store.list("users/u/", start_after=None, limit=10),
            lambda: store.remove("users/u/a.txt"),
        ):
            with pytest.raises(Unavailable, match=r"^the file store is unavailable$") as e:
                await request()
            assert e.value.status == 503 and e.value.retry_after >= 1
        await store.close()

    asyncio.run(main())


def _answering(status: int, code: str) -> Starlette:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>no</Message></Error>"

    async def handle(request: Request) -> Response:
        return Response(body, status_code=status, media_type="application/xml")

    methods = ["GET", "HEAD", "PUT", "DELETE", "POST"]
    return Starlette(routes=[Route("/{path:path}", handle, methods=methods)])


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (503, "SlowDown", Unavailable),
        (500, "InternalError", Unavailable),
        (503, "ServiceUnavailable", Unavailable),
        (403, "AccessDenied", Internal),
        (400, "InvalidBucketName", Internal),
    ],
)
def test_server_errors_are_unavailable_refusals_internal(
    status: int, code: str, error: type[Exception]
) -> None:
    with serve_app(_answering(status, code)) as url:
        store = _store(url)

        async def main() -> None:
            with pytest.raises(error) as e:
                await store.list("users/u/", start_after=None, limit=10)
            assert type(e.value) is error
            await store.close()

        asyncio.run(main())
