from __future__ import annotations

from minibase.console.passwords import check_password_strength, hash_password, verify_password


def test_scrypt_hash_verifies_only_its_password() -> None:
    stored = hash_password("correct-horse-battery")
    assert stored.startswith("scrypt$15$8$1$")
    assert verify_password("correct-horse-battery", stored)
    assert not verify_password("correct-horse-batterY", stored)
    assert hash_password("correct-horse-battery") != stored  # salted


def test_unknown_admin_and_malformed_hashes_never_verify() -> None:
    assert not verify_password("anything", None)
    for bad in ("", "plain", "scrypt$99$8$1$AA$AA", "md5$x$y$z$a$b", "scrypt$15$8$1$!!$!!"):
        assert not verify_password("anything", bad)


def test_short_passwords_are_refused() -> None:
    assert check_password_strength("short") is not None
    assert check_password_strength("long enough pass") is None
