from __future__ import annotations

import pytest

from minibase.util.bucket import take


def test_new_bucket_is_full() -> None:
    assert take(None, 0, 100.0, 1.0, 5, 1) == (1, 4.0, 101.0, 0.0)


def test_never_more_than_burst_and_refills_at_rate() -> None:
    tokens, t = None, 0.0
    got = 0
    for _ in range(20):
        g, tokens, _, _ = take(tokens, t, t, 2.0, 10, 1)
        got += g
    assert got == 10
    g, _, _, wait = take(tokens, t, t, 2.0, 10, 1)
    assert (g, wait) == (0, 0.5)  # 1 token at 2/s
    g, left, _, _ = take(tokens, t, t + 0.5, 2.0, 10, 3)
    assert (g, round(left, 9)) == (1, 0.0)
    g, left, _, _ = take(0.0, 0.0, 1000.0, 2.0, 10, 3)  # refill caps at burst
    assert (g, left) == (3, 7.0)


def test_lease_takes_what_there_is() -> None:
    g, left, full_at, wait = take(2.5, 0.0, 0.0, 1.0, 10, 5)
    assert (g, left, full_at, wait) == (2, 0.5, 9.5, 0.0)


def test_clock_going_backwards_does_not_refill() -> None:
    g, left, _, wait = take(0.0, 100.0, 50.0, 1.0, 10, 1)
    assert (g, left, wait) == (0, 0.0, 1.0)


@pytest.mark.parametrize("rate", [0.001, 1.0, 1000.0])
def test_full_at_is_when_bucket_refills(rate: float) -> None:
    g, left, full_at, _ = take(None, 0.0, 10.0, rate, 4, 4)
    assert g == 4 and left == 0 and full_at == pytest.approx(10.0 + 4 / rate)
