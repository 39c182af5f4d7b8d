"""Cron expressions: 5 fields (minute hour day month weekday), or 6 with seconds first (as
Function Compute's timer triggers write them). croniter is imported only here, on use."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["fc_cron", "next_after", "parse_cron", "previous_at_or_before"]


def _fields(expr: str) -> list[str]:
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"cron {expr!r}: expected 5 fields (minute hour day month weekday), or 6 with seconds first"
        )
    return fields


def parse_cron(expr: str) -> None:
    """ValueError naming ``expr`` unless it is a valid 5- or 6-field expression."""
    from croniter import croniter

    fields = _fields(expr)
    ok = croniter.is_valid(" ".join(fields), second_at_beginning=len(fields) == 6)
    if not ok:
        raise ValueError(f"cron {expr!r}: not a valid cron expression")


def _iter(expr: str, start: datetime) -> object:
    from croniter import croniter

    fields = _fields(expr)
    return croniter(" ".join(fields), start, second_at_beginning=len(fields) == 6)


def next_after(expr: str, t: float, tz: str) -> float:
    """The first time strictly after ``t`` (epoch seconds) that ``expr`` names, in ``tz``."""
    it = _iter(expr, datetime.fromtimestamp(t, ZoneInfo(tz)))
    nxt: float = it.get_next(float)  # type: ignore[attr-defined]
    return nxt


def previous_at_or_before(expr: str, t: float, tz: str) -> float:
    """The last time at or before ``t`` that ``expr`` names."""
    it = _iter(expr, datetime.fromtimestamp(t + 0.000001, ZoneInfo(tz)))
    prev: float = it.get_prev(float)  # type: ignore[attr-defined]
    return prev


def fc_cron(expr: str, tz: str) -> str:
    """``expr`` as a FC timer trigger's ``cronExpression``: 6 fields (seconds first) with
    ``CRON_TZ`` (FC reads expressions as UTC otherwise)."""
    fields = _fields(expr)
    if len(fields) == 5:
        fields = ["0", *fields]
    return f"CRON_TZ={tz} {' '.join(fields)}"
