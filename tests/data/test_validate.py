"""The input limits (data/validate.py), table-driven: each limit at its edge and one past it."""

from __future__ import annotations

from typing import Any

import pytest

from minibase.config import LimitsConfig
from minibase.data import validate
from minibase.errors import InvalidArgument, PayloadTooLarge

SMALL = LimitsConfig(
    max_body=4096,
    max_depth=4,
    max_id_length=8,
    max_string_length=10,
    max_key_length=5,
    max_keys=3,
    max_batch=2,
    max_query_limit=50,
)


def nest(levels: int) -> Any:
    """An event whose nesting is exactly ``levels`` (the event itself is level 1)."""
    v: Any = 1
    for _ in range(levels - 1):
        v = [v]
    return {"a": v} if levels > 1 else {"a": 1}


# (event, limit key or None when accepted, path in the error)
EVENTS: list[tuple[dict[str, Any], str | None, str]] = [
    # depth: dicts and lists both count; the event is level 1
    (nest(4), None, ""),
    (nest(5), "max_depth", "a[0][0][0]"),
    ({"a": {"b": {"c": {}}}}, None, ""),
    ({"a": {"b": {"c": {"d": {}}}}}, "max_depth", "a.b.c.d"),
    ({"a": [{"b": [[]]}]}, "max_depth", "a[0].b[0]"),
    # string length, in objects and in lists, at any level
    ({"s": "x" * 10}, None, ""),
    ({"s": "x" * 11}, "max_string_length", "s"),
    ({"l": ["ok", "y" * 11]}, "max_string_length", "l[1]"),
    ({"o": {"p": ["z" * 11]}}, "max_string_length", "o.p[0]"),
    ({"s": "汉" * 10}, None, ""),  # characters, not bytes
    # key length: keys of nested objects too
    ({"abcde": 1}, None, ""),
    ({"abcdef": 1}, "max_key_length", "the event"),
    ({"o": {"abcdef": 1}}, "max_key_length", "o"),
    ({"l": [{"abcdef": 1}]}, "max_key_length", "l[0]"),
    # keys per object
    ({"a": 1, "b": 2, "c": 3}, None, ""),
    ({"a": 1, "b": 2, "c": 3, "d": 4}, "max_keys", "the event"),
    ({"o": {"a": 1, "b": 2, "c": 3, "d": 4}}, "max_keys", "o"),
    # long lists are bounded by max_body, not max_keys
    ({"l": list(range(100))}, None, ""),
    # non-string values are not measured
    ({"n": 10**30, "f": 1.5, "b": True, "z": None}, "max_keys", "the event"),
    ({"n": 10**30, "f": 1.5, "z": None}, None, ""),
]


@pytest.mark.parametrize(("event", "limit", "path"), EVENTS)
def test_event_limits(event: dict[str, Any], limit: str | None, path: str) -> None:
    if limit is None:
        validate.event(event, SMALL)
        return
    with pytest.raises(PayloadTooLarge) as info:
        validate.event(event, SMALL)
    e = info.value
    assert e.status == 413 and e.code == "PayloadTooLarge"
    assert e.details["limit"] == f"limits.{limit}"
    assert e.details["max"] == getattr(SMALL, limit)
    assert e.details["path"] == ("" if path == "the event" else path)
    assert e.message.startswith(path + " ") and f"(limits.{limit})" in e.message


def test_event_refuses_non_string_keys() -> None:
    with pytest.raises(InvalidArgument, match="keys must be strings"):
        validate.event({"o": {1: "x"}}, SMALL)


def test_hostile_nesting_does_not_exhaust_the_stack() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(PayloadTooLarge, match=r"limits\.max_depth"):
        validate.event({"a": deep}, LimitsConfig())


def test_long_keys_are_cut_in_the_message() -> None:
    with pytest.raises(PayloadTooLarge) as info:
        validate.event({"k" * 300: {"x": "y" * 11}}, LimitsConfig(max_key_length=400, max_string_length=10))
    assert len(info.value.message) < 200 and "…" in info.value.message


# (value, accepted?)
IDS: list[tuple[Any, bool]] = [
    ("a", True),
    ("a" * 8, True),
    ("a" * 9, False),
    ("", False),
    (None, False),
    (7, False),
    ("a\nb", False),
]


@pytest.mark.parametrize(("value", "ok"), IDS)
def test_doc_id(value: Any, ok: bool) -> None:
    if ok:
        assert validate.doc_id(value, "id", SMALL.max_id_length) == value
        return
    with pytest.raises(InvalidArgument) as info:
        validate.doc_id(value, "id", SMALL.max_id_length)
    if isinstance(value, str) and len(value) > SMALL.max_id_length:
        assert info.value.details == {"limit": "limits.max_id_length", "max": 8, "path": "id"}


# (event, maximum, result or None for refused)
LIMITS: list[tuple[dict[str, Any], int, int | None]] = [
    ({}, 1000, 100),
    ({"limit": None}, 1000, 100),
    ({}, 50, 50),  # the default never exceeds the configured maximum
    ({"limit": 1}, 50, 1),
    ({"limit": 50}, 50, 50),
    ({"limit": 51}, 50, None),
    ({"limit": 0}, 50, None),
    ({"limit": True}, 50, None),
    ({"limit": "5"}, 50, None),
    ({"limit": 2.0}, 50, None),
]


@pytest.mark.parametrize(("event", "maximum", "want"), LIMITS)
def test_query_limit(event: dict[str, Any], maximum: int, want: int | None) -> None:
    if want is not None:
        assert validate.limit(event, maximum=maximum) == want
        return
    with pytest.raises(InvalidArgument) as info:
        validate.limit(event, maximum=maximum)
    assert info.value.details["limit"] == "limits.max_query_limit"
