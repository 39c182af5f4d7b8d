"""Shape checks for events. Raise InvalidArgument / PayloadTooLarge with the key.

:func:`event` is the one input-limit check every function call passes (core.invoke, so
``/session``, ``/invoke``, the FC Invoke API and FC triggers share it); errors name the
limit's config key (``limit``), its value (``max``) and where in the event (``path``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import InvalidArgument, PayloadTooLarge
from ..util.names import SERVER_FIELDS, is_name

if TYPE_CHECKING:
    from ..config import LimitsConfig

# A JSON path as a linked list, built only for containers and rendered only on error.
_Path = tuple["_Path", str | int] | None

SYSTEM_FIELDS = SERVER_FIELDS


def collection(event: Mapping[str, Any], default: str) -> str:
    name = event.get("collection", default)
    if not isinstance(name, str) or not is_name(name):
        raise InvalidArgument("collection must be 1-64 of [A-Za-z0-9_-], starting with a letter")
    return name


def event(value: dict[str, Any], limits: LimitsConfig) -> None:
    """Check ``value`` against the input limits in one iterative walk (a hostile nesting
    cannot exhaust the stack): nesting depth, keys per object, key and string lengths."""
    max_depth = limits.max_depth
    max_keys = limits.max_keys
    max_key = limits.max_key_length
    max_str = limits.max_string_length
    stack: list[tuple[Any, int, _Path]] = [(value, 1, None)]
    pop, push = stack.pop, stack.append
    while stack:
        v, depth, path = pop()
        children: Iterable[tuple[str | int, Any]]
        if type(v) is dict:
            if len(v) > max_keys:
                raise _too_large("max_keys", max_keys, path, f"has more than {max_keys} keys")
            for k in v:
                if type(k) is not str:
                    raise InvalidArgument(f"{_render(path)}: object keys must be strings")
                if len(k) > max_key:
                    raise _too_large(
                        "max_key_length", max_key, path, f"has a key longer than {max_key} characters"
                    )
            children = v.items()
        else:  # a list
            children = enumerate(v)
        for k, child in children:
            t = type(child)
            if t is str:
                if len(child) > max_str:
                    raise _too_large(
                        "max_string_length",
                        max_str,
                        (path, k),
                        f"is a string longer than {max_str} characters",
                    )
            elif t is dict or t is list:
                if depth >= max_depth:
                    raise _too_large(
                        "max_depth", max_depth, (path, k), f"nests deeper than {max_depth} levels"
                    )
                push((child, depth + 1, (path, k)))


def _render(path: _Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(
            f"[{key}]" if isinstance(key, int) else "." + (key if len(key) <= 40 else key[:40] + "…")
        )
    text = "".join(reversed(parts)).lstrip(".")
    return text or "the event"


def _too_large(name: str, maximum: int, path: _Path, what: str) -> PayloadTooLarge:
    where = _render(path)
    return PayloadTooLarge(
        f"{where} {what} (limits.{name})",
        limit=f"limits.{name}",
        max=maximum,
        path="" if path is None else where,
    )


def doc_id(value: Any, key: str, max_length: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{key} is required and must be a non-empty string")
    if len(value) > max_length:
        raise InvalidArgument(
            f"{key} is longer than {max_length} characters (limits.max_id_length)",
            limit="limits.max_id_length",
            max=max_length,
            path=key,
        )
    if not value.isprintable():
        raise InvalidArgument(f"{key} must not contain control characters")
    return value


def owner(value: Any, key: str = "owner") -> str:
    """A user id named by a client (``owner``): it reaches SQL as a key column, so control
    characters are refused here (PostgreSQL cannot even hold U+0000)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        raise InvalidArgument(f"{key} must be a user id")
    if not value.isprintable():
        raise InvalidArgument(f"{key} must not contain control characters")
    return value


def document(value: Any, key: str, max_depth: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{key} must be an object")
    check_depth(value, key, max_depth)
    json_value(value, key)
    return value


# The JSON a document may hold, so that it reads back the same on every backend: integers
# within 64 bits (what SQLite stores and compares exactly; orjson cannot even write more),
# finite floats (IEEE doubles), strings without U+0000 (PostgreSQL cannot hold it).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def json_value(value: Any, key: str) -> None:
    """Refuse what a document cannot hold (above) with InvalidArgument; -0.0 becomes 0.0 in
    place (PostgreSQL's numeric has no negative zero). Iterative: no stack to exhaust.

    Serializing is many times faster than walking, so a value is walked only when its
    compact JSON may hold something to refuse or change: an integer past 53 bits
    (``OPT_STRICT_INTEGER`` raises), U+0000, -0.0, or null (orjson writes NaN and infinity
    so)."""
    try:
        raw = orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:
        pass
    else:
        if b"null" not in raw and b"-0.0" not in raw and b"\\u0000" not in raw:
            return
    if type(value) is not dict and type(value) is not list:
        _scalar(value, key)
        return
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        items: Iterable[tuple[Any, Any]] = v.items() if type(v) is dict else enumerate(v)
        for k, child in items:
            if type(k) is str and "\x00" in k:
                raise InvalidArgument(f"{key}: field names must not contain \\u0000")
            t = type(child)
            if t is dict or t is list:
                stack.append(child)
            elif t is float and child == 0.0:
                v[k] = 0.0  # replacing a value, not adding a key: safe while iterating
            else:
                _scalar(child, key)


def _scalar(v: Any, key: str) -> None:
    t = type(v)
    if t is int:
        if not INT_MIN <= v <= INT_MAX:
            raise InvalidArgument(
                f"{key}: integers must be within 64 bits (-2^63 to 2^63-1); send a larger one as a string"
            )
    elif t is float:
        if not math.isfinite(v):
            raise InvalidArgument(f"{key}: numbers must be finite")
    elif t is str and "\x00" in v:
        raise InvalidArgument(f"{key}: strings must not contain \\u0000")


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
    n = event.get("limit")
    if n is None:
        return min(default, maximum)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= maximum:
        raise InvalidArgument(
            f"limit must be an integer from 1 to {maximum} (limits.max_query_limit)",
            limit="limits.max_query_limit",
            max=maximum,
            path="limit",
        )
    return n
