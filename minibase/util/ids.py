"""Random identifiers and hashes. Leaf module."""

from __future__ import annotations

import base64
import hashlib
import random
import secrets
import time
from collections.abc import Mapping
from typing import Any


def random_id(prefix: str, length: int = 20) -> str:
    """``prefix`` + ``length`` random lower-case base32 characters (5 bits each).

    One ``os.urandom`` call, a byte per character mapped by its low 5 bits in C (a
    ``secrets.choice`` per character made 40 system calls for an id, a visible share of
    an insert; ``base64.b32encode`` is a Python loop on 3.11)."""
    return prefix + secrets.token_bytes(length).translate(_B32_BY_LOW_BITS).decode()


# byte -> the base32 character of its low 5 bits: uniform bytes give uniform characters
_B32_BY_LOW_BITS = bytes(b"abcdefghijklmnopqrstuvwxyz234567"[b & 31] for b in range(256))

# The same 32 characters in ASCII order, so a number written with them sorts as text does.
_SORTED_B32 = "234567abcdefghijklmnopqrstuvwxyz"
SORTABLE_TIME_CHARS = 9  # 45 bits of milliseconds since 1970: until the year 3084


def sortable_id(now_ms: int | None = None) -> str:
    """20 lower-case base32 characters: the time in milliseconds (9 characters, in an
    alphabet whose order is ASCII's) then 11 random ones (55 bits, :func:`random_id`).

    Generated document ids: stored in a primary key and indexes, random ids land anywhere
    in the B-trees, so each insert of a batch dirtied its own pages (about a quarter more
    CPU per insert, measured, and more WAL to write and checkpoint); ids of one moment
    land together. Text order is creation order, to the millisecond."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    head = "".join(_SORTED_B32[(ms >> shift) & 31] for shift in range(40, -1, -5))
    return head + random_id("", 20 - SORTABLE_TIME_CHARS)


# The ASGI scope key under which FC's handlers hand the invocation's own request id to the app.
REQUEST_ID_KEY = "minibase.request_id"


def new_request_id() -> str:
    """A fresh request id (16 hex characters): the one place ids are minted.

    A label for logs and answers, not a secret: from :mod:`random` (reseeded in every
    forked process), without the system call ``os.urandom`` makes on every request."""
    return _bits(64).to_bytes(8, "big").hex()


_bits = random.getrandbits


def request_id(scope: Mapping[str, Any]) -> str:
    """The request's id: the platform's (set under :data:`REQUEST_ID_KEY`), else a new one.

    Called once per request, where the request is answered (the app's function routes,
    Starlette's error handler or the files app): the id is then passed down, not re-read.
    """
    given = scope.get(REQUEST_ID_KEY)
    return given if isinstance(given, str) and given else new_request_id()


def platform_request_id(value: object) -> str | None:
    """``value`` if it can serve as a request id (in a header, a log line), else None."""
    if isinstance(value, str) and 0 < len(value) <= 128 and value.isascii() and value.isprintable():
        return None if " " in value else value
    return None


def session_token() -> str:
    """A sessionId: 32 random bytes, url-safe base64 without padding (43 chars)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What is stored for a sessionId: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).digest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; ValueError on anything else.

    Strict: only the canonical encoding decodes. The lenient stdlib decoder ignores
    stray characters and the unused low bits of the last character, so several
    strings would name one token (malleable signatures and cache keys).
    """
    if not text or len(text) > 8192:
        raise ValueError("bad base64url")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError("bad base64url") from e
    if b64url(data) != text:
        raise ValueError("bad base64url")
    return data
