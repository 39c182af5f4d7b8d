"""Admin passwords: scrypt (memory-hard, in the standard library's hashlib).

A hash is ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<key b64>``, so the cost can rise later
without breaking stored hashes. Hashing takes ~0.1 s and 32 MiB: run it off the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["MIN_LENGTH", "check_password_strength", "hash_password", "verify_password"]

MIN_LENGTH = 10
_LOG_N, _R, _P = 15, 8, 1  # 32 MiB of memory per hash: OWASP's scrypt minimum is n=2**17/r=8 at 128 MiB,
# scaled down for FC's smaller instances while staying memory-hard.
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def check_password_strength(password: str) -> str | None:
    """Why ``password`` cannot be an admin's, or None."""
    if len(password) < MIN_LENGTH:
        return f"an admin password needs at least {MIN_LENGTH} characters"
    if len(password) > 1024:
        return "an admin password has at most 1024 characters"
    return None


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=2**_LOG_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${_LOG_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


# Verified when the email is unknown too, so a login's timing does not tell which admins exist.
_DUMMY = "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def verify_password(password: str, stored: str | None) -> bool:
    parts = (stored or _DUMMY).split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or len(password) > 1024:
        return False
    try:
        log_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, want = _unb64(parts[4]), _unb64(parts[5])
        if not (10 <= log_n <= 20 and 1 <= r <= 16 and 1 <= p <= 4):
            return False
        got = hashlib.scrypt(
            password.encode(), salt=salt, n=2**log_n, r=r, p=p, maxmem=_MAXMEM * 4, dklen=len(want)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, want) and stored is not None
