"""``PUT/POST/GET/HEAD /files/{key}``: the local file backend's signed URLs, as an ASGI app.

Mount it where the store's URLs point (``/files`` by default): either with Starlette's
``Mount("/files", app)`` or by passing requests whose ``scope["path"]`` is the full
``/files/{key}``. It holds no business logic: the ``files`` function decided who may do
what when it signed the URL; this app only checks the signature, the expiry and what the
URL binds, and moves bytes.

* ``PUT``: ``Content-Type`` must equal the signed one and the body must be exactly the
  signed size (a larger ``Content-Length`` or body is refused with 413 as soon as it is
  seen; nothing is stored). The body streams to a temp file that replaces the target
  only once complete and fsynced. Answers 200 with an ``ETag``. A URL signed with an
  ``Expect`` (``owner``-write areas) stores only while the key still holds no file / the
  version it was signed for — checked before the body is read and again under the commit
  lock right before the rename; otherwise 409 ``Conflict`` and nothing changes.
* ``POST`` (``uploadForm``): a ``multipart/form-data`` body whose part ``file`` is stored
  like a PUT's body, streamed through python-multipart's parser to the temp file (never
  held in memory), its size within the signed range and its content type the signed one
  (whatever the part says); other fields are read and dropped (at most 64 KiB). Answers
  200 ``{"size": n}`` with an ``ETag``.
* ``GET``/``HEAD``: the bytes with their ``Content-Type``, ``Content-Length``, ``ETag``,
  ``Last-Modified``, ``Cache-Control`` (``private`` unless the URL was signed for a public
  area) and, since the files are user content served from the API's origin,
  ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: sandbox``.
  ``If-None-Match`` / ``If-Modified-Since`` answer 304; a single ``Range`` answers 206
  (``If-Range`` honoured; several ranges get the whole file), one past the end 416. A
  file in a public-read area also has a stable URL without any query, which never
  expires (``Cache-Control: public, max-age=<files.public_max_age>``). A ``Thumb``
  (signed) or ``thumb`` (stable URL) parameter serves that thumbnail of the file instead:
  rendered on first request, then cached. A URL signed with a ``Version`` (``owner``-read areas)
  serves only that version: 404 once the file was replaced or removed.

Refusals use the error envelope: 403 ``PermissionDenied`` for a missing, forged or
expired signature or a header that differs from the signed one, 404, 405, 409, 413.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope, Send

from ..errors import (
    InvalidArgument,
    MethodNotAllowed,
    MinibaseError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    error_body,
)
from ..util.ids import request_id
from .content_types import browser_active
from .multipart import MAX_FIELD_BYTES, boundary_of, file_part
from .paths import check_path
from .store.local import LocalFileStore
from .store.local_io import OpenFile, in_thread
from .store.local_urls import FORM_FIELD, DownloadGrant

__all__ = ["LocalFilesApp"]

_MAX_QUERY_FIELDS = 16
_FORM_OVERHEAD = 64 * 1024  # part headers and boundaries, generously


class _Disconnected(Exception):
    """The client went away mid-upload."""


class LocalFilesApp:
    def __init__(self, store: LocalFileStore, *, mount: str | None = None) -> None:
        self.store = store
        self.mount = "/" + (mount if mount is not None else store.mount).strip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # when served on its own
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        rid = request_id(scope)
        method = scope["method"]
        try:
            key = self._key(scope)
            if method == "PUT":
                await self._put(scope, receive, send, key, rid)
            elif method == "POST":
                await self._post(scope, receive, send, key, rid)
            elif method in ("GET", "HEAD"):
                await self._get(scope, send, key, rid, head=method == "HEAD")
            else:
                raise MethodNotAllowed(f"{method} is not allowed here (PUT, POST, GET, HEAD)")
        except _Disconnected:
            return
        except MinibaseError as e:
            extra = [(b"allow", b"PUT, POST, GET, HEAD")] if isinstance(e, MethodNotAllowed) else []
            await _send_error(send, e, rid, extra, close=method in ("PUT", "POST"))

    def _key(self, scope: Scope) -> str:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root.endswith(self.mount) and path.startswith(root + "/"):
            key = path[len(root) + 1 :]  # Starlette's Mount: root_path ends with the mount
        elif path.startswith(self.mount + "/"):
            key = path[len(self.mount) + 1 :]
        else:
            raise NotFound("no such file")
        try:
            return check_path(key, "key")
        except InvalidArgument:
            raise NotFound("no such file") from None

    @staticmethod
    def _query(scope: Scope) -> dict[str, str]:
        try:
            pairs = parse_qsl(
                scope.get("query_string", b"").decode("ascii"),
                keep_blank_values=True,
                errors="strict",
                max_num_fields=_MAX_QUERY_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise PermissionDenied("the signed URL's query is malformed") from None
        query: dict[str, str] = {}
        for name, value in pairs:
            if name in query:
                raise PermissionDenied(f"the signed URL has {name} twice")
            query[name] = value
        return query

    async def _put(self, scope: Scope, receive: Receive, send: Send, key: str, rid: str) -> None:
        grant = self.store.verify_upload(key, self._query(scope))
        headers = _headers(scope)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if content_type != grant.content_type:
            raise PermissionDenied(
                f"Content-Type must be exactly {grant.content_type!r}, as the URL was signed for"
            )
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                raise InvalidArgument("Content-Length is not a number")
            if int(length) > grant.size:
                raise PayloadTooLarge(
                    f"the body is larger than the {grant.size} bytes the URL was signed for"
                )
            if int(length) < grant.size:
                raise InvalidArgument(
                    f"the body has {int(length)} bytes; the URL was signed for {grant.size}"
                )
        if grant.condition is not None:
            # Refuse a stale URL before its body is read (write checks again at the commit).
            await in_thread(self.store.check_condition, key, grant.condition)
        info = await self.store.write(
            key,
            _body(receive),
            size=grant.size,
            content_type=grant.content_type,
            uploader=grant.uploader,
            condition=grant.condition,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", b"0"),
                    (b"etag", (info.etag or '""').encode()),
                    (b"x-fc-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _post(self, scope: Scope, receive: Receive, send: Send, key: str, rid: str) -> None:
        grant = self.store.verify_form(key, self._query(scope))
        headers = _headers(scope)
        boundary = boundary_of(headers.get(b"content-type", b"").decode("latin-1"))
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                raise InvalidArgument("Content-Length is not a number")
            # The file, plus the form's other fields and the parts' headers.
            if int(length) > grant.max_size + MAX_FIELD_BYTES + _FORM_OVERHEAD:
                raise PayloadTooLarge(
                    f"the file is larger than the {grant.max_size} bytes the URL was signed for"
                )
        if grant.condition is not None:
            await in_thread(self.store.check_condition, key, grant.condition)
        info = await self.store.write(
            key,
            file_part(_body(receive), boundary, FORM_FIELD),
            size=None,
            min_size=grant.min_size,
            max_size=grant.max_size,
            content_type=grant.content_type,
            uploader=grant.uploader,
            condition=grant.condition,
        )
        body = orjson.dumps({"size": info.size})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"etag", (info.etag or '""').encode()),
                    (b"x-fc-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _get(self, scope: Scope, send: Send, key: str, rid: str, *, head: bool) -> None:
        grant = self.store.verify_download(key, self._query(scope))
        opened = await self._open(key, grant)
        try:
            info = opened.info
            headers = _headers(scope)
            etag = (info.etag or "").encode()
            last_modified = formatdate(info.updated, usegmt=True).encode()
            common = [
                (b"etag", etag),
                (b"last-modified", last_modified),
                (b"cache-control", self._cache_control(grant).encode()),
                (b"accept-ranges", b"bytes"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-security-policy", b"sandbox"),
                (b"x-fc-request-id", rid.encode()),
            ]
            if _not_modified(headers, etag, info.updated):
                await _send_empty(send, 304, common)
                return
            span = _range(headers, etag, last_modified, info.size)
            if span == _UNSATISFIABLE:
                range_headers = [
                    (b"content-range", f"bytes */{info.size}".encode()),
                    (b"content-length", b"0"),
                ]
                await _send_empty(send, 416, [*range_headers, *common])
                return
            await _send_file(send, opened, span, common, head=head)
        finally:
            opened.close()

    async def _open(self, key: str, grant: DownloadGrant) -> OpenFile:
        """The file (or its thumbnail) ``grant`` allows, opened; NotFound when there is none,
        or when it is no longer the version the grant names."""
        if grant.thumb is None:
            opened = await self.store.open(key)
            version = None if opened is None else opened.info.version
        else:
            pair = await self.store.open_thumb(key, grant.thumb)
            opened, version = (None, None) if pair is None else (pair[1], pair[0].version)
        if opened is None:
            raise NotFound("no such file")
        if grant.version is not None and version != grant.version:
            opened.close()
            raise NotFound("the file this URL was made for was replaced or removed: ask for a new URL")
        return opened

    def _cache_control(self, grant: DownloadGrant) -> str:
        if grant.expires is None:  # a stable public URL
            return f"public, max-age={self.store.public_max_age}"
        max_age = max(0, int(grant.expires - self.store.clock()))
        return f"{'public' if grant.public else 'private'}, max-age={max_age}"


async def _send_empty(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _send_file(
    send: Send,
    opened: OpenFile,
    span: tuple[int, int] | None,
    common: list[tuple[bytes, bytes]],
    *,
    head: bool,
) -> None:
    """A 200 with the whole file, or a 206 with the ``(start, length)`` of it in ``span``."""
    info = opened.info
    start, length = span if span is not None else (0, info.size)
    status_headers = [(b"content-range", f"bytes {start}-{start + length - 1}/{info.size}".encode())]
    await send(
        {
            "type": "http.response.start",
            "status": 200 if span is None else 206,
            "headers": [
                (b"content-type", info.content_type.encode("latin-1")),
                (b"content-length", str(length).encode()),
                *(status_headers if span is not None else ()),
                *common,
                *_ATTACHMENT[browser_active(info.content_type)],
            ],
        }
    )
    if head:
        await send({"type": "http.response.body", "body": b""})
        return
    async for chunk in opened.chunks(start, length):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


_UNSATISFIABLE = (-1, -1)


def _not_modified(headers: dict[bytes, bytes], etag: bytes, updated: float) -> bool:
    """Whether a conditional GET may answer 304 (If-None-Match wins over If-Modified-Since)."""
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        return bool(etag) and _matches(if_none_match, etag)
    since = headers.get(b"if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return False  # an unparsable date is ignored (RFC 9110 13.1.3)
    if when.tzinfo is None:
        return False
    return int(updated) <= when.timestamp()


def _range(
    headers: dict[bytes, bytes], etag: bytes, last_modified: bytes, size: int
) -> tuple[int, int] | None:
    """(start, length) of a single ``Range: bytes=...`` to serve; None: the whole file (no
    or an ignorable Range: another unit, several ranges, a stale ``If-Range``);
    ``_UNSATISFIABLE``: 416."""
    value = headers.get(b"range")
    if value is None:
        return None
    if_range = headers.get(b"if-range")
    if if_range is not None and if_range.strip() not in (etag, last_modified):
        return None  # the client's copy changed: send it whole
    unit, _, spec = value.decode("latin-1").partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # multipart/byteranges is optional; the whole file is a valid answer
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None  # malformed: ignored (RFC 9110 14.2)
    if first == "":
        if last == "" or int(last) == 0:
            return _UNSATISFIABLE
        n = min(int(last), size)
        return (size - n, n) if n else _UNSATISFIABLE
    start = int(first)
    if start >= size:
        return _UNSATISFIABLE
    end = size - 1 if last == "" else min(int(last), size - 1)
    if end < start:
        return None  # an invalid range is ignored
    return start, end - start + 1


# Content a browser could run is never rendered from the API's origin (CSP sandbox too).
_ATTACHMENT: dict[bool, tuple[tuple[bytes, bytes], ...]] = {
    True: ((b"content-disposition", b"attachment"),),
    False: (),
}


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", ())}


def _matches(if_none_match: bytes | None, etag: bytes) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")]
    return b"*" in tags or etag in tags


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _send_error(
    send: Send, e: MinibaseError, rid: str, extra: list[tuple[bytes, bytes]], *, close: bool
) -> None:
    body = orjson.dumps(error_body(e, rid))
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-fc-request-id", rid.encode()),
        *extra,
    ]
    retry = e.details.get("retryAfter")
    if retry is not None:  # RateLimited, Unavailable
        headers.append((b"retry-after", str(retry).encode()))
    if close:
        # A refused upload's body may still be on its way: don't read it, drop the connection.
        headers.append((b"connection", b"close"))
    message: dict[str, Any] = {"type": "http.response.start", "status": e.status, "headers": headers}
    await send(message)
    await send({"type": "http.response.body", "body": body})
