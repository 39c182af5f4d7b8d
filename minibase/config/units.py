"""Durations, sizes and rates: one grammar for every config value with a unit. Leaf module.

A value is a number followed by a unit, spaces allowed, case ignored:

- durations (seconds): ``ms``; ``s``, ``sec``, ``secs``, ``second``, ``seconds``; ``m``,
  ``min``, ``mins``, ``minute``, ``minutes``; ``h``, ``hr``, ``hrs``, ``hour``, ``hours``;
  ``d``, ``day``, ``days`` ("15m", "15min", "1 day", "30d"). A bare number is seconds.
- sizes (bytes): ``b``; ``kb``/``mb``/``gb`` are decimal (1000), ``kib``/``mib``/``gib``
  binary (1024), and the one-letter ``k``/``m``/``g`` are binary too ("10MiB", "1.5MB", "2G").
- rates: ``COUNT/DURATION`` where the duration's number may be left out ("100/s",
  "20/min", "5/10s", "1000/day", "3/hours").
"""

from __future__ import annotations

import re

from ..util.record import record

__all__ = ["Rate", "parse_duration", "parse_rate", "parse_size"]

MiB = 1024 * 1024

_SECOND, _MINUTE, _HOUR, _DAY = 1.0, 60.0, 3600.0, 86400.0
DURATION_UNITS: dict[str, float] = {"ms": 0.001}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), _SECOND),
    (("m", "min", "mins", "minute", "minutes"), _MINUTE),
    (("h", "hr", "hrs", "hour", "hours"), _HOUR),
    (("d", "day", "days"), _DAY),
):
    DURATION_UNITS |= dict.fromkeys(_names, _seconds)

SIZE_UNITS: dict[str, int] = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
SIZE_UNITS |= {"k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}

# A number (optional: the caller decides) and a unit word (optional: likewise).
_QUANTITY = re.compile(r"\s*(\d+(?:\.\d+)?)?\s*([a-z]*)\s*", re.IGNORECASE)
_DURATION_HINT = "a duration like '15m', '30d' or a number of seconds"
_SIZE_HINT = "a size like '10MiB' or a number of bytes"


def _quantity(
    text: str, units: dict[str, float] | dict[str, int], *, need_number: bool = True, need_unit: bool = False
) -> float | None:
    """``number * unit`` of ``text`` (a missing number is 1, a missing unit the base
    unit), None if it is not in the grammar."""
    m = _QUANTITY.fullmatch(text)
    if m is None:
        return None
    number, unit = m.group(1), m.group(2).lower()
    if (need_number and number is None) or (need_unit and not unit) or (not number and not unit):
        return None
    if unit and unit not in units:
        return None
    return float(number or 1) * (units[unit] if unit else 1)


def parse_duration(value: object) -> float:
    """Seconds from ``900``, ``"900s"``, ``"15min"``, ``"1h"``, ``"1 day"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected {_DURATION_HINT}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        seconds = _quantity(value, DURATION_UNITS)
        if seconds is not None:
            return seconds
    raise ValueError(f"expected {_DURATION_HINT}, got {value!r}")


def parse_size(value: object) -> int:
    """Bytes from ``1048576``, ``"10MiB"``, ``"512 KiB"``, ``"1.5MB"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected {_SIZE_HINT}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        n = _quantity(value, SIZE_UNITS)
        if n is not None:
            return int(n)
    raise ValueError(f"expected {_SIZE_HINT}, got {value!r}")


@record
class Rate:
    """``count`` calls per ``per`` seconds: a token bucket holding ``count`` tokens
    (the burst) that refills at ``count / per`` tokens a second."""

    count: int
    per: float

    @property
    def burst(self) -> float:
        return float(self.count)

    @property
    def per_second(self) -> float:
        return self.count / self.per


_RATE_HINT = 'a rate like "100/s", "20/min", "5/10s", or "off"'


def parse_rate(text: str) -> Rate:
    """``"100/s"``, ``"20/min"``, ``"5/10s"``, ``"1000/day"`` → :class:`Rate`."""
    count_text, slash, per_text = text.partition("/")
    count = count_text.strip()
    # The period needs its unit ("5/10" is not a rate); its number may be left out.
    per = _quantity(per_text, DURATION_UNITS, need_number=False, need_unit=True) if slash else None
    if not count.isascii() or not count.isdigit() or per is None:
        raise ValueError(f"{text!r} is not {_RATE_HINT}")
    n = int(count)
    if not 1 <= n <= 1_000_000 or not 1 <= per <= 86400:
        raise ValueError("expected 1 to 1000000 calls per 1 s to 1 day")
    return Rate(n, per)
