"""Timestamps as the wire shows them. Leaf module."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone


def rfc3339_ms(ts: float) -> str:
    """``2026-11-25T12:00:00.123Z``: RFC 3339 UTC with milliseconds (document fields).

    Every write stamps one, so the date and time of the last second are kept: formatting
    a datetime took a few microseconds a write. Rounded as ``datetime.fromtimestamp``
    rounds (to the microsecond, half to even), then cut to the millisecond."""
    global _second
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    sec = int(whole)
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{cached[1]}{us // 1000:03d}Z"


_second: tuple[int, str] = (0, "1970-01-01T00:00:00.")  # the last second formatted


def rfc3339_s(ts: float) -> str:
    """``2026-11-25T12:00:00Z``: whole seconds (credential Expiration, as STS writes it)."""
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> float:
    return time.time()
