"""Alipay login: ``alipay.system.oauth.token`` over the OpenAPI gateway (docs/architecture.md#platform-protocols).

Requests are RSA2-signed with the app's private key; successful answers must carry a valid
RSA2 signature by Alipay over the raw ``..._response`` substring, else they are refused.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from minibase.auth.providers._http import ProviderHttp, parse_json_object
from minibase.auth.providers.base import Identity
from minibase.config.providers import ALIPAY_GATEWAY, AlipayConfig
from minibase.errors import ConfigError, MinibaseError, ProviderError, Unauthenticated

if TYPE_CHECKING:
    import httpx
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

__all__ = [
    "DEFAULT_GATEWAY",
    "OAUTH_TOKEN_METHOD",
    "OAUTH_TOKEN_RESPONSE_KEY",
    "AlipayProvider",
    "extract_signed_content",
    "from_config",
    "load_private_key",
    "load_public_key",
    "rsa2_sign",
    "rsa2_verify",
    "sign_content",
]

DEFAULT_GATEWAY = ALIPAY_GATEWAY
OAUTH_TOKEN_METHOD = "alipay.system.oauth.token"
OAUTH_TOKEN_RESPONSE_KEY = "alipay_system_oauth_token_response"

_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_COMMON_KEYS = ("app_id", "method", "format", "charset", "sign_type", "timestamp", "version")

# Sub codes meaning "this auth code cannot be exchanged": the user has to get a fresh one, so
# it is the caller's failure (401), not Alipay's (502). isv.code-invalid is what Alipay
# documents for wrong, used and expired codes; isv.unmatched-app-id is a code issued to
# another app; the others are spellings seen from older gateways and SDKs.
_INVALID_CODE_SUB_CODES = frozenset(
    {
        "isv.code-invalid",
        "isv.code-used",
        "isv.invalid-auth-code",
        "isv.auth-code-invalid",
        "invalid-auth-code",
        "isv.unmatched-app-id",
    }
)
_SAFE_TOKEN = re.compile(r"[^A-Za-z0-9._-]")


# --- signing ---------------------------------------------------------------------------


def sign_content(params: Mapping[str, str]) -> str:
    """The string Alipay signs: every param but ``sign`` with a non-empty value, sorted by
    key, ``k=v`` joined by ``&``, values raw (not URL-encoded)."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v)


def rsa2_sign(private_key: RSAPrivateKey, content: str) -> str:
    """RSA PKCS#1 v1.5 with SHA-256 over the UTF-8 bytes, base64."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = private_key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(public_key: RSAPublicKey, content: bytes | str, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is a valid RSA2 signature of ``content``; never raises."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        signature = base64.b64decode("".join(signature_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not signature:
        return False
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# --- keys ------------------------------------------------------------------------------


def _pem_or_der(data: bytes | str, what: str) -> tuple[bool, bytes]:
    """(is_pem, bytes): PEM as given, or the DER decoded from a bare base64 body (the way
    the Alipay console shows keys)."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    raw = raw.strip()
    if b"-----BEGIN" in raw:
        return True, raw
    try:
        der = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if not der:
        raise ValueError(f"{what}: neither PEM nor a base64 key body")
    return False, der


def load_private_key(pem: bytes | str) -> RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8) or a bare base64 body (either DER)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        load_der_private_key,
        load_pem_private_key,
    )

    what = "app private key"
    is_pem, data = _pem_or_der(pem, what)
    try:
        key = (load_pem_private_key if is_pem else load_der_private_key)(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # TypeError: an encrypted key. Never echo the key material.
        raise ValueError(
            f"{what}: not a readable unencrypted private key (expected PEM PKCS#1/PKCS#8 "
            "or the bare base64 body)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{what}: not an RSA key (RSA2 needs RSA)")
    return key


def load_public_key(pem: bytes | str) -> RSAPublicKey:
    """An RSA public key from PEM (SubjectPublicKeyInfo or PKCS#1) or a bare base64 body."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    what = "Alipay public key"
    is_pem, data = _pem_or_der(pem, what)
    if is_pem and b"CERTIFICATE" in data:
        raise ValueError(f"{what}: certificates (public-key certificate mode) are not supported")
    try:
        key = (load_pem_public_key if is_pem else load_der_public_key)(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(
            f"{what}: not a readable public key (expected PEM or the bare base64 body)"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"{what}: not an RSA key (RSA2 needs RSA)")
    return key


# --- response parsing ------------------------------------------------------------------


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in " \t\r\n":
        i += 1
    return i


def _string_end(s: str, i: int) -> int | None:
    """Index just past the JSON string starting at ``s[i] == '"'``."""
    i += 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        else:
            i += 1
    return None


def _value_end(s: str, i: int) -> int | None:
    """Index just past the JSON value starting at ``s[i]``."""
    n = len(s)
    if i >= n:
        return None
    c = s[i]
    if c == '"':
        return _string_end(s, i)
    if c in "{[":
        depth = 0
        while i < n:
            c = s[i]
            if c == '"':
                end = _string_end(s, i)
                if end is None:
                    return None
                i = end
                continue
            if c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return None
    j = i
    while j < n and s[j] not in ",}] \t\r\n":
        j += 1
    return j if j > i else None


def extract_signed_content(body: str, response_key: str) -> str | None:
    """The raw text of the top-level ``response_key`` object in ``body``, byte for byte as
    Alipay sent it (that is what Alipay signs), or None if there is no such object.

    Walks the top-level object token by token, so the key inside a string or a nested
    object, braces or escaped quotes inside strings, and whitespace do not confuse it.
    """
    i = _skip_ws(body, 0)
    if i >= len(body) or body[i] != "{":
        return None
    i += 1
    while True:
        i = _skip_ws(body, i)
        if i >= len(body) or body[i] != '"':
            return None  # "}" (no such key) or malformed
        key_end = _string_end(body, i)
        if key_end is None:
            return None
        try:
            key = orjson.loads(body[i:key_end])
        except orjson.JSONDecodeError:
            return None
        i = _skip_ws(body, key_end)
        if i >= len(body) or body[i] != ":":
            return None
        i = _skip_ws(body, i + 1)
        value_end = _value_end(body, i)
        if value_end is None:
            return None
        if key == response_key:
            return body[i:value_end] if body[i] == "{" else None
        i = _skip_ws(body, value_end)
        if i >= len(body) or body[i] != ",":
            return None
        i += 1


def _text(value: object) -> str | None:
    """A non-empty id from a string or an integer (Alipay may send numbers either way)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _token(value: object) -> str:
    """An upstream error code made safe to put in a message."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return _SAFE_TOKEN.sub("", text)[:64] or "-"


def _alipay_error(error: object) -> MinibaseError:
    if not isinstance(error, dict):
        return ProviderError("Alipay answered an error without details")
    code, sub_code = _token(error.get("code")), _token(error.get("sub_code"))
    if sub_code in _INVALID_CODE_SUB_CODES:
        return Unauthenticated(f"the Alipay auth code is invalid, expired or used ({sub_code})")
    return ProviderError(f"Alipay refused the login request (code {code}, sub_code {sub_code})")


# --- provider --------------------------------------------------------------------------


class AlipayProvider:
    """Exchanges a ``my.getAuthCode`` authCode for the user's Alipay identity."""

    name = "alipay"

    def __init__(
        self,
        app_id: str,
        private_key_pem: bytes,
        alipay_public_key_pem: bytes,
        gateway: str = DEFAULT_GATEWAY,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(app_id, str) or not app_id.strip():
            raise ValueError("app_id: must be a non-empty string")
        self.app_id = app_id.strip()
        self.gateway = gateway
        self._private_key = load_private_key(private_key_pem)
        self._alipay_public_key = load_public_key(alipay_public_key_pem)
        self._http = ProviderHttp("Alipay", timeout, transport)

    def signed_params(self, code: str, now: datetime | None = None) -> dict[str, str]:
        """Common + business params of one oauth.token call, with ``sign``."""
        moment = (now or datetime.now(_BEIJING)).astimezone(_BEIJING)
        params = {
            "app_id": self.app_id,
            "method": OAUTH_TOKEN_METHOD,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "grant_type": "authorization_code",
            "code": code,
        }
        params["sign"] = rsa2_sign(self._private_key, sign_content(params))
        return params

    async def exchange(self, code: str) -> Identity:
        if not isinstance(code, str) or not code.strip():
            raise Unauthenticated("an Alipay auth code is required")
        params = self.signed_params(code.strip())
        # Common params (and sign) in the query string, business params in the form body.
        query = {k: params[k] for k in (*_COMMON_KEYS, "sign")}
        form = {k: v for k, v in params.items() if k not in query}
        response = await self._http.request("POST", self.gateway, params=query, data=form)
        try:
            body = response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise ProviderError("Alipay answered a body that is not UTF-8") from None
        return self._identity_from(body)

    def _identity_from(self, body: str) -> Identity:
        doc = parse_json_object(body, "Alipay")
        if OAUTH_TOKEN_RESPONSE_KEY not in doc:
            if "error_response" in doc:
                # Errors may be unsigned; trusting one can only refuse a login, never grant it.
                raise _alipay_error(doc["error_response"])
            raise ProviderError("Alipay answered without a token response")
        signed = extract_signed_content(body, OAUTH_TOKEN_RESPONSE_KEY)
        sign = doc.get("sign")
        if signed is None or not isinstance(sign, str) or not sign:
            raise ProviderError("Alipay's answer is not signed")
        if not rsa2_verify(self._alipay_public_key, signed, sign):
            raise ProviderError("Alipay's answer has an invalid signature")
        # Read the fields from exactly the bytes that were verified.
        result: Any = orjson.loads(signed)
        status = result.get("code")
        if status is not None and _text(status) != "10000":
            raise _alipay_error(result)
        subject = _text(result.get("open_id")) or _text(result.get("user_id"))
        if subject is None:
            raise ProviderError("Alipay answered without user_id or open_id")
        return Identity(provider=self.name, app_id=self.app_id, subject=subject)

    async def aclose(self) -> None:
        await self._http.aclose()


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(key, f"cannot read {path}: {e.strerror}") from None


def from_config(config: AlipayConfig) -> AlipayProvider:
    """The provider of ``[auth.alipay]``: its key files read, ConfigError naming a bad one."""
    private = _read(config.private_key_file, "auth.alipay.private_key_file")
    public = _read(config.alipay_public_key_file, "auth.alipay.alipay_public_key_file")
    try:
        return AlipayProvider(config.app_id, private, public, config.gateway, config.timeout)
    except ValueError as e:
        raise ConfigError("auth.alipay", str(e)) from None
