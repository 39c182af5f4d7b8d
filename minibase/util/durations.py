"""Parse human durations ("15m", "30d", 900) into seconds. Leaf module."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds from ``900``, ``"900s"``, ``"15m"``, ``"1h"``, ``"30d"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '15m', '30d' or a number of seconds")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _RE.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    raise ValueError(f"expected a duration like '15m', '30d' or a number of seconds, got {value!r}")
