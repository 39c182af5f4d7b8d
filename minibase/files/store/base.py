"""The small async protocol every file backend implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["FileInfo", "FileStore", "SignedForm", "SignedUpload", "UploadCondition"]

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a store knows about one file."""

    key: str
    size: int
    content_type: str
    updated: float  # unix seconds
    uploader: str | None = None  # uid of the user whose upload URL wrote it
    etag: str | None = None
    # This exact write, for upload conditions (local: a random id per write; S3: the ETag).
    version: str | None = None


@dataclass(frozen=True, slots=True)
class UploadCondition:
    """What must be at the key when a signed upload URL is used, or the upload is refused
    and nothing changes: no file (``version`` None), or exactly the write ``version``
    (:attr:`FileInfo.version`). It binds the URL to the state its permission was checked
    against, so an ``owner`` rule cannot be outlived by a URL."""

    version: str | None = None


@dataclass(frozen=True, slots=True)
class SignedUpload:
    """Send the bytes to ``url`` with exactly ``method`` and ``headers``."""

    url: str
    method: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SignedForm:
    """A multipart/form-data POST to ``url``: the fields ``form_data``, then the file as the
    part named ``name`` (what ``wx.uploadFile`` / ``my.uploadFile`` / ``tt.uploadFile`` and a
    browser's ``FormData`` send)."""

    url: str
    name: str
    form_data: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class FileStore(Protocol):
    """Keys are full storage keys (``users/<uid>/a.png``, ``public/b.png``), already checked.

    Signed URLs are the only way bytes move: ``expires`` is an absolute unix time.
    ``base_url`` is this server's public base as the client sees it; backends that serve
    files themselves (local disk) build their URLs on it, others ignore it.
    """

    kind: str  # "local" or "s3"
    needs_base_url: bool

    async def sign_upload(
        self,
        key: str,
        *,
        content_type: str,
        size: int,
        uploader: str | None,
        expires: int,
        base_url: str | None,
        condition: UploadCondition | None = None,
    ) -> SignedUpload:
        """A URL that accepts exactly ``size`` bytes of ``content_type`` at ``key`` until
        ``expires``, and (with ``condition``) only while the key holds what it says."""
        ...

    async def public_url(
        self, key: str, *, base_url: str | None, thumb: str | None = None, source: FileInfo | None = None
    ) -> str:
        """The stable URL of ``key`` in a public-read area: the same every time, never
        expiring (local: served by minibase with caching headers; S3/OSS: the bucket's
        object URL or ``files.public_url``). With ``thumb`` (a configured size), of that
        thumbnail of it; ``source`` is the file's info as just read."""
        ...

    async def sign_upload_form(
        self,
        key: str,
        *,
        content_type: str,
        min_size: int,
        max_size: int,
        uploader: str | None,
        expires: int,
        base_url: str | None,
        condition: UploadCondition | None = None,
    ) -> SignedForm:
        """A form upload of ``min_size``..``max_size`` bytes stored at ``key`` as
        ``content_type`` until ``expires`` (and with ``condition``, only while the key holds
        what it says)."""
        ...

    async def sign_download(
        self,
        key: str,
        *,
        expires: int,
        public: bool,
        base_url: str | None,
        version: str | None = None,
        attachment: bool = False,
        thumb: str | None = None,
        source: FileInfo | None = None,
    ) -> str:
        """A URL that serves ``key`` (with ``thumb``: that thumbnail of it) until ``expires``; with ``version``, only that write of
        it where the backend can enforce that (local disk; S3 cannot: see its module). With
        ``attachment`` (content a browser could run: html, svg, xml, js) the answer must
        carry ``Content-Disposition: attachment`` (the local routes add it themselves)."""
        ...

    async def stat(self, key: str) -> FileInfo | None: ...

    async def list(
        self, prefix: str, *, start_after: str | None, limit: int
    ) -> tuple[list[FileInfo], str | None]:
        """Files whose key starts with ``prefix`` and sorts after ``start_after``, in key
        (UTF-8 byte) order, at most ``limit``; and the key to continue after, or None when
        there is no more. (That key may be past the last file returned, when some listed
        entries were skipped.)"""
        ...

    async def remove(self, key: str) -> None:
        """Delete ``key``; nothing happens when it does not exist."""
        ...

    async def close(self) -> None: ...
