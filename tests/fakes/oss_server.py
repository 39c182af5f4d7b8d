"""A fake Alibaba OSS endpoint on loopback that checks OSS's own V4 signatures
(``OSS4-HMAC-SHA256``), written from OSS's documentation and sharing no code with minibase:

* a query-signed GET/HEAD (``x-oss-signature-version``, ``x-oss-credential``,
  ``x-oss-date``, ``x-oss-expires``, ``x-oss-signature``; ``x-oss-security-token`` with STS):
  the canonical request (verb, ``/bucket/key``, every query parameter but the signature
  sorted, the ``x-oss-*``/``content-type``/``content-md5`` headers and the additional ones,
  ``UNSIGNED-PAYLOAD``), the scope, the expiry against the fake's clock;
* a PostObject (``POST /bucket``, multipart): the V4 fields, the hex HMAC-SHA256 of the
  base64 policy with the derived key, the policy's ``expiration`` and every condition
  (``{name: value}``, ``eq``, ``starts-with``, ``in``, ``content-length-range``) against
  the form's fields (names compared case-insensitively, as OSS does) and the file's size.

What passes is stored in moto (the S3 fake's upstream): a PostObject becomes a PUT of the
file with its ``Content-Type`` and ``x-oss-meta-*`` (as ``x-amz-meta-*``); a GET is
forwarded. It renders no image: a GET with ``x-oss-process`` answers the original bytes
with ``x-fake-oss-process: <the process it saw>``. Requests signed in the
``Authorization`` header (the server's own SDK calls through OSS's S3 API) pass unchecked.
Paths are path-style only (``/bucket/key``), as OSS serves an IP endpoint.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import httpx
from starlette.types import Receive, Scope, Send

from tests.fakes.s3server import _error, _read_all
from tests.support.live import run_uvicorn

ACCESS_KEY = "LTAIminibaseOssTest"
SECRET_KEY = "oss-test-secret-0123456789abcdef"
STS_KEY = "STS.minibaseOssTest"
STS_SECRET = "oss-sts-secret-abcdef0123456789"
STS_TOKEN = "CAIS+sts/token==minibase"
REGION = "oss-cn-hangzhou"  # as the oss:// url names it; V4 scopes say cn-hangzhou
ALGORITHM = "OSS4-HMAC-SHA256"
PROCESS_HEADER = "x-fake-oss-process"

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}
_SIGNING = {
    "x-oss-signature-version",
    "x-oss-credential",
    "x-oss-date",
    "x-oss-expires",
    "x-oss-signature",
    "x-oss-additional-headers",
    "x-oss-security-token",
}


def _v4_encode(text: str, keep_slash: bool) -> str:
    # OSS V4: unreserved characters (A-Z a-z 0-9 - _ . ~) stay, all else is %XX of UTF-8.
    out = []
    for byte in text.encode():
        c = chr(byte)
        if (c.isascii() and (c.isalnum() or c in "-_.~")) or (keep_slash and c == "/"):
            out.append(c)
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _derived_key(secret: str, date: str, region: str) -> bytes:
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class OssGateway:
    """ASGI: verify OSS V4 signatures like OSS, then store in / read from ``upstream`` (moto)."""

    def __init__(self, upstream: str, credentials: dict[str, tuple[str, str | None]]) -> None:
        self.upstream = upstream
        self.credentials = credentials  # access key id → (secret, STS token or None)
        self.offset = 0.0
        self.checked = 0  # signatures verified and accepted

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
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_query = scope.get("query_string", b"").decode("ascii")
        pairs = [
            (unquote(a), unquote(b)) for a, _, b in (p.partition("=") for p in raw_query.split("&") if p)
        ]
        query = dict(pairs)
        path = unquote((scope.get("raw_path") or scope["path"].encode()).decode("ascii"))
        body = await _read_all(receive)
        method = scope["method"]
        if (
            method == "POST"
            and headers.get("content-type", "").startswith("multipart/form-data")
            and not query
        ):
            refusal, put = self._post_object(path, headers["content-type"], body)
            if refusal is not None:
                await _reply(send, 403, _error(*refusal))
                return
            assert put is not None
            self.checked += 1
            target, put_headers, data = put
            r = await self._upstream("PUT", target, put_headers, data)
            await _reply(
                send,
                204 if r.status_code == 200 else r.status_code,
                b"" if r.status_code == 200 else r.content,
            )
            return
        if "x-oss-signature" in query:
            refusal = self._verify_url(method, path, headers, pairs, query)
            if refusal is not None:
                await _reply(send, 403, _error(*refusal))
                return
            self.checked += 1
            await self._read(method, path, pairs, headers, signed=True, send=send)
            return
        if "authorization" in headers:  # the server's SDK (S3 API): passed through
            r = await self._upstream(method, path, _forwardable(headers), body, raw_query)
            await _relay(send, method, r)
            return
        if method in ("GET", "HEAD"):  # anonymous: moto applies the bucket policy
            await self._read(method, path, pairs, headers, signed=False, send=send)
            return
        await _reply(send, 403, _error("AccessDenied", "You have no right to access this object."))

    # ---------------------------------------------------------------- checks

    def _scope(self, credential: str, moment: str) -> tuple[str, str, str] | tuple[str, str]:
        """(secret, date, region) from ``AK/date/region/oss/aliyun_v4_request``, or a refusal."""
        parts = credential.split("/")
        if len(parts) != 5 or parts[3] != "oss" or parts[4] != "aliyun_v4_request":
            return ("InvalidArgument", "x-oss-credential is malformed")
        key_id, date, region = parts[:3]
        if key_id not in self.credentials:
            return ("InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")
        if not moment.startswith(date) or len(date) != 8:
            return ("InvalidArgument", "the credential's date is not x-oss-date's")
        return self.credentials[key_id][0], date, region

    def _token_refusal(self, credential: str, token: str | None) -> tuple[str, str] | None:
        expected = self.credentials[credential.split("/")[0]][1]
        if expected is not None and token != expected:
            return ("InvalidAccessKeyId", "The security token you provided is invalid.")
        return None

    def _verify_url(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        pairs: list[tuple[str, str]],
        query: dict[str, str],
    ) -> tuple[str, str] | None:
        if query.get("x-oss-signature-version") != ALGORITHM:
            return ("InvalidArgument", "x-oss-signature-version must be OSS4-HMAC-SHA256")
        try:
            credential, moment = query["x-oss-credential"], query["x-oss-date"]
            expires = int(query["x-oss-expires"])
            signed_at = datetime.strptime(moment, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except (KeyError, ValueError):
            return ("InvalidArgument", "x-oss-credential, x-oss-date and x-oss-expires are required")
        found = self._scope(credential, moment)
        if len(found) == 2:
            return found
        secret, date, region = found
        if not 1 <= expires <= 7 * 86400:
            return ("InvalidArgument", "x-oss-expires must be 1..604800")
        now = self.now()
        if now > signed_at + expires:
            return ("AccessDenied", "Request has expired.")
        if now < signed_at - 900:
            return ("AccessDenied", "Request is not yet valid.")
        refusal = self._token_refusal(credential, query.get("x-oss-security-token"))
        if refusal is not None:
            return refusal
        additional = [h for h in query.get("x-oss-additional-headers", "").split(";") if h]
        canonical_headers = "".join(
            f"{name}:{value.strip()}\n"
            for name, value in sorted(headers.items())
            if name.startswith("x-oss-") or name in ("content-type", "content-md5") or name in additional
        )
        canonical_query = "&".join(
            f"{k}={v}" if v else k
            for k, v in sorted(
                (_v4_encode(k, False), _v4_encode(v, False)) for k, v in pairs if k != "x-oss-signature"
            )
        )
        canonical_request = "\n".join(
            [
                method,
                _v4_encode(path, True),
                canonical_query,
                canonical_headers,
                ";".join(additional),
                "UNSIGNED-PAYLOAD",
            ]
        )
        string_to_sign = "\n".join(
            [
                ALGORITHM,
                moment,
                f"{date}/{region}/oss/aliyun_v4_request",
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        expected = hmac.new(
            _derived_key(secret, date, region), string_to_sign.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, query["x-oss-signature"]):
            return (
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    def _post_object(
        self, path: str, content_type: str, body: bytes
    ) -> tuple[tuple[str, str] | None, tuple[str, dict[str, str], bytes] | None]:
        bucket = path.strip("/")
        if not bucket or "/" in bucket:
            return ("MethodNotAllowed", "PostObject goes to the bucket, not an object"), None
        fields, data = _parse_form(content_type, body)
        if data is None:
            return ("InvalidArgument", "the form has no file"), None
        if fields.get("x-oss-signature-version") != ALGORITHM:
            return ("InvalidArgument", "x-oss-signature-version must be OSS4-HMAC-SHA256"), None
        try:
            credential, moment = fields["x-oss-credential"], fields["x-oss-date"]
            policy_b64, signature, key = fields["policy"], fields["x-oss-signature"], fields["key"]
            signed_at = datetime.strptime(moment, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except (KeyError, ValueError) as e:
            return ("InvalidArgument", f"form field missing or malformed: {e}"), None
        found = self._scope(credential, moment)
        if len(found) == 2:
            return found, None
        secret, date, region = found
        now = self.now()
        if signed_at > now + 900 or now > signed_at + 7 * 86400:
            return ("AccessDenied", "x-oss-date is out of range"), None
        refusal = self._token_refusal(credential, fields.get("x-oss-security-token"))
        if refusal is not None:
            return refusal, None
        expected = hmac.new(
            _derived_key(secret, date, region), policy_b64.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not match."), None
        policy = json.loads(base64.b64decode(policy_b64))
        if set(policy) != {"expiration", "conditions"}:
            return ("InvalidPolicyDocument", "the policy holds expiration and conditions only"), None
        expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        if now > expiration.timestamp():
            return ("AccessDenied", "Invalid according to Policy: Policy expired."), None
        seen: set[str] = set()
        for cond in policy["conditions"]:
            if isinstance(cond, dict):
                [(name, value)] = cond.items()
                cond = ["eq", f"${name}", value]
            op, *args = cond
            if op == "content-length-range":
                if not int(args[0]) <= len(data) <= int(args[1]):
                    code = "EntityTooLarge" if len(data) > int(args[1]) else "EntityTooSmall"
                    return (code, "Your proposed upload is outside the size range."), None
                continue
            name = str(args[0]).lstrip("$").lower()
            seen.add(name)
            have = bucket if name == "bucket" else fields.get(name, "")
            if not _holds(op, have, args[1]):
                return ("AccessDenied", f"Invalid according to Policy: Policy Condition failed: {cond}"), None
        # V4: the policy must name the signing fields it was signed with.
        for required in ("x-oss-signature-version", "x-oss-credential", "x-oss-date"):
            if required not in seen:
                return ("AccessDenied", f"Invalid according to Policy: {required} is not in the policy"), None
        put = {"content-type": fields.get("content-type", "application/octet-stream")}
        put.update({"x-amz-meta-" + k[11:]: v for k, v in fields.items() if k.startswith("x-oss-meta-")})
        return None, (f"/{bucket}/{key}", put, data)

    # --------------------------------------------------------------- upstream

    async def _read(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        headers: dict[str, str],
        *,
        signed: bool,
        send: Send,
    ) -> None:
        process = dict(pairs).get("x-oss-process")
        rest = [(k, v) for k, v in pairs if k not in _SIGNING and k != "x-oss-process"]
        sent = _forwardable(headers)
        if signed:  # moto takes any header signature as the owner's
            sent["authorization"] = (
                f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20250101/us-east-1/s3/aws4_request, "
                "SignedHeaders=host, Signature=0"
            )
        raw = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in rest)
        r = await self._upstream(method, path, sent, b"", raw)
        extra = [(PROCESS_HEADER, process)] if process is not None and r.status_code < 300 else []
        await _relay(send, method, r, extra)

    async def _upstream(
        self, method: str, path: str, headers: dict[str, str], body: bytes, raw_query: str = ""
    ) -> httpx.Response:
        target = self.upstream + quote(path, safe="/") + (f"?{raw_query}" if raw_query else "")
        async with httpx.AsyncClient(timeout=30, verify=False) as client:  # noqa: S501 - plain http
            return await client.request(method, target, headers=headers, content=body)


def _holds(op: str, have: str, want: Any) -> bool:
    if op == "eq":
        return bool(have == want)
    if op == "starts-with":
        return have.startswith(want)
    if op in ("in", "not-in"):
        return (have in want) == (op == "in")
    return False  # an operator OSS does not know fails the policy


def _forwardable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _HOP}


async def _relay(send: Send, method: str, r: httpx.Response, extra: Sequence[tuple[str, str]] = ()) -> None:
    out = [(k.encode(), v.encode()) for k, v in r.headers.multi_items() if k.lower() not in _HOP]
    out += [(k.encode(), v.encode()) for k, v in extra]
    content = b"" if method == "HEAD" else r.content
    out.append((b"content-length", r.headers.get("content-length", str(len(content))).encode()))
    await send({"type": "http.response.start", "status": r.status_code, "headers": out})
    await send({"type": "http.response.body", "body": content})


async def _reply(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    if body:
        headers.append((b"content-type", b"application/xml"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
    """The form's fields (names lower-cased: OSS compares them case-insensitively) and the
    ``file`` part's bytes."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type.encode())
    parts: list[dict[str, Any]] = []
    header = [b"", b""]

    def on_part_begin() -> None:
        parts.append({"name": "", "data": bytearray()})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        if header[0].lower() == b"content-disposition":
            parts[-1]["name"] = parse_options_header(header[1])[1].get(b"name", b"").decode()
        header[0] = header[1] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1]["data"] += data[start:end]

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
    }
    MultipartParser(params[b"boundary"], callbacks).write(body)  # type: ignore[arg-type]
    fields: dict[str, str] = {}
    data = None
    for part in parts:
        if part["name"].lower() == "file":
            data = bytes(part["data"])
        else:
            fields[part["name"].lower()] = part["data"].decode()
    return fields, data


@contextlib.contextmanager
def oss_server(upstream: str) -> Iterator[tuple[str, OssGateway]]:
    """The fake OSS endpoint in front of moto at ``upstream``; yields its URL and itself."""
    gateway = OssGateway(upstream, {ACCESS_KEY: (SECRET_KEY, None), STS_KEY: (STS_SECRET, STS_TOKEN)})
    with run_uvicorn(gateway) as url:
        yield url, gateway
