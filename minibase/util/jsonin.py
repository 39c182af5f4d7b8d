"""JSON from the network: orjson, except that a number it would silently change is refused.

orjson parses an integer outside [-2**63, 2**64 - 1] as a float (``18446744073709551616``
becomes ``1.8446744073709552e+19``): the sender's number would be stored and answered as
another one. Such a literal has at least 19 digits, so only a body holding a run of 19
digits (in a string or not) is parsed a second time, by the standard library, to tell.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..errors import InvalidArgument

__all__ = ["loads"]

_LONG_DIGITS = re.compile(rb"\d{19}")
_MIN, _MAX = -(2**63), 2**64 - 1  # what orjson parses as an int


class _Beyond(Exception):
    pass


def loads(data: bytes | str) -> Any:
    """``orjson.loads(data)`` (its JSONDecodeError included), InvalidArgument for an
    integer orjson would turn into a float."""
    value = orjson.loads(data)
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS.search(raw):
        _check_integers(raw)
    return value


def _exact(text: str) -> int:
    try:
        n = int(text)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise _Beyond from None
    if not _MIN <= n <= _MAX:
        raise _Beyond
    return n


def _check_integers(data: bytes) -> None:
    import json

    try:
        json.loads(data, parse_int=_exact)
    except _Beyond:
        raise InvalidArgument(
            "an integer is outside 64 bits: send it as a string (or a float, if it is one)"
        ) from None
    except ValueError:  # not ours to judge: orjson accepted it
        pass
