"""Checks a FC-signed request the way FC's gateway does, before any function runs.

Pure: takes what the HTTP adapter read off the request, returns the credentials' claims
or raises :class:`GatewayError` with FC's error codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from ..errors import GatewayError
from . import fc_signature
from .credentials import CredentialMinter, TokenClaims

MAX_SKEW = 15 * 60  # seconds a request's Date may be off from ours


def verify_request(
    minter: CredentialMinter,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, fc_signature.QueryValue] | None,
    body: bytes,
    now: float,
    *,
    require_body_digest: bool = False,
) -> TokenClaims:
    """``headers`` must have lower-case names (as ASGI gives them). With
    ``require_body_digest`` a request without Content-MD5 is refused: FC's signature covers
    the body only through that (signed) header."""
    auth = headers.get("authorization")
    if not auth:
        raise GatewayError("MissingRequiredHeader", "the Authorization header is required", 401)
    parsed = fc_signature.parse_authorization(auth)
    if parsed is None:
        raise GatewayError("InvalidArgument", "Authorization must be 'FC <AccessKeyId>:<Signature>'", 400)
    key_id, signature = parsed

    # Browsers may not set Date; x-fc-date (itself signed as an x-fc-* header) stands in.
    date = headers.get("date") or headers.get("x-fc-date")
    if not date:
        raise GatewayError("MissingRequiredHeader", "the Date header is required", 400)
    ts = fc_signature.parse_date(date)
    if ts is None:
        raise GatewayError("InvalidArgument", "the Date header is not an RFC 1123 date", 400)
    if abs(now - ts) > MAX_SKEW:
        raise GatewayError("RequestTimeTooSkewed", "the request's Date is more than 15 minutes off")

    claims, secret = minter.verify(key_id, headers.get("x-fc-security-token", ""), now)
    string = fc_signature.string_to_sign(method, path, headers, query, lower=True)
    expected = fc_signature.sign(secret, string)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise GatewayError("SignatureNotMatch", "the request signature does not match")

    md5 = headers.get("content-md5")
    if md5 is None and require_body_digest:
        raise GatewayError(
            "MissingRequiredHeader", "Content-MD5 is required: the signature must cover the body", 400
        )
    if md5 is not None and not content_md5_matches(md5, body):
        raise GatewayError("InvalidArgument", "Content-MD5 does not match the body", 400)
    return claims


def content_md5_matches(header: str, body: bytes) -> bool:
    """Whether ``header`` is the body's MD5 in any encoding FC accepts.

    FC's SDKs disagree: RFC 1864's base64 of the raw digest (24 characters), FC's Node.js
    SDK base64 of the lower-case hex digest (44), its Go SDK the hex digest itself (32, any
    case); its Python SDK sends none. The header's length names the encoding (the length
    is the sender's, not a secret); that one is compared in constant time.
    """
    given = header.encode("utf-8", "replace")
    n = len(given)
    if n not in (24, 32, 44):
        return False
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    if n == 24:
        return hmac.compare_digest(given, base64.b64encode(digest))
    if n == 44:
        return hmac.compare_digest(given, base64.b64encode(digest.hex().encode()))
    return hmac.compare_digest(given.lower(), digest.hex().encode())
