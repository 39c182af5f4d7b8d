"""Timestamps as the wire shows them. Leaf module."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def rfc3339_ms(ts: float) -> str:
    """``2026-11-25T12:00:00.123Z``: RFC 3339 UTC with milliseconds (document fields)."""
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def rfc3339_s(ts: float) -> str:
    """``2026-11-25T12:00:00Z``: whole seconds (credential Expiration, as STS writes it)."""
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> float:
    return time.time()
