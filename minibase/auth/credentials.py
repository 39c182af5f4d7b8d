"""Stateless invoke credentials (docs/architecture.md#concepts), the local stand-in for STS.

The SecurityToken carries ``key id | access key id | session ref | uid | expiry`` under an
HMAC made with a key derived from the server secret; the AccessKeySecret is an HMAC of the
AccessKeyId. So nothing is stored, any instance with the secret can verify, and rotating
the secret (``app.secret = [new, old]``) keeps outstanding credentials valid until they
expire. Credentials name the session they were minted for: the caller checks that it
still lives and matches the event's ``sid``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from ..errors import GatewayError
from ..util.ids import b64url, b64url_decode, random_id
from ..util.record import record
from ..util.timefmt import rfc3339_s

__all__ = ["Credentials", "CredentialMinter", "TokenClaims"]

_TOKEN_PREFIX = "mb1."
_CACHE_SIZE = 65536  # verified tokens kept; ~300 bytes each


@record
class Credentials:
    """Invoke credentials as minted (the wire shape comes from :meth:`to_wire`)."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: float

    def to_wire(self) -> dict[str, str]:
        return {
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret,
            "SecurityToken": self.security_token,
            "Expiration": rfc3339_s(self.expiration),
        }


@record
class TokenClaims:
    """What a verified SecurityToken says: key id, session, user, expiry."""

    access_key_id: str
    session_ref: str  # the session row's id (never the sessionId itself)
    uid: str
    expires: int
    kid: str


class _Key:
    __slots__ = ("cred", "kid", "token")

    def __init__(self, secret: str) -> None:
        master = secret.encode()
        self.token = hmac.new(master, b"minibase/security-token/v1", hashlib.sha256).digest()
        self.cred = hmac.new(master, b"minibase/access-key-secret/v1", hashlib.sha256).digest()
        self.kid = hashlib.sha256(self.token).hexdigest()[:8]


class CredentialMinter:
    def __init__(self, secrets: Sequence[str], ttl: float) -> None:
        if not secrets:
            raise ValueError("at least one secret is needed")
        self._keys = [_Key(s) for s in secrets]
        self._by_kid = {k.kid: k for k in reversed(self._keys)}
        self.ttl = ttl
        self._verified: dict[str, tuple[TokenClaims, str]] = {}

    def mint(self, session_ref: str, uid: str, now: float) -> Credentials:
        key = self._keys[0]
        akid = random_id("STS.", 24)
        expires = int(now + self.ttl)
        payload = f"{key.kid}|{akid}|{session_ref}|{uid}|{expires}".encode()
        mac = hmac.digest(key.token, payload, "sha256")
        token = _TOKEN_PREFIX + b64url(payload) + "." + b64url(mac)
        return Credentials(akid, self._secret(key, akid), token, float(expires))

    def verify(self, access_key_id: str, token: str, now: float) -> tuple[TokenClaims, str]:
        """Check the token's MAC, key id binding and expiry; return claims and the secret.

        Raises :class:`GatewayError` with FC's error codes.
        """
        hit = self._verified.get(token)
        if hit is None:
            hit = self._check_mac(token)
            # A client reuses one token for its whole lifetime: remember the MAC check.
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = hit
        claims, secret = hit
        if not hmac.compare_digest(claims.access_key_id.encode(), access_key_id.encode()):
            raise GatewayError("InvalidAccessKeyId.NotFound", "the access key id does not match the token")
        if claims.expires <= now:
            raise GatewayError("InvalidSecurityToken.Expired", "the credentials have expired")
        return claims, secret

    def _check_mac(self, token: str) -> tuple[TokenClaims, str]:
        if not token:
            raise GatewayError("InvalidSecurityToken", "x-fc-security-token is required")
        try:
            if not token.startswith(_TOKEN_PREFIX):
                raise ValueError
            p64, _, m64 = token[len(_TOKEN_PREFIX) :].partition(".")
            payload, mac = b64url_decode(p64), b64url_decode(m64)
            kid, akid, session_ref, uid, exp = payload.decode().split("|")
            expires = int(exp)
        except (ValueError, UnicodeDecodeError):
            raise GatewayError("InvalidSecurityToken", "the security token is malformed") from None
        key = self._by_kid.get(kid)
        if key is None or not hmac.compare_digest(mac, hmac.digest(key.token, payload, "sha256")):
            raise GatewayError("InvalidSecurityToken", "the security token is invalid")
        return TokenClaims(akid, session_ref, uid, expires, kid), self._secret(key, akid)

    @staticmethod
    def _secret(key: _Key, akid: str) -> str:
        return b64url(hmac.digest(key.cred, akid.encode(), "sha256"))
