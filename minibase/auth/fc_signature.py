"""Function Compute 2.0 request signatures (docs/http-api.md#fc-request-signatures), as FC's SDKs compute them.

Leaf module: stdlib only, so the client and the server share one implementation.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable, Mapping
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import unquote

__all__ = [
    "authorization",
    "canonical_resource",
    "format_date",
    "parse_authorization",
    "parse_date",
    "sign",
    "string_to_sign",
]

QueryValue = str | list[str] | tuple[str, ...]


def canonical_resource(path: str, query: Mapping[str, QueryValue] | None = None) -> str:
    """The unescaped path; for HTTP-trigger (``/proxy/``) paths, plus the sorted query."""
    resource = unquote(path)
    if "/proxy/" not in path:
        return resource
    pairs: list[str] = []
    for key, value in (query or {}).items():
        if isinstance(value, str):
            pairs.append(f"{key}={value}")
        elif not value:
            pairs.append(key)  # a bare key (`?flag`) signs as the key alone
        else:
            pairs.extend(f"{key}={v}" for v in value)
    pairs.sort()
    return resource + "\n" + "\n".join(pairs)


def string_to_sign(
    method: str,
    path: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    query: Mapping[str, QueryValue] | None = None,
    *,
    lower: bool = False,
) -> str:
    """``METHOD\\nContent-MD5\\nContent-Type\\nDate\\n`` + x-fc-* headers + resource.

    ``headers`` may use any letter case; only the last value of a repeated header counts.
    ``lower``: ``headers`` is a mapping whose names are all lower case already (a server's).
    """
    h: Mapping[str, str]
    if lower and isinstance(headers, Mapping):
        h = headers
    else:
        items = headers.items() if isinstance(headers, Mapping) else headers
        h = {k.lower(): v for k, v in items}
    fc = "".join(f"{k}:{h[k]}\n" for k in sorted(k for k in h if k.startswith("x-fc-")))
    return "\n".join(
        [
            method.upper(),
            h.get("content-md5", ""),
            h.get("content-type", ""),
            h.get("date", ""),
            fc + canonical_resource(path, query),
        ]
    )


def sign(secret: str, string: str) -> str:
    """base64(HMAC-SHA256(secret, string)).

    HMAC as RFC 2104 defines it, from SHA-256 states of the padded key kept per secret: a
    client signs every call with one secret, and keying OpenSSL's HMAC afresh costs more
    than hashing the request (a few microseconds a call on a server).
    """
    pads = _PADS.get(secret)
    if pads is None:
        key = secret.encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        pads = (hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD)))
        if len(_PADS) >= _PADS_KEPT:  # bounded: secrets are per credentials
            _PADS.clear()
        _PADS[secret] = pads
    inner = pads[0].copy()
    inner.update(string.encode())
    outer = pads[1].copy()
    outer.update(inner.digest())
    return base64.b64encode(outer.digest()).decode()


_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_PADS_KEPT = 4096
_PADS: dict[str, tuple[hashlib._Hash, hashlib._Hash]] = {}


def authorization(
    access_key_id: str,
    access_key_secret: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, QueryValue] | None = None,
) -> str:
    """The ``Authorization`` header value a FC SDK would send."""
    sig = sign(access_key_secret, string_to_sign(method, path, headers, query))
    return f"FC {access_key_id}:{sig}"


def parse_authorization(value: str) -> tuple[str, str] | None:
    """``"FC <id>:<sig>"`` → ``(id, sig)``; None if it is not that shape."""
    if not value.startswith("FC "):
        return None
    key_id, sep, sig = value[3:].strip().rpartition(":")
    if not sep or not key_id or not sig:
        return None
    return key_id, sig


def format_date(timestamp: float | None = None) -> str:
    """RFC 1123 GMT, the ``Date`` header FC expects."""
    return formatdate(timestamp, usegmt=True)


@functools.lru_cache(maxsize=1024)  # clients reuse one Date across many requests
def parse_date(value: str) -> float | None:
    """Seconds since the epoch of an RFC 1123 date; None if unparseable."""
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:
        return None
    return dt.timestamp()
