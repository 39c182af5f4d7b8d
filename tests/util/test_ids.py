from __future__ import annotations

import os

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
