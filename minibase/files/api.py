"""The built-in ``files`` function (docs/files.md): signed upload/download URLs (one or up
to 100 at once, of the file or a thumbnail), form uploads, stat, list, remove.

Bytes never pass through the function: ``uploadUrl``, ``uploadForm`` and ``downloadUrl``
hand out expiring signed URLs (``files.url_ttl``, default 15 minutes) that the client uses
directly against the store (S3/OSS) or minibase's ``/files/...`` routes (local disk); a file
in a public-read area gets a stable URL that never expires instead.

Who may do what: a caller has full access to their own area (``users/<uid>/``); a shared
area (``[files.areas.NAME]``) has a ``read`` and a ``write`` preset (``public``,
``authenticated``, ``owner``, ``none``), where ``owner`` means the user whose upload
created the file (recorded by the store). ``write`` covers ``uploadUrl`` and ``remove``;
``read`` covers ``downloadUrl``, ``stat`` and ``list``.

A signed URL outlives the check that allowed it, so where ``owner`` decides, the URL is
bound to the file as it was checked: an upload URL in a ``write = "owner"`` area works
only while the key is still empty (a new file) or still holds the very write its caller
owned (a replacement) — otherwise the store refuses it and nothing changes. A download URL
in a ``read = "owner"`` area reads only that write (local disk; S3 cannot bind a GET).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..auth.sessions import Caller
from ..config import Config, FilesArea
from ..errors import Internal, InvalidArgument, NotFound, PayloadTooLarge, PermissionDenied, Unauthenticated
from ..results import Page
from ..util.ids import b64url, b64url_decode
from ..util.timefmt import now, rfc3339_ms, rfc3339_s
from .content_types import browser_active
from .paths import Location, file_id, resolve, resolve_prefix
from .store.base import FileInfo, FileStore, UploadCondition
from .thumbs import Thumbnailer

__all__ = ["OPS", "FilesFunction", "browser_active", "content_type_allowed"]

OPS = ("uploadUrl", "uploadForm", "downloadUrl", "downloadUrls", "stat", "list", "remove")
MAX_BATCH = 100  # paths in one downloadUrls
_BATCH_CONCURRENCY = 16  # store look-ups a downloadUrls runs at once
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_SCANS = 10  # store pages read for one filtered (owner-read) listing page
_CURSOR_PREFIX = "f1."
_THUMBABLE = re.compile(r"image/(jpeg|pjpeg|png|webp|gif)")  # what thumbnails are made of
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
# A quoted parameter value is printable ASCII (it goes into a header), no quote or backslash.
_CONTENT_TYPE_RE = re.compile(
    rf'[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*([ \t]*;[ \t]*{_TOKEN}=({_TOKEN}|"[ !#-\[\]-~]*"))*'
)


def content_type_allowed(content_type: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``content_type`` (parameters ignored) matches one of ``patterns``
    (``image/*``, ``text/plain``, ``*/*``); an empty tuple allows any. A wildcard does not
    admit a type a browser could run (``image/*`` is not ``image/svg+xml``): such a type
    must be named."""
    if not patterns:
        return True
    essence = content_type.split(";", 1)[0].strip().lower()
    if browser_active(essence):
        return essence in patterns
    major = essence.split("/", 1)[0]
    return any(p == "*/*" or p == essence or p == f"{major}/*" for p in patterns)


class FilesFunction:
    def __init__(self, config: Config, store: FileStore, *, clock: Callable[[], float] = now) -> None:
        self.config = config
        self.files = config.files
        self.store = store
        self.clock = clock
        self.ttl = int(self.files.url_ttl)
        self.thumbs = Thumbnailer.from_config(self.files)

    async def __call__(
        self, caller: Caller | None, event: Mapping[str, Any], *, base_url: str | None = None
    ) -> Any:
        """Run one op for ``caller`` (None: not logged in).

        ``base_url`` is this server's public base as the client sees it (e.g.
        ``http://127.0.0.1:8000``); the local backend builds its URLs on it unless
        ``files.base_url`` is configured.
        """
        op = event.get("op")
        uid = caller.uid if caller is not None else None
        if op == "uploadUrl":
            return await self._upload_url(uid, event, base_url)
        if op == "uploadForm":
            return await self._upload_form(uid, event, base_url)
        if op == "downloadUrl":
            thumb = self._thumb(event)
            loc = resolve(self.files, event.get("path"), uid)
            return await self._download_url(uid, loc, base_url, thumb)
        if op == "downloadUrls":
            return await self._download_urls(uid, event, base_url)
        if op == "stat":
            loc = resolve(self.files, event.get("path"), uid)
            info = await self._readable(loc, uid)
            return None if info is None else self._stat_object(loc, info)
        if op == "list":
            return await self._list(uid, event)
        if op == "remove":
            await self._remove(uid, event)
            return None
        if op is None:
            raise InvalidArgument(f"op is required (one of: {', '.join(OPS)})")
        raise InvalidArgument(f"unknown op {str(op)[:40]!r} (one of: {', '.join(OPS)})")

    # ------------------------------------------------------------------ helpers

    def _base_url(self, given: str | None) -> str | None:
        base = self.files.base_url or given
        if base is None and self.store.needs_base_url:
            raise Internal("the file store needs this server's public URL: set files.base_url")
        return base

    def _thumb(self, event: Mapping[str, Any]) -> str | None:
        """The event's ``thumb``: None, or one of the configured sizes."""
        thumb = event.get("thumb")
        if thumb is None:
            return None
        if self.thumbs is None:
            raise InvalidArgument("thumbnails are not configured: set [files.thumbs] sizes")
        return self.thumbs.spec(thumb).name

    def _expires(self) -> int:
        return int(self.clock()) + self.ttl

    @staticmethod
    def _check_rule(rule: str, uid: str | None, doing: str) -> None:
        """Area-level check of a preset; ``owner`` is checked per file by the caller."""
        if rule == "public":
            return
        if rule == "none":
            raise PermissionDenied(f"nobody may {doing} here")
        if uid is None:
            raise Unauthenticated(f"log in to {doing} here")

    async def _readable(self, loc: Location, uid: str | None) -> FileInfo | None:
        """The file's info if the caller may read it (None: no such file, as far as the
        caller may know: in an ``owner``-read area another user's file reads as absent, so
        stat and downloadUrl answer the same for it as for a missing one)."""
        area = loc.area
        if area is not None:
            self._check_rule(area.read, uid, "read files")
        info = await self.store.stat(loc.key)
        if info is not None and area is not None and area.read == "owner" and info.uploader != uid:
            return None
        return info

    async def _check_writable(self, loc: Location, uid: str | None) -> UploadCondition | None:
        """Raise unless the caller may write (create, replace or remove) ``loc``.

        Where the answer depends on the file (``owner``), returns the state it was decided
        on: an upload URL must be bound to it (None: the answer holds whatever is there)."""
        area = loc.area
        if area is None:
            return None  # the caller's own area
        self._check_rule(area.write, uid, "write files")
        if area.write != "owner":
            return None
        info = await self.store.stat(loc.key)
        if info is None:
            return UploadCondition(None)  # anyone logged in may create it: only while it is new
        if info.uploader != uid:
            raise PermissionDenied("only the user who uploaded this file may change it")
        if info.version is None:  # pragma: no cover - both backends always give one
            raise Internal("the file store gave no version to bind the upload to")
        return UploadCondition(info.version)

    def _stat_object(self, loc: Location, info: FileInfo) -> dict[str, Any]:
        return {
            "path": loc.client_path(info.key),
            "fileId": file_id(info.key),
            "size": info.size,
            "contentType": info.content_type,
            "updated": rfc3339_ms(info.updated),
        }

    def _limits(self, area: FilesArea | None) -> tuple[int, tuple[str, ...]]:
        max_size = self.files.max_size
        types = self.files.content_types
        if area is not None:
            max_size = area.max_size if area.max_size is not None else max_size
            types = area.content_types if area.content_types is not None else types
        return max_size, types

    # ---------------------------------------------------------------------- ops

    def _upload_limits(
        self, loc: Location, event: Mapping[str, Any], *, size_required: bool
    ) -> tuple[str, int | None, int]:
        """The event's content type and size (None: not given), checked against the
        limits of where ``loc`` is; and the largest size allowed there."""
        content_type = event.get("contentType")
        if not isinstance(content_type, str) or not content_type:
            raise InvalidArgument("contentType is required (e.g. 'image/jpeg')")
        if len(content_type) > 255 or not _CONTENT_TYPE_RE.fullmatch(content_type):
            raise InvalidArgument("contentType is not a media type like 'image/jpeg'")
        size = event.get("size")
        bad_size = isinstance(size, bool) or not isinstance(size, int) or size < 0
        if (size is not None or size_required) and bad_size:
            raise InvalidArgument("size is required: the file's length in bytes")
        max_size, types = self._limits(loc.area)
        if size is not None and size > max_size:
            raise PayloadTooLarge(f"files here may be at most {max_size} bytes", maxSize=max_size)
        if not content_type_allowed(content_type, types):
            raise InvalidArgument(
                f"content type {content_type.split(';')[0]!r} is not allowed here (allowed: {', '.join(types)})"
            )
        return content_type, size, max_size

    async def _upload_form(self, uid: str | None, event: Mapping[str, Any], base_url: str | None) -> Any:
        """What a multipart POST needs (``wx.uploadFile``, ``my.uploadFile``,
        ``tt.uploadFile``, a browser's ``FormData``): exactly ``size`` bytes when given,
        else up to the limit; the content type as given, whatever the part says."""
        loc = resolve(self.files, event.get("path"), uid)
        content_type, size, max_size = self._upload_limits(loc, event, size_required=False)
        condition = await self._check_writable(loc, uid)
        expires = self._expires()
        form = await self.store.sign_upload_form(
            loc.key,
            content_type=content_type,
            min_size=0 if size is None else size,
            max_size=max_size if size is None else size,
            uploader=uid,
            expires=expires,
            base_url=self._base_url(base_url),
            condition=condition,
        )
        return {
            "url": form.url,
            "name": form.name,
            "formData": dict(form.form_data),
            "expiresAt": rfc3339_s(expires),
            "fileId": file_id(loc.key),
        }

    async def _upload_url(self, uid: str | None, event: Mapping[str, Any], base_url: str | None) -> Any:
        loc = resolve(self.files, event.get("path"), uid)
        content_type, size, _ = self._upload_limits(loc, event, size_required=True)
        assert size is not None
        condition = await self._check_writable(loc, uid)
        expires = self._expires()
        signed = await self.store.sign_upload(
            loc.key,
            content_type=content_type,
            size=size,
            uploader=uid,
            expires=expires,
            base_url=self._base_url(base_url),
            condition=condition,
        )
        return {
            "url": signed.url,
            "method": signed.method,
            "headers": dict(signed.headers),
            "expiresAt": rfc3339_s(expires),
            "fileId": file_id(loc.key),
        }

    async def _download_url(
        self, uid: str | None, loc: Location, base_url: str | None, thumb: str | None = None
    ) -> dict[str, Any]:
        info = await self._readable(loc, uid)
        if info is None:
            raise NotFound("no file at that path")
        if thumb is not None and not _THUMBABLE.fullmatch(info.content_type.split(";", 1)[0].strip().lower()):
            raise InvalidArgument(
                f"no thumbnails of {info.content_type.split(';')[0]!r} files: only of images"
            )
        public = loc.area is not None and loc.area.read == "public"
        active = browser_active(info.content_type)
        if public and not active:
            # Anyone may read it, always: a stable URL that an <image> can cache. (Content
            # a browser could run keeps a signed URL: only that can carry the signed
            # attachment disposition on S3/OSS.)
            url = await self.store.public_url(
                loc.key, base_url=self._base_url(base_url), thumb=thumb, source=info
            )
            return {"url": url, "expiresAt": None}
        expires = self._expires()
        # Who may read depends on the file here: the URL must not read a later one.
        version = info.version if loc.area is not None and loc.area.read == "owner" else None
        url = await self.store.sign_download(
            loc.key,
            expires=expires,
            public=public,
            base_url=self._base_url(base_url),
            version=version,
            attachment=active,
            thumb=thumb,
            source=info,
        )
        return {"url": url, "expiresAt": rfc3339_s(expires)}

    async def _download_urls(self, uid: str | None, event: Mapping[str, Any], base_url: str | None) -> Any:
        """One answer per path, in order: ``{path, fileId, url, expiresAt}``, or ``{path,
        error: {code, message}}`` for one that is missing, forbidden or malformed (the
        others still get their URL)."""
        paths = event.get("paths")
        if not isinstance(paths, list):
            raise InvalidArgument(f"paths is required: a list of up to {MAX_BATCH} paths or file ids")
        if len(paths) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} paths at once")
        thumb = self._thumb(event)
        gate = asyncio.Semaphore(_BATCH_CONCURRENCY)

        async def one(path: Any) -> dict[str, Any]:
            shown = path if isinstance(path, str) else None
            try:
                loc = resolve(self.files, path, uid)
                async with gate:
                    link = await self._download_url(uid, loc, base_url, thumb)
                return {"path": shown, "fileId": file_id(loc.key), **link}
            except (InvalidArgument, NotFound, PayloadTooLarge, PermissionDenied, Unauthenticated) as e:
                return {"path": shown, "error": {"code": e.code, "message": e.message}}

        return list(await asyncio.gather(*(one(p) for p in paths)))

    async def _remove(self, uid: str | None, event: Mapping[str, Any]) -> None:
        loc = resolve(self.files, event.get("path"), uid)
        await self._check_writable(loc, uid)
        await self.store.remove(loc.key)

    async def _list(self, uid: str | None, event: Mapping[str, Any]) -> Page:
        loc = resolve_prefix(self.files, event.get("prefix"), uid)
        limit = event.get("limit", DEFAULT_LIMIT)
        if limit is None:
            limit = DEFAULT_LIMIT
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidArgument(f"limit must be an integer from 1 to {MAX_LIMIT}")
        after = self._decode_cursor(event.get("cursor"), loc.key)
        owner_only = False
        if loc.area is not None:
            self._check_rule(loc.area.read, uid, "list files")
            owner_only = loc.area.read == "owner"
        out: list[dict[str, Any]] = []
        for _ in range(_MAX_SCANS):
            infos, next_after = await self.store.list(loc.key, start_after=after, limit=limit - len(out))
            if not owner_only:
                out.extend(self._stat_object(loc, i) for i in infos)
            else:
                out.extend(self._stat_object(loc, i) for i in infos if i.uploader == uid)
            after = next_after
            if after is None or len(out) >= limit:
                break
        return Page(out, None if after is None else _CURSOR_PREFIX + b64url(after.encode()))

    @staticmethod
    def _decode_cursor(cursor: Any, prefix: str) -> str | None:
        if cursor is None:
            return None
        bad = InvalidArgument("cursor is not one this listing returned")
        if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_PREFIX):
            raise bad
        try:
            key = b64url_decode(cursor[len(_CURSOR_PREFIX) :]).decode()
        except (ValueError, UnicodeDecodeError):
            raise bad from None
        if not key.startswith(prefix):
            raise bad
        return key
