"""Opaque page cursors. Keyset-based, so pages stay stable under concurrent inserts."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import InvalidArgument
from ..util.ids import b64url, b64url_decode

_PREFIX = "c1."


def encode(position: list[Any]) -> str:
    return _PREFIX + b64url(orjson.dumps(position))


def decode(cursor: Any) -> list[Any]:
    if not isinstance(cursor, str) or not cursor.startswith(_PREFIX):
        raise InvalidArgument("cursor is not one this server returned")
    try:
        value = orjson.loads(b64url_decode(cursor[len(_PREFIX) :]))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidArgument("cursor is not one this server returned") from None
    if not isinstance(value, list):
        raise InvalidArgument("cursor is not one this server returned")
    return value
