from __future__ import annotations

import os
from collections import Counter

import pytest

from minibase.util.ids import b64url, b64url_decode, random_id, session_token, token_hash


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
