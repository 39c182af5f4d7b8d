"""Token-bucket arithmetic, shared by every store that keeps rate-limit state. Leaf module.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second; a call spends
one. Stores keep ``(tokens, updated)`` per key plus ``full_at``, the moment the bucket
would be full again: a row past its ``full_at`` says nothing an absent row does not, so
stores may delete such rows at any time (that is how they stay small).
"""

from __future__ import annotations

import math

__all__ = ["take"]


def take(
    tokens: float | None, updated: float, now: float, rate: float, burst: float, want: int
) -> tuple[int, float, float, float]:
    """Spend up to ``want`` whole tokens from a bucket last seen at (``tokens``, ``updated``)
    (``tokens`` None: a new, full bucket).

    Returns ``(granted, tokens_left, full_at, retry_after)``: ``retry_after`` is the seconds
    until one token is available when nothing was granted, else 0.
    """
    level = burst if tokens is None else min(burst, tokens + max(0.0, now - updated) * rate)
    granted = max(0, min(want, math.floor(level + 1e-9)))
    left = level - granted
    full_at = now + (burst - left) / rate
    retry_after = 0.0 if granted else (1.0 - left) / rate
    return granted, left, full_at, retry_after
