"""Files in S3-compatible object storage (AWS S3, Alibaba OSS's S3 API, MinIO, ...).

Uses the official AWS SDK (``boto3``, the ``s3`` extra), imported on first use. Its
calls block, so they run on worker threads (``asyncio.to_thread``); presigning is local
computation and needs no request.

What a presigned URL binds (SigV4 query signing, ``X-Amz-SignedHeaders``):

* upload (``PUT``): bucket and key, expiry (``X-Amz-Expires``), ``Content-Type``,
  ``Content-Length`` (so the body must be exactly the declared size: S3 refuses any other
  length with ``SignatureDoesNotMatch``) and ``x-amz-meta-uploader`` (the uploader's uid,
  kept as object metadata for ``owner`` rules in shared areas). With an
  :class:`~.base.UploadCondition` (``owner``-write areas) also ``If-None-Match: *`` (a
  new object: refused once one exists) or ``If-Match: <ETag>`` (a replacement: refused
  once the object changed or is gone) — S3 conditional writes, enforced by the store at
  the write (412 ``PreconditionFailed``; 404 ``NoSuchKey`` for ``If-Match`` on a removed
  object), nothing stored. The client must send those headers exactly as returned.
* download (``GET``): bucket, key and expiry.

On ``oss://`` the download URLs and the form uploads are signed with OSS's own V4
signature instead (``oss_sign``: what OSS documents for ``x-oss-process`` thumbnails and
PostObject); the SDK still makes the server's own calls and the upload URLs through OSS's
S3 API.

Not bound: the body's content (only its length). Known limits: a version is an ETag (for
a single PUT the MD5 of the bytes), so a replacement URL still works on a file removed and
recreated with byte-identical content; a presigned GET cannot require a header (an
``<img src>`` sends none), so a download URL serves whatever the key holds until it
expires. Alibaba OSS's S3 API is not documented to honour ``If-Match``/``If-None-Match``
on PutObject (its own API has ``x-oss-forbid-overwrite``): unverified there.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from ...config import S3Location
from ...errors import Internal, InvalidArgument, NotFound, PayloadTooLarge, Unavailable
from ..paths import RESERVED_SEGMENT_PREFIX
from ..thumbs import MAX_SOURCE_BYTES, Thumbnailer, ThumbSpec
from .base import DEFAULT_CONTENT_TYPE, FileInfo, SignedForm, SignedUpload, UploadCondition

__all__ = ["S3FileStore"]

log = logging.getLogger("minibase.files.s3")
T = TypeVar("T")
_MISSING = ("404", "NoSuchKey", "NotFound")
_BUSY = ("SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable")
_THUMB_DIR = RESERVED_SEGMENT_PREFIX + "-thumb"
_DOWNLOADS = threading.BoundedSemaphore(2)  # originals read to render thumbnails, at once


class S3FileStore:
    kind = "s3"
    needs_base_url = False

    def __init__(
        self,
        location: S3Location,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        concurrency: int = 16,
        public_url: str | None = None,
        thumbs: Thumbnailer | None = None,
    ) -> None:
        self.location = location
        self.public_base = public_url
        self.thumbs = thumbs
        self._credentials = (access_key_id, secret_access_key, session_token)
        self._concurrency = concurrency
        self._client: Any = None
        self._session: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ client

    def _make_client(self) -> Any:
        with self._lock:
            if self._client is not None:
                return self._client
            try:
                import boto3
                from botocore.config import Config as BotoConfig
            except ImportError:
                raise Internal("s3:// files need boto3: pip install 'minibase[s3]'") from None
            key_id, secret, token = self._credentials
            session = boto3.session.Session(
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                aws_session_token=token,
                region_name=self.location.region or "us-east-1",
            )
            config = BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path" if self.location.path_style else "virtual"},
                max_pool_connections=max(10, self._concurrency),
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                # Newer SDKs add CRC checksums to every request; S3-compatible services
                # (OSS, older MinIO) may not accept them.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            client = session.client("s3", endpoint_url=self.location.endpoint, config=config)
            self._session = session
            self._client = client
            return self._client

    async def client(self) -> Any:
        if self._client is None:
            await asyncio.to_thread(self._make_client)
        return self._client

    async def _call(self, method: str, **params: Any) -> Any:
        client = await self.client()
        return await asyncio.to_thread(getattr(client, method), **params)

    def _full(self, key: str) -> str:
        return self.location.prefix + key

    # ------------------------------------------------------------------ signing

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
        client = await self.client()
        params: dict[str, Any] = {
            "Bucket": self.location.bucket,
            "Key": self._full(key),
            "ContentType": content_type,
            "ContentLength": size,
        }
        headers = {"Content-Type": content_type}
        if uploader:
            params["Metadata"] = {"uploader": uploader}
            headers["x-amz-meta-uploader"] = uploader
        if condition is not None:
            # Signed headers (X-Amz-SignedHeaders): the client cannot drop or change them.
            if condition.version is None:
                params["IfNoneMatch"] = headers["If-None-Match"] = "*"
            else:
                params["IfMatch"] = headers["If-Match"] = condition.version
        url = client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=_expires_in(expires), HttpMethod="PUT"
        )
        return SignedUpload(str(url), "PUT", headers)

    async def _oss_credentials(self) -> Any:
        """The credentials OSS's own signing uses: the configured ones, else what the AWS
        SDK's chain finds (as for its own calls)."""
        from .oss_sign import OssCredentials

        key_id, secret, token = self._credentials
        if key_id and secret:
            return OssCredentials(key_id, secret, token)
        await self.client()
        found = self._session.get_credentials() if self._session is not None else None
        if found is None:
            raise Internal("oss:// files need credentials: files.access_key_id / secret_access_key")
        frozen = await asyncio.to_thread(found.get_frozen_credentials)  # may refresh (a request)
        return OssCredentials(frozen.access_key, frozen.secret_key, frozen.token)

    async def _oss_url(self, key: str, expires: int, params: list[tuple[str, str]]) -> str:
        """A download URL signed with OSS's own V4 query signature (``oss_sign``): OSS
        documents ``x-oss-process`` and ``response-content-disposition`` as signed query
        parameters there, which it does not for AWS SigV4 through its S3 API."""
        from .oss_sign import oss_region, sign_url

        location = self.location
        assert location.endpoint is not None and location.region is not None  # parse_s3_url: oss://
        return sign_url(
            await self._oss_credentials(),
            method="GET",
            endpoint=location.endpoint,
            bucket=location.bucket,
            key=self._full(key),
            region=oss_region(location.region),
            path_style=location.path_style,
            expires=_expires_in(expires),
            now=time.time(),
            params=params,
        )

    async def _oss_form(
        self, key: str, *, content_type: str, min_size: int, max_size: int, uploader: str | None, expires: int
    ) -> SignedForm:
        """PostObject with a V4-signed policy pinning the bucket, the exact key, the size
        range, ``Content-Type`` and the uploader (``x-oss-meta-uploader``)."""
        from .oss_sign import oss_region, post_form

        location = self.location
        assert location.endpoint is not None and location.region is not None  # parse_s3_url: oss://
        fields = {"Content-Type": content_type}
        conditions: list[Any] = [
            ["content-length-range", min_size, max_size],
            ["eq", "$Content-Type", content_type],
        ]
        if uploader:
            fields["x-oss-meta-uploader"] = uploader
            conditions.append(["eq", "$x-oss-meta-uploader", uploader])
        url, form = post_form(
            await self._oss_credentials(),
            endpoint=location.endpoint,
            bucket=location.bucket,
            key=self._full(key),
            region=oss_region(location.region),
            path_style=location.path_style,
            expires=_expires_in(expires),
            now=time.time(),
            conditions=conditions,
            fields=fields,
        )
        return SignedForm(url, "file", form)

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
        """A browser-style POST (PostObject) with a signed policy pinning the bucket, the
        key, the size range, ``Content-Type`` and the uploader's metadata."""
        if condition is not None:
            # A POST policy has no conditional write (If-Match / If-None-Match): it could not
            # be bound to the file as its permission was checked.
            raise InvalidArgument(
                "form uploads in a write = owner area need local storage: use uploadUrl here",
                fallback="uploadUrl",
            )
        if self.location.provider == "oss":
            return await self._oss_form(
                key,
                content_type=content_type,
                min_size=min_size,
                max_size=max_size,
                uploader=uploader,
                expires=expires,
            )
        client = await self.client()
        fields = {"Content-Type": content_type}
        conditions: list[Any] = [{"Content-Type": content_type}, ["content-length-range", min_size, max_size]]
        if uploader:
            fields["x-amz-meta-uploader"] = uploader
            conditions.append({"x-amz-meta-uploader": uploader})
        post = client.generate_presigned_post(
            Bucket=self.location.bucket,
            Key=self._full(key),
            Fields=fields,
            Conditions=conditions,
            ExpiresIn=_expires_in(expires),
        )
        return SignedForm(str(post["url"]), "file", {str(k): str(v) for k, v in post["fields"].items()})

    async def public_url(
        self, key: str, *, base_url: str | None, thumb: str | None = None, source: FileInfo | None = None
    ) -> str:
        """The stable URL of a public-read file: ``files.public_url`` (a CDN) + the object
        key, else the object's own URL at the bucket (which must let anyone read that
        prefix: a bucket policy). A thumbnail: on OSS the same URL with its
        ``x-oss-process``; elsewhere a rendered copy's URL beside it."""
        extra = ""
        if thumb is not None:
            if self.location.provider == "oss":
                extra = "?" + urlencode([("x-oss-process", self._oss_process(thumb))])
            else:
                key = await self._rendered(key, thumb, source)
        if self.public_base is not None:
            return f"{self.public_base}/{quote(self._full(key), safe='/')}{extra}"
        client = await self.client()
        # The SDK knows how this endpoint addresses an object (virtual host or path style):
        # an unsigned GET is its presigned URL without the query.
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": self.location.bucket, "Key": self._full(key)}, ExpiresIn=60
        )
        return str(url).split("?", 1)[0] + extra

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
        # ``version`` cannot be bound (see the module's known limits).
        if self.location.provider == "oss":
            query = [("x-oss-process", self._oss_process(thumb))] if thumb is not None else []
            if attachment:  # signed too: the bucket answers with it, never rendering
                query.append(("response-content-disposition", "attachment"))
            return await self._oss_url(key, expires, query)
        client = await self.client()
        if thumb is not None:
            key = await self._rendered(key, thumb, source)
        params = {"Bucket": self.location.bucket, "Key": self._full(key)}
        if attachment:  # signed into the URL: the bucket answers with it, never rendering
            params["ResponseContentDisposition"] = "attachment"
        url = client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=_expires_in(expires), HttpMethod="GET"
        )
        return str(url)

    # ------------------------------------------------------------- thumbnails

    def _spec(self, thumb: str) -> ThumbSpec:
        if self.thumbs is None:
            raise InvalidArgument("thumbnails are not configured: set [files.thumbs] sizes")
        return self.thumbs.spec(thumb)

    def _oss_process(self, thumb: str) -> str:
        """OSS renders it: ``image/resize`` fitting the box (never enlarging), EXIF
        orientation applied (``auto-orient``), metadata left out, in the configured format."""
        spec = self._spec(thumb)
        assert self.thumbs is not None
        resize = ["image/auto-orient,1", "resize,m_lfit,limit_1"]
        if spec.width:
            resize[1] += f",w_{spec.width}"
        if spec.height:
            resize[1] += f",h_{spec.height}"
        steps = [*resize]
        if self.thumbs.format != "auto":
            steps.append(f"format,{'jpg' if self.thumbs.format == 'jpeg' else self.thumbs.format}")
        steps.append(f"quality,q_{self.thumbs.quality}")
        return "/".join(steps)

    async def _rendered(self, key: str, thumb: str, source: FileInfo | None) -> str:
        """The key of the rendered thumbnail of ``key`` (made and stored on first use, for
        this version of the file): ``<folder>/.~mb-thumb/<name>/<size>-<tag>``."""
        spec = self._spec(thumb)
        assert self.thumbs is not None
        thumbs = self.thumbs
        info = source if source is not None else await self._head(key)
        if info is None:
            raise NotFound("no such file")
        folder, _, name = key.rpartition("/")
        tag = hashlib.sha256(f"{info.version}\n{thumbs.format}\n{thumbs.quality}".encode()).hexdigest()[:20]
        base = f"{folder}/{_THUMB_DIR}/{name}/"
        target = f"{base}{spec.name}-{tag}"
        if await self._head(target) is not None:
            return target
        if info.size > MAX_SOURCE_BYTES:
            raise PayloadTooLarge(f"thumbnails are made of files up to {MAX_SOURCE_BYTES} bytes here")
        from botocore.exceptions import BotoCoreError, ClientError

        client = await self.client()
        bucket = self.location.bucket

        def render() -> None:
            with _DOWNLOADS:  # originals held in memory at once (up to MAX_SOURCE_BYTES each)
                body = client.get_object(Bucket=bucket, Key=self._full(key))["Body"]
                with body:
                    data = body.read(MAX_SOURCE_BYTES + 1)
                made = thumbs.render(data, spec)
                del data
            client.put_object(
                Bucket=bucket, Key=self._full(target), Body=made.data, ContentType=made.content_type
            )
            # Renders of earlier versions of the file at this size.
            listed = client.list_objects_v2(Bucket=bucket, Prefix=self._full(f"{base}{spec.name}-"))
            for o in listed.get("Contents") or ():
                if o["Key"] != self._full(target):
                    client.delete_object(Bucket=bucket, Key=o["Key"])

        try:
            await asyncio.to_thread(render)
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) in _MISSING:
                raise NotFound("no such file") from None
            raise _failed("thumbnail", e) from None
        except BotoCoreError as e:
            raise _failed("thumbnail", e) from None
        return target

    # ----------------------------------------------------------------- reading

    async def _head(self, key: str) -> FileInfo | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            r = await self._call("head_object", Bucket=self.location.bucket, Key=self._full(key))
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) in _MISSING:
                return None
            raise _failed("head_object", e) from None
        except BotoCoreError as e:
            raise _failed("head_object", e) from None
        metadata = r.get("Metadata") or {}
        return FileInfo(
            key=key,
            size=int(r.get("ContentLength", 0)),
            content_type=str(r.get("ContentType") or DEFAULT_CONTENT_TYPE),
            updated=_timestamp(r.get("LastModified")),
            uploader=metadata.get("uploader") or None,
            etag=r.get("ETag"),
            version=r.get("ETag"),
        )

    async def stat(self, key: str) -> FileInfo | None:
        return await self._head(key)

    async def list(
        self, prefix: str, *, start_after: str | None, limit: int
    ) -> tuple[list[FileInfo], str | None]:
        from botocore.exceptions import BotoCoreError, ClientError

        params: dict[str, Any] = {
            "Bucket": self.location.bucket,
            "Prefix": self._full(prefix),
            "MaxKeys": limit,
        }
        if start_after is not None:
            params["StartAfter"] = self._full(start_after)
        try:
            r = await self._call("list_objects_v2", **params)
        except (BotoCoreError, ClientError) as e:
            raise _failed("list_objects_v2", e) from None
        strip = len(self.location.prefix)
        listed = [str(o["Key"])[strip:] for o in r.get("Contents") or ()]
        # Not "folder" markers other tools make, nor minibase's own (rendered thumbnails).
        keys = [k for k in listed if not k.endswith("/") and f"/{RESERVED_SEGMENT_PREFIX}" not in f"/{k}"]
        # Listing gives neither content type nor metadata: ask for each (a few at a time).
        gate = asyncio.Semaphore(self._concurrency)

        async def head(key: str) -> FileInfo | None:
            async with gate:
                return await self._head(key)

        infos = await _gather([head(k) for k in keys])
        more = bool(r.get("IsTruncated")) and listed
        return [i for i in infos if i is not None], listed[-1] if more else None

    # ----------------------------------------------------------------- writing

    async def remove(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await self._call("delete_object", Bucket=self.location.bucket, Key=self._full(key))
            if self.thumbs is not None:  # and its rendered thumbnails
                folder, _, name = key.rpartition("/")
                listed = await self._call(
                    "list_objects_v2",
                    Bucket=self.location.bucket,
                    Prefix=self._full(f"{folder}/{_THUMB_DIR}/{name}/"),
                )
                for o in listed.get("Contents") or ():
                    await self._call("delete_object", Bucket=self.location.bucket, Key=o["Key"])
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) in _MISSING:
                return
            raise _failed("delete_object", e) from None
        except BotoCoreError as e:
            raise _failed("delete_object", e) from None

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            await asyncio.to_thread(client.close)


def _expires_in(expires: int) -> int:
    return max(1, min(7 * 86400, expires - int(time.time())))


def _timestamp(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else time.time()


def _failed(op: str, e: Exception) -> Internal | Unavailable:
    """The SDK's error as ours: Unavailable when the service could not be reached or
    failed on its side (HTTP 5xx, throttling), after the SDK's own retries; Internal for a
    refusal (credentials, bucket), which waiting will not cure."""
    import botocore.exceptions as sdk

    # The SDK's messages name the bucket and key, never credentials.
    log.error("S3 %s failed: %s", op, e)
    if isinstance(e, sdk.ConnectionError | sdk.HTTPClientError):  # refused, reset, timed out, DNS
        return Unavailable("the file store is unavailable")
    if isinstance(e, sdk.ClientError):
        meta = e.response.get("ResponseMetadata") or {}
        code = str(e.response.get("Error", {}).get("Code"))
        if int(meta.get("HTTPStatusCode") or 0) >= 500 or code in _BUSY:
            return Unavailable("the file store is unavailable")
    return Internal("the file store failed")


async def _gather(aws: list[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*aws))
