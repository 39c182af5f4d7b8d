"""Alibaba OSS's own request signing, V4 (``OSS4-HMAC-SHA256``): signed URLs and PostObject
forms, computed locally with the standard library (no SDK, no request).

OSS documents V4 as its recommended signature (V1, HMAC-SHA1, is the legacy one); the
official Python SDK (``oss2``, ``AuthV4``/``StsAuth(..., auth_version="v4")``) produces the
same URLs (tests/files/test_oss_sign.py holds ours to it).

* Signing key: HMAC-SHA256 chained over ``"aliyun_v4" + secret`` → ``YYYYMMDD`` → region
  (``cn-hangzhou``: OSS's own region id, no ``oss-`` prefix) → ``oss`` → ``aliyun_v4_request``.
* URL: the query carries ``x-oss-signature-version``, ``x-oss-credential``
  (``AK/date/region/oss/aliyun_v4_request``), ``x-oss-date``, ``x-oss-expires`` (seconds
  from that date, at most 7 days), ``x-oss-security-token`` with STS credentials, then
  ``x-oss-signature``: hex HMAC-SHA256 of the string to sign
  (``OSS4-HMAC-SHA256\\n<date>\\n<scope>\\n<sha256 hex of the canonical request>``). The
  canonical request is ``VERB\\n/<bucket>/<key>\\n<sorted query>\\n<headers>\\n<additional
  headers>\\nUNSIGNED-PAYLOAD``; every query parameter but the signature is signed, so
  ``x-oss-process`` (thumbnails) and ``response-content-disposition`` cannot be changed.
* PostObject: a base64 JSON ``policy`` (``expiration``, ``conditions``) whose conditions
  include the bucket, the V4 fields and the caller's; ``x-oss-signature`` is the hex
  HMAC-SHA256 of the base64 policy with the signing key.

A leaf: imports nothing of minibase's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["ALGORITHM", "OssCredentials", "bucket_url", "oss_region", "post_form", "sign_url", "signing_key"]

ALGORITHM = "OSS4-HMAC-SHA256"
MAX_EXPIRES = 7 * 86400
_TERMINATOR = "aliyun_v4_request"


@dataclass(frozen=True)
class OssCredentials:
    access_key_id: str
    secret: str
    security_token: str | None = None


def oss_region(region: str) -> str:
    """The region as V4 names it: ``oss-cn-hangzhou`` (the S3 API's name) → ``cn-hangzhou``."""
    return region.removeprefix("oss-")


def signing_key(secret: str, date: str, region: str) -> bytes:
    key = hmac.digest(("aliyun_v4" + secret).encode(), date.encode(), "sha256")
    for part in (region, "oss", _TERMINATOR):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def bucket_url(endpoint: str, bucket: str, *, path_style: bool) -> str:
    """Where the bucket answers: ``https://bucket.host`` (OSS's own domains), or
    ``http://host/bucket`` for a path-style endpoint (an IP, a local fake)."""
    parts = urlsplit(endpoint)
    if path_style:
        return f"{parts.scheme}://{parts.netloc}/{bucket}"
    return f"{parts.scheme}://{bucket}.{parts.netloc}"


def _stamp(now: float) -> tuple[str, str]:
    moment = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(now)))
    return moment, moment[:8]


def _enc(text: str) -> str:
    # V4's URI encoding: everything but A-Z a-z 0-9 - _ . ~ as %XX (UTF-8, upper-case hex).
    return quote(text, safe="")


def sign_url(
    credentials: OssCredentials,
    *,
    method: str,
    endpoint: str,
    bucket: str,
    key: str,
    region: str,
    path_style: bool,
    expires: int,
    now: float,
    params: list[tuple[str, str]] | None = None,
) -> str:
    """A V4 query-signed URL of ``key``, valid ``expires`` seconds from ``now``; ``params``
    (``x-oss-process``, ``response-content-disposition``, ...) are signed with it."""
    if not 1 <= expires <= MAX_EXPIRES:
        raise ValueError(f"expires must be 1..{MAX_EXPIRES} seconds")
    moment, date = _stamp(now)
    scope = f"{date}/{region}/oss/{_TERMINATOR}"
    query = list(params or ())
    if credentials.security_token:
        query.append(("x-oss-security-token", credentials.security_token))
    query += [
        ("x-oss-date", moment),
        ("x-oss-expires", str(expires)),
        ("x-oss-signature-version", ALGORITHM),
        ("x-oss-credential", f"{credentials.access_key_id}/{scope}"),
    ]
    canonical_query = "&".join(
        f"{k}={v}" if v else k for k, v in sorted((_enc(k), _enc(v)) for k, v in query)
    )
    canonical_request = "\n".join(
        [method, quote(f"/{bucket}/{key}", safe="/"), canonical_query, "", "", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join([ALGORITHM, moment, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = hmac.new(
        signing_key(credentials.secret, date, region), to_sign.encode(), "sha256"
    ).hexdigest()
    query.append(("x-oss-signature", signature))
    base = bucket_url(endpoint, bucket, path_style=path_style)
    return f"{base}/{quote(key, safe='/')}?" + "&".join(f"{_enc(k)}={_enc(v)}" for k, v in query)


def post_form(
    credentials: OssCredentials,
    *,
    endpoint: str,
    bucket: str,
    key: str,
    region: str,
    path_style: bool,
    expires: int,
    now: float,
    conditions: list[Any],
    fields: dict[str, str],
) -> tuple[str, dict[str, str]]:
    """A PostObject form for exactly ``key``: the URL and the fields to send before the
    file. The policy pins the bucket, the key, ``conditions`` (the caller's: size range,
    ``Content-Type``, metadata) and the V4 fields; it expires ``expires`` seconds from ``now``."""
    if not 1 <= expires <= MAX_EXPIRES:
        raise ValueError(f"expires must be 1..{MAX_EXPIRES} seconds")
    moment, date = _stamp(now)
    credential = f"{credentials.access_key_id}/{date}/{region}/oss/{_TERMINATOR}"
    signed: dict[str, str] = {
        "x-oss-signature-version": ALGORITHM,
        "x-oss-credential": credential,
        "x-oss-date": moment,
    }
    if credentials.security_token:
        signed["x-oss-security-token"] = credentials.security_token
    policy = {
        "expiration": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(now) + expires)),
        "conditions": [
            {"bucket": bucket},
            ["eq", "$key", key],
            *conditions,
            *({name: value} for name, value in signed.items()),
        ],
    }
    encoded = base64.b64encode(json.dumps(policy, separators=(",", ":")).encode()).decode()
    signature = hmac.new(
        signing_key(credentials.secret, date, region), encoded.encode(), "sha256"
    ).hexdigest()
    form = {"key": key, **fields, "policy": encoded, **signed, "x-oss-signature": signature}
    return bucket_url(endpoint, bucket, path_style=path_style), form
