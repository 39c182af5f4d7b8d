"""minibase.util.jsonin: request JSON whose integers orjson would silently make floats."""

from __future__ import annotations

import orjson
import pytest

from minibase.errors import InvalidArgument
from minibase.util.jsonin import loads


@pytest.mark.parametrize(
    "data",
    [b"[18446744073709551616]", "[-9223372036854775809]", b'{"a": {"b": [1e3, 1' + b"0" * 300 + b"]}}"],
)
def test_integers_orjson_would_change_are_refused(data: bytes | str) -> None:
    with pytest.raises(InvalidArgument, match="64 bits"):
        loads(data)


@pytest.mark.parametrize(
    "data",
    [
        b"[18446744073709551615, -9223372036854775808, 1e19, 1.8446744073709552e19]",
        b'{"s": "184467440737095516160000", "k": 12345678901234567890.5}',
        "[1, 2.5, null]",
    ],
)
def test_everything_else_parses_as_orjson_does(data: bytes | str) -> None:
    assert loads(data) == orjson.loads(data)


def test_invalid_json_is_orjsons_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        loads(b"[1234567890123456789012, ")
