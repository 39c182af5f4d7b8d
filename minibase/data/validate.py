"""Shape checks for data events. Raise InvalidArgument / PayloadTooLarge with the key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgument, PayloadTooLarge

_COLLECTION = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
SYSTEM_FIELDS = frozenset({"uid", "_version", "_created", "_updated"})


def collection(event: Mapping[str, Any], default: str) -> str:
    name = event.get("collection", default)
    if not isinstance(name, str) or not _COLLECTION.match(name):
        raise InvalidArgument("collection must be 1-64 of [A-Za-z0-9_-], starting with a letter")
    return name


def doc_id(value: Any, key: str, max_length: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{key} is required and must be a non-empty string")
    if len(value) > max_length:
        raise InvalidArgument(f"{key} is longer than {max_length} characters")
    if not value.isprintable():
        raise InvalidArgument(f"{key} must not contain control characters")
    return value


def document(value: Any, key: str, max_depth: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{key} must be an object")
    check_depth(value, key, max_depth)
    return value


def check_depth(value: Any, key: str, max_depth: int) -> None:
    """Iterative, so a hostile nesting cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > max_depth:
            raise PayloadTooLarge(f"{key} is nested deeper than {max_depth} levels")
        if isinstance(v, dict):
            for k, child in v.items():
                if not isinstance(k, str) or k.startswith("$"):
                    raise InvalidArgument(f"{key}: field names must not start with '$'")
                if isinstance(child, dict | list):
                    stack.append((child, depth + 1))
        elif isinstance(v, list):
            stack.extend((c, depth + 1) for c in v if isinstance(c, dict | list))


def limit(event: Mapping[str, Any], default: int = 100, maximum: int = 1000) -> int:
    n = event.get("limit", default)
    if n is None:
        return default
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= maximum:
        raise InvalidArgument(f"limit must be an integer from 1 to {maximum}")
    return n
