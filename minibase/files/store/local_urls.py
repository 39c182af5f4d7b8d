"""The local file store's signed URLs: made for the ``files`` function's answers, checked by
the ``/files/...`` routes (``..http``) before any disk access.

Signed URLs: ``{base}/files/{key}?Expires=<unix>&...&Signature=<b64url>``, an
HMAC-SHA256 with a key derived from the server secret over every bound value::

    PUT: "minibase/files/v1\\nPUT\\n{key}\\n{Expires}\\n{ContentType}\\n{Size}\\n{Uploader}[\\n{Expect}]"
    GET: "minibase/files/v1\\nGET\\n{key}\\n{Expires}\\n{Public}[\\n{Version}]"

Fields never contain a newline (keys and values with control characters are refused
before the MAC is checked), so the message is unambiguous, and the optional last field
cannot be dropped or added without breaking the MAC. The first secret signs, every
secret verifies (rotation); signatures are compared in constant time.

``Expect`` (upload URLs of ``owner``-write areas) is ``new`` (the key must hold no file)
or the version the key must still hold; it is checked under the commit lock right before
the rename, and a mismatch is ``Conflict`` with nothing stored. ``Version`` (download URLs
of ``owner``-read areas) is the only version the URL serves; another one is ``NotFound``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from ...errors import Internal, PermissionDenied
from ...util.ids import b64url, b64url_decode
from .base import FileInfo, SignedForm, SignedUpload, UploadCondition

__all__ = [
    "FORM_FIELD",
    "DownloadGrant",
    "FormGrant",
    "SignedUrls",
    "UploadGrant",
    "UrlSigner",
    "download_message",
    "form_message",
    "upload_message",
]

_MESSAGE_VERSION = b"minibase/files/v1"
_MAX_QUERY_VALUE = 1024
_UPLOAD_PARAMS = frozenset(("Expires", "ContentType", "Size", "Uploader", "Expect", "Signature"))
_FORM_PARAMS = frozenset(("Expires", "ContentType", "MinSize", "MaxSize", "Uploader", "Expect", "Signature"))
_DOWNLOAD_PARAMS = frozenset(("Expires", "Public", "Version", "Thumb", "Signature"))
FORM_FIELD = "file"  # the form part that carries the file
_EXPECT_NEW = "new"  # an Expect value no version can equal (they are hex, or start with "i")


def _clean(value: str, what: str) -> str:
    if len(value) > _MAX_QUERY_VALUE or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise PermissionDenied(f"the signed URL's {what} is malformed")
    return value


class UrlSigner:
    """HMAC-SHA256 over a message; the first secret signs, all verify."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("at least one secret is needed")
        self._keys = [hmac.digest(s.encode(), b"minibase/files-url/v1", "sha256") for s in secrets]

    def sign(self, message: bytes) -> str:
        return b64url(hmac.digest(self._keys[0], message, "sha256"))

    def check(self, message: bytes, signature: str) -> bool:
        try:
            given = b64url_decode(signature)
        except ValueError:
            return False
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(given, hmac.digest(key, message, "sha256"))
        return ok


def upload_message(
    key: str, expires: int, content_type: str, size: int, uploader: str, expect: str | None = None
) -> bytes:
    fields = [key, str(expires), content_type, str(size), uploader]
    if expect is not None:
        fields.append(expect)
    return b"\n".join((_MESSAGE_VERSION, b"PUT", *(f.encode() for f in fields)))


def form_message(
    key: str, expires: int, content_type: str, min_size: int, max_size: int, uploader: str, expect: str | None
) -> bytes:
    fields = [key, str(expires), content_type, str(min_size), str(max_size), uploader]
    if expect is not None:
        fields.append(expect)
    return b"\n".join((_MESSAGE_VERSION, b"POST", *(f.encode() for f in fields)))


def download_message(
    key: str, expires: int, public: bool, version: str | None = None, thumb: str | None = None
) -> bytes:
    fields = [key, str(expires), "1" if public else "0"]
    if version is not None:
        fields.append(version)
    if thumb is not None:
        fields.append("thumb:" + thumb)  # a version is hex or i...: never this
    return b"\n".join((_MESSAGE_VERSION, b"GET", *(f.encode() for f in fields)))


def _expect_value(condition: UploadCondition) -> str:
    return _EXPECT_NEW if condition.version is None else condition.version


def _condition_of(expect: str | None) -> UploadCondition | None:
    if expect is None:
        return None
    return UploadCondition(None if expect == _EXPECT_NEW else expect)


@dataclass(frozen=True, slots=True)
class UploadGrant:
    key: str
    content_type: str
    size: int
    uploader: str | None
    expires: int
    condition: UploadCondition | None = None  # None: whatever the key holds


@dataclass(frozen=True, slots=True)
class FormGrant:
    key: str
    content_type: str
    min_size: int
    max_size: int
    uploader: str | None
    expires: int
    condition: UploadCondition | None = None


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    key: str
    public: bool
    expires: int | None  # None: a stable public URL, which never expires
    version: str | None = None  # None: whatever the key holds
    thumb: str | None = None  # a thumbnail size: serve that thumbnail of the file


def _int(value: str | None, what: str) -> int:
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise PermissionDenied(f"the signed URL's {what} is missing or malformed")
    return int(value)


class SignedUrls:
    """Making and checking the local store's URLs (a part of :class:`.local.LocalFileStore`,
    which gives it the secret's signer, the mount, the clock and the public prefixes)."""

    signer: UrlSigner
    mount: str
    clock: Callable[[], float]
    public_prefixes: tuple[str, ...]

    def _path(self, key: str) -> Path:
        """Where ``key`` lives on disk; InvalidArgument for a key the disk cannot hold."""
        raise NotImplementedError

    def url_for(self, key: str, base_url: str | None) -> str:
        if not base_url:
            raise Internal("set files.base_url: the local file backend needs this server's public URL")
        return f"{base_url.rstrip('/')}{self.mount}/{quote(key, safe='/')}"

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
        self._path(key)  # refuse now a key this disk cannot hold, not at upload time
        expect = None if condition is None else _expect_value(condition)
        sig = self.signer.sign(upload_message(key, expires, content_type, size, uploader or "", expect))
        params = [("Expires", str(expires)), ("ContentType", content_type), ("Size", str(size))]
        if uploader:
            params.append(("Uploader", uploader))
        if expect is not None:
            params.append(("Expect", expect))
        params.append(("Signature", sig))
        url = f"{self.url_for(key, base_url)}?{urlencode(params)}"
        return SignedUpload(url, "PUT", {"Content-Type": content_type})

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
        self._path(key)  # refuse now a key this disk cannot hold
        expect = None if condition is None else _expect_value(condition)
        message = form_message(key, expires, content_type, min_size, max_size, uploader or "", expect)
        params = [
            ("Expires", str(expires)),
            ("ContentType", content_type),
            ("MinSize", str(min_size)),
            ("MaxSize", str(max_size)),
        ]
        if uploader:
            params.append(("Uploader", uploader))
        if expect is not None:
            params.append(("Expect", expect))
        params.append(("Signature", self.signer.sign(message)))
        return SignedForm(f"{self.url_for(key, base_url)}?{urlencode(params)}", FORM_FIELD, {})

    def verify_form(self, key: str, query: Mapping[str, str]) -> FormGrant:
        """The form upload a POST URL allows; :class:`PermissionDenied` when forged or expired."""
        key = _clean(key, "path")
        expires = _int(query.get("Expires"), "Expires")
        min_size = _int(query.get("MinSize"), "MinSize")
        max_size = _int(query.get("MaxSize"), "MaxSize")
        content_type = _clean(query.get("ContentType", ""), "ContentType")
        uploader = _clean(query.get("Uploader", ""), "Uploader")
        expect = query.get("Expect")
        if expect is not None:
            expect = _clean(expect, "Expect")
        message = form_message(key, expires, content_type, min_size, max_size, uploader, expect)
        self._check(message, query, expires, _FORM_PARAMS)
        return FormGrant(
            key, content_type, min_size, max_size, uploader or None, expires, _condition_of(expect)
        )

    async def public_url(
        self, key: str, *, base_url: str | None, thumb: str | None = None, source: FileInfo | None = None
    ) -> str:
        """The stable URL of a file in a public-read area: no expiry, no signature."""
        url = self.url_for(key, base_url)
        return url if thumb is None else f"{url}?{urlencode([('thumb', thumb)])}"

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
        sig = self.signer.sign(download_message(key, expires, public, version, thumb))
        params = [("Expires", str(expires))]
        if public:
            params.append(("Public", "1"))
        if version is not None:
            params.append(("Version", version))
        if thumb is not None:
            params.append(("Thumb", thumb))
        params.append(("Signature", sig))
        return f"{self.url_for(key, base_url)}?{urlencode(params)}"

    def _check(self, message: bytes, query: Mapping[str, str], expires: int, allowed: frozenset[str]) -> None:
        for name in query:
            if name not in allowed:
                # Everything in the query is covered by the MAC: nothing may be added.
                raise PermissionDenied(f"the signed URL has an unexpected parameter {name[:40]!r}")
        signature = query.get("Signature")
        if not signature:
            raise PermissionDenied("the URL is not signed")
        if not self.signer.check(message, signature):
            raise PermissionDenied("the URL's signature does not match (was it changed?)")
        if expires < self.clock():
            raise PermissionDenied("the signed URL has expired: ask for a new one")

    def verify_upload(self, key: str, query: Mapping[str, str]) -> UploadGrant:
        """The upload a PUT URL allows; :class:`PermissionDenied` when forged or expired."""
        key = _clean(key, "path")
        expires = _int(query.get("Expires"), "Expires")
        size = _int(query.get("Size"), "Size")
        content_type = _clean(query.get("ContentType", ""), "ContentType")
        uploader = _clean(query.get("Uploader", ""), "Uploader")
        expect = query.get("Expect")
        if expect is not None:
            expect = _clean(expect, "Expect")
        self._check(
            upload_message(key, expires, content_type, size, uploader, expect), query, expires, _UPLOAD_PARAMS
        )
        return UploadGrant(key, content_type, size, uploader or None, expires, _condition_of(expect))

    def verify_download(self, key: str, query: Mapping[str, str]) -> DownloadGrant:
        """The download a GET/HEAD URL allows; :class:`PermissionDenied` when forged or expired.

        A URL without a signature is a stable public one: allowed while ``key`` is in a
        public-read area (checked now, so an area made private stops serving at once)."""
        key = _clean(key, "path")
        if "Signature" not in query and "Expires" not in query:
            extra = [name for name in query if name != "thumb"]
            if extra:
                raise PermissionDenied(f"unexpected parameter {extra[0][:40]!r}")
            if not key.startswith(self.public_prefixes):
                raise PermissionDenied("the URL is not signed")
            thumb = query.get("thumb")
            return DownloadGrant(key, True, None, thumb=None if thumb is None else _clean(thumb, "thumb"))
        expires = _int(query.get("Expires"), "Expires")
        public = query.get("Public", "0") == "1"
        version = query.get("Version")
        if version is not None:
            version = _clean(version, "Version")
        thumb = query.get("Thumb")
        if thumb is not None:
            thumb = _clean(thumb, "Thumb")
        self._check(download_message(key, expires, public, version, thumb), query, expires, _DOWNLOAD_PARAMS)
        return DownloadGrant(key, public, expires, version, thumb)
