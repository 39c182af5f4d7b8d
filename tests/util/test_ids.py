from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest

from minibase.util.ids import (
    SORTABLE_TIME_CHARS,
    b64url,
    b64url_decode,
    random_id,
    session_token,
    sortable_id,
    token_hash,
)


@pytest.mark.parametrize("n", range(0, 12))
def test_round_trip(n: int) -> None:
    data = os.urandom(n)
    if n:
        assert b64url_decode(b64url(data)) == data


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty
        "YWJ",  # last char carries non-zero unused bits: same bytes as "YWI"
        "YW+I",  # standard alphabet, not url-safe
        "YW I",  # stray characters are not skipped
        "YW=I",
        "YWI=",  # padding is never sent
        "Y",  # impossible length
        "A" * 8193,  # too long
    ],
)
def test_non_canonical_refused(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_every_last_character_variant_but_one_is_refused() -> None:
    # 32 bytes encode to 43 chars; the last char holds 2 unused bits, so the lenient
    # decoder would accept 4 spellings of every MAC. Only the canonical one decodes.
    mac = os.urandom(32)
    text = b64url(mac)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    accepted = []
    for ch in alphabet:
        try:
            if b64url_decode(text[:-1] + ch) == mac:
                accepted.append(ch)
        except ValueError:
            pass
    assert accepted == [text[-1]]


def test_ids_and_tokens() -> None:
    assert random_id("u_").startswith("u_") and len(random_id("u_")) == 22
    t = session_token()
    assert len(t) == 43 and token_hash(t) != token_hash(session_token())


@pytest.mark.parametrize("length", [1, 7, 8, 20, 24, 33])
def test_random_id_is_lower_base32_of_the_asked_length(length: int) -> None:
    ids = {random_id("p.", length) for _ in range(200)}
    assert len(ids) == 200 or length == 1  # 5 bits each: one character repeats
    for i in ids:
        assert i.startswith("p.") and len(i) == length + 2
        assert set(i[2:]) <= set("abcdefghijklmnopqrstuvwxyz234567")


def test_random_id_uses_every_character_at_every_position_evenly() -> None:
    """Every position is 5 uniform bits: all 32 characters show up there about equally
    (the last position included, where a padding or bit-slicing slip would show)."""
    n = 16_000  # 500 expected per character and position
    counts = [Counter[str]() for _ in range(20)]
    for _ in range(n):
        for pos, ch in enumerate(random_id("")):
            counts[pos][ch] += 1
    for c in counts:
        assert len(c) == 32
        assert min(c.values()) > 350 and max(c.values()) < 650, c


B32 = set("abcdefghijklmnopqrstuvwxyz234567")


def test_sortable_ids_sort_as_their_times_do() -> None:
    rng = random.Random(3)
    times = [rng.randrange(0, 2**45) for _ in range(500)] + [0, 1, 31, 32, 2**45 - 1]
    times += [1764590400000 + d for d in range(40)]
    ids = {t: sortable_id(t) for t in times}
    assert all(len(i) == 20 and set(i) <= B32 for i in ids.values())
    assert sorted(times) == sorted(times, key=lambda t: ids[t])
    # The head is the time: equal for one millisecond, the rest random.
    same = {sortable_id(1764590400123) for _ in range(1000)}
    assert len(same) == 1000
    assert {i[:SORTABLE_TIME_CHARS] for i in same} == {sortable_id(1764590400123)[:SORTABLE_TIME_CHARS]}


def test_sortable_id_is_now() -> None:
    before = sortable_id(time.time_ns() // 1_000_000)
    made = sortable_id()
    after = sortable_id(time.time_ns() // 1_000_000 + 1)
    assert before[:SORTABLE_TIME_CHARS] <= made[:SORTABLE_TIME_CHARS] <= after[:SORTABLE_TIME_CHARS]
