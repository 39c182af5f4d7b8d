"""Wire timestamps: the cached-second formatting gives what datetime gives."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from minibase.util.timefmt import rfc3339_ms, rfc3339_s


def by_datetime(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@pytest.mark.parametrize(
    "ts",
    [
        0.0,
        1.0,
        1764590400.0,
        1764590400.0005,
        1764590400.9995,
        1764590400.9999996,  # rounds up to the next second
        1764590400.1234565,
        1764590401.999,
        -0.5,
        -1.0000004,
        253402300799.999,  # 9999-12-31T23:59:59.999Z
    ],
)
def test_rfc3339_ms_matches_datetime(ts: float) -> None:
    assert rfc3339_ms(ts) == by_datetime(ts)


def test_rfc3339_ms_matches_datetime_at_random_and_in_any_order() -> None:
    rng = random.Random(7)
    base = 1764590400.0
    stamps = [base + rng.uniform(0, 5) for _ in range(3000)]
    stamps += [base + n + d for n in range(5) for d in (0.0, 0.0004999, 0.0005, 0.999, 0.9995, 0.99999)]
    rng.shuffle(stamps)  # the cache of the last second is left and re-entered
    for ts in stamps:
        assert rfc3339_ms(ts) == by_datetime(ts), ts


def test_rfc3339_s() -> None:
    assert rfc3339_s(1764590400.9) == "2025-12-01T12:00:00Z"
