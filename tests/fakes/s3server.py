"""A real S3-protocol server on loopback for the tests: moto's standalone server, behind a
gateway that checks presigned URLs the way S3 does.

moto (``pip install "moto[server]"``) speaks the S3 protocol — buckets, PUT/GET/HEAD,
ListObjectsV2, metadata — but accepts any signature and ignores expiry. So the tests
talk to :class:`SigV4Gateway`, which verifies AWS Signature Version 4 *query* signatures
(presigned URLs) independently of the SDK — canonical request, signed headers, credential
scope, ``X-Amz-Date`` + ``X-Amz-Expires`` against its own clock — refuses what S3 would
refuse (403 ``SignatureDoesNotMatch``/``AccessDenied``, anonymous writes included) and
forwards the rest to moto. An anonymous GET/HEAD goes to moto, which allows it only where
the bucket's policy lets anyone read (:func:`allow_public_read`), as S3 does. Requests signed in the ``Authorization`` header (the server's
own SDK calls) are passed through unchecked.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import httpx
from starlette.types import Receive, Scope, Send

from tests.support.live import run_uvicorn

ACCESS_KEY = "AKIDMINIBASETEST"
SECRET_KEY = "minibase-test-secret-key-0123456789"
REGION = "us-east-1"

_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"host"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_server(startup_timeout: float = 30.0) -> Iterator[str]:
    """moto's standalone S3 server in a subprocess on 127.0.0.1; yields its URL."""
    port = _free_port()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {proc.returncode}")
            try:
                if httpx.get(url + "/moto-api/", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


class SigV4Gateway:
    """ASGI: verify presigned (query-signed) requests like S3, then proxy to ``upstream``."""

    def __init__(self, upstream: str, credentials: dict[str, str]) -> None:
        self.upstream = upstream
        self.credentials = credentials
        self.offset = 0.0  # seconds added to the gateway's clock (expiry tests)
        self.checked = 0  # presigned requests verified (so tests can tell the check ran)

    def now(self) -> float:
        return time.time() + self.offset

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        headers = {k.lower(): v for k, v in scope["headers"]}
        raw_query = scope.get("query_string", b"").decode("ascii")
        pairs = [
            (unquote(a), unquote(b)) for a, _, b in (p.partition("=") for p in raw_query.split("&") if p)
        ]
        query = dict(pairs)
        ctype = headers.get(b"content-type", b"")
        if scope["method"] == "POST" and ctype.startswith(b"multipart/form-data") and not query:
            # A browser-style form upload (PostObject): the policy decides.
            body = await _read_all(receive)
            refusal = self._verify_post(ctype, body)
            if refusal is not None:
                await self._reply(send, 403, _error(*refusal))
                return
            self.checked += 1
            await self._forward(scope, _replay(body), send, headers)
            return
        if "X-Amz-Signature" in query:
            refusal = self._verify(scope, headers, pairs, query)
            if refusal is not None:
                await self._reply(send, 403, _error(*refusal))
                return
            self.checked += 1
        elif b"authorization" not in headers and scope["method"] not in ("GET", "HEAD"):
            await self._reply(send, 403, _error("AccessDenied", "Access Denied"))
            return
        await self._forward(scope, receive, send, headers)

    def _verify_post(self, content_type: bytes, body: bytes) -> tuple[str, str] | None:
        """A POST policy as S3 checks it: the signature over the base64 policy (SigV4), its
        expiration, and every condition against the form's fields and the file's size;
        every field but the policy, the signature, the file and ``x-ignore-*`` must be
        covered by a condition."""
        fields, file_size = _form_fields(content_type, body)
        try:
            policy_b64 = fields["policy"]
            signature = fields["x-amz-signature"]
            credential = fields["x-amz-credential"]
            amz_date = fields["x-amz-date"]
            algorithm = fields["x-amz-algorithm"]
        except KeyError as e:
            return ("InvalidArgument", f"form field {e.args[0]} is missing")
        if file_size is None:
            return ("InvalidArgument", "POST requires exactly one file upload per request.")
        key_id, _, scope_text = credential.partition("/")
        secret = self.credentials.get(key_id)
        if secret is None:
            return ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        date, region, service, terminator = [*scope_text.split("/"), "", "", "", ""][:4]
        if algorithm != "AWS4-HMAC-SHA256" or not amz_date.startswith(date) or service != "s3":
            return ("InvalidArgument", "bad x-amz-algorithm, x-amz-date or credential scope")
        key = ("AWS4" + secret).encode()
        for part in (date, region, service, terminator):
            key = hmac.digest(key, part.encode(), "sha256")
        expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not match.")
        policy = json.loads(base64.b64decode(policy_b64))
        expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if self.now() > expiration.timestamp():
            return ("AccessDenied", "Invalid according to Policy: Policy expired.")
        covered = {"policy", "x-amz-signature", "file"}
        for cond in policy["conditions"]:
            if isinstance(cond, dict):
                [(name, value)] = cond.items()
                cond = ["eq", f"${name}", value]
            op, *args = cond
            if op == "content-length-range":
                if not int(args[0]) <= file_size <= int(args[1]):
                    return ("EntityTooLarge" if file_size > int(args[1]) else "EntityTooSmall", "size")
                continue
            name = args[0].lstrip("$").lower()
            covered.add(name)
            have = fields.get(name, "")
            if name == "bucket":
                continue  # the URL's bucket; moto checks it exists
            if (op == "eq" and have != args[1]) or (op == "starts-with" and not have.startswith(args[1])):
                return ("AccessDenied", f"Invalid according to Policy: Policy Condition failed: {cond}")
        extra = [f for f in fields if f not in covered and not f.startswith("x-ignore-")]
        if extra:
            return ("AccessDenied", f"Invalid according to Policy: Extra input fields: {extra[0]}")
        return None

    def _verify(
        self, scope: Scope, headers: dict[bytes, bytes], pairs: list[tuple[str, str]], query: dict[str, str]
    ) -> tuple[str, str] | None:
        try:
            algorithm = query["X-Amz-Algorithm"]
            credential = query["X-Amz-Credential"]
            amz_date = query["X-Amz-Date"]
            expires = int(query["X-Amz-Expires"])
            signed_headers = query["X-Amz-SignedHeaders"]
            signature = query["X-Amz-Signature"]
        except (KeyError, ValueError):
            return ("AuthorizationQueryParametersError", "missing or malformed X-Amz parameters")
        if algorithm != "AWS4-HMAC-SHA256":
            return ("AuthorizationQueryParametersError", "unsupported algorithm")
        key_id, _, scope_text = credential.partition("/")
        secret = self.credentials.get(key_id)
        if secret is None:
            return ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        date, region, service, terminator = [*scope_text.split("/"), "", "", "", ""][:4]
        if service != "s3" or terminator != "aws4_request" or not amz_date.startswith(date):
            return ("AuthorizationQueryParametersError", "bad credential scope")
        if not 1 <= expires <= 604800:
            return ("AuthorizationQueryParametersError", "X-Amz-Expires must be 1..604800")
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return ("AuthorizationQueryParametersError", "bad X-Amz-Date")
        now = self.now()
        if now > signed_at + expires:
            return ("AccessDenied", "Request has expired")
        if now < signed_at - 900:
            return ("AccessDenied", "Request is not yet valid")
        canonical_headers = []
        for name in signed_headers.split(";"):
            value = headers.get(name.encode())
            if value is None:
                return ("SignatureDoesNotMatch", f"signed header {name} is missing")
            canonical_headers.append(f"{name}:{' '.join(value.decode('latin-1').split())}\n")
        canonical_query = "&".join(
            f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
        )
        raw_path = scope.get("raw_path") or scope["path"].encode()
        canonical_request = "\n".join(
            [
                scope["method"],
                raw_path.decode("ascii"),
                canonical_query,
                "".join(canonical_headers),
                signed_headers,
                "UNSIGNED-PAYLOAD",
            ]
        )
        string_to_sign = "\n".join(
            [
                algorithm,
                amz_date,
                f"{date}/{region}/{service}/{terminator}",
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = ("AWS4" + secret).encode()
        for part in (date, region, service, terminator):
            key = hmac.digest(key, part.encode(), "sha256")
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return (
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    async def _forward(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        target = self.upstream + (scope.get("raw_path") or scope["path"].encode()).decode("ascii")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("ascii")
        fwd_headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        # The upstream is plain HTTP on loopback: no CA bundle to load (~50 ms a request).
        async with httpx.AsyncClient(timeout=30, verify=False) as client:  # noqa: S501 - plain http
            r = await client.request(scope["method"], target, headers=fwd_headers, content=bytes(body))
        out = [
            (k.encode(), v.encode())
            for k, v in r.headers.multi_items()
            if k.encode().lower() not in _HOP_BY_HOP and k.lower() != "content-length"
        ]
        content = b"" if scope["method"] == "HEAD" else r.content
        length = r.headers.get("content-length", str(len(content)))
        out.append((b"content-length", length.encode()))
        await send({"type": "http.response.start", "status": r.status_code, "headers": out})
        await send({"type": "http.response.body", "body": content})

    @staticmethod
    async def _reply(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/xml"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _read_all(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes) -> Receive:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _form_fields(content_type: bytes, body: bytes) -> tuple[dict[str, str], int | None]:
    """The form's fields (names lower-cased, as S3 compares them) and its file's size."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    fields: dict[str, str] = {}
    parts: list[dict[str, Any]] = []
    header = [b"", b""]

    def on_part_begin() -> None:
        parts.append({"name": "", "data": bytearray(), "file": False})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        if header[0].lower() == b"content-disposition":
            _, p = parse_options_header(header[1])
            parts[-1]["name"] = p.get(b"name", b"").decode()
            parts[-1]["file"] = b"filename" in p
        header[0] = header[1] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1]["data"] += data[start:end]

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    parser.write(body)
    size = None
    for part in parts:
        if part["name"] == "file":
            size = len(part["data"])
        else:
            fields[part["name"].lower()] = part["data"].decode()
    return fields, size


def allow_public_read(client: Any, bucket: str, prefixes: Iterable[str]) -> None:
    """The bucket policy public areas need: anyone may GET objects under ``prefixes``."""
    resources = [f"arn:aws:s3:::{bucket}/{p}*" for p in prefixes]
    if not resources:
        return
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": resources}
    client.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )


@contextlib.contextmanager
def s3_server() -> Iterator[tuple[str, SigV4Gateway]]:
    """moto behind the verifying gateway; yields the gateway's URL (the S3 endpoint) and it."""
    with moto_server() as upstream:
        gateway = SigV4Gateway(upstream, {ACCESS_KEY: SECRET_KEY})
        with run_uvicorn(gateway) as url:
            yield url, gateway
