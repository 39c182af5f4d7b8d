"""Checking payment platforms' notifications: Alipay's asynchronous notifications (RSA2 over
the sorted parameters) and WeChat Pay API v3's (RSA-SHA256 over timestamp, nonce and body;
the resource decrypted with AES-256-GCM). Pure functions: bytes and keys in, the verified
payload out, :class:`~minibase.errors.Unauthenticated` (or InvalidArgument) if refused."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from ..errors import InvalidArgument, Unauthenticated

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = [
    "WECHATPAY_WINDOW",
    "alipay_notification",
    "alipay_sign_content",
    "load_platform_key",
    "wechatpay_decrypt",
    "wechatpay_notification",
]

# WeChat Pay's guidance: refuse a notification whose timestamp is off by more than 5 minutes.
WECHATPAY_WINDOW = 300.0


# --------------------------------------------------------------------------- Alipay


def alipay_sign_content(params: Mapping[str, str]) -> str:
    """What Alipay signs in a notification: every parameter but ``sign`` and ``sign_type``
    with a non-empty value, sorted by name, ``k=v`` joined by ``&``, values decoded."""
    return "&".join(
        f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k]
    )


def _form(body: bytes) -> dict[str, str]:
    # The charset parameter names the encoding of the values (utf-8 or GBK); it is ASCII.
    charset = "utf-8"
    for k, v in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if k == "charset" and v:
            charset = v
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding=charset, errors="strict")
    except (UnicodeError, LookupError):
        raise InvalidArgument("the notification is not a form in its charset") from None
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidArgument(f"the notification repeats the parameter {k[:64]!r}")
        out[k] = v
    return out


def alipay_notification(body: bytes, public_key: RSAPublicKey, app_id: str) -> dict[str, str]:
    """The parameters of a verified Alipay notification (``application/x-www-form-urlencoded``)."""
    from ..auth.providers.alipay import rsa2_verify

    params = _form(body)
    sign = params.get("sign")
    if not sign:
        raise Unauthenticated("the notification is not signed")
    if params.get("sign_type", "RSA2") != "RSA2":
        raise Unauthenticated("only RSA2 signatures are accepted")
    if not rsa2_verify(public_key, alipay_sign_content(params), sign):
        raise Unauthenticated("the notification's signature is not Alipay's")
    if params.get("app_id") != app_id:
        raise Unauthenticated("the notification is for another app_id")
    if not params.get("notify_id"):
        raise InvalidArgument("the notification has no notify_id")
    return params


# ----------------------------------------------------------------------- WeChat Pay


def load_platform_key(pem: bytes) -> RSAPublicKey:
    """A WeChat Pay platform key from a public key PEM or a certificate PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key: Any
    if b"CERTIFICATE" in pem:
        key = x509.load_pem_x509_certificate(pem).public_key()
    else:
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    return key


def wechatpay_decrypt(resource: Any, api_v3_key: str) -> Any:
    """The decrypted ``resource`` of a notification (AEAD_AES_256_GCM), parsed JSON."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise InvalidArgument("the notification's resource is not AEAD_AES_256_GCM")
    nonce, data, aad = resource.get("nonce"), resource.get("ciphertext"), resource.get("associated_data", "")
    if not isinstance(nonce, str) or not isinstance(data, str) or not isinstance(aad, str):
        raise InvalidArgument("the notification's resource lacks nonce or ciphertext")
    try:
        plain = AESGCM(api_v3_key.encode()).decrypt(
            nonce.encode(), base64.b64decode(data, validate=True), aad.encode() or None
        )
    except (InvalidTag, binascii.Error, ValueError):
        raise Unauthenticated("the notification's resource does not decrypt with the APIv3 key") from None
    try:
        return orjson.loads(plain)
    except orjson.JSONDecodeError:
        raise InvalidArgument("the notification's resource is not JSON") from None


def wechatpay_notification(
    headers: Mapping[str, str],
    body: bytes,
    keys: Mapping[str, RSAPublicKey],
    api_v3_key: str,
    now: float,
    mch_id: str | None = None,
) -> tuple[dict[str, Any], Any]:
    """(the notification, its decrypted resource) of a verified WeChat Pay API v3 notification.
    ``headers`` have lower-case names."""
    from ..auth.providers.alipay import rsa2_verify  # RSA PKCS#1 v1.5 + SHA-256, base64

    ts = headers.get("wechatpay-timestamp", "")
    nonce = headers.get("wechatpay-nonce", "")
    signature = headers.get("wechatpay-signature", "")
    serial = headers.get("wechatpay-serial", "")
    if not (ts and nonce and signature and serial):
        raise Unauthenticated("the Wechatpay-Timestamp/-Nonce/-Signature/-Serial headers are required")
    if not ts.isdigit() or abs(now - int(ts)) > WECHATPAY_WINDOW:
        raise Unauthenticated("the notification's timestamp is not within 5 minutes of now")
    key = keys.get(serial)
    if key is None:
        raise Unauthenticated(f"no platform key with serial {serial[:64]!r} is configured")
    message = ts.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    if not rsa2_verify(key, message, signature):
        raise Unauthenticated("the notification's signature is not WeChat Pay's")
    try:
        notification = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidArgument("the notification is not JSON") from None
    if (
        not isinstance(notification, dict)
        or not isinstance(notification.get("id"), str)
        or not notification["id"]
    ):
        raise InvalidArgument("the notification has no id")
    resource = wechatpay_decrypt(notification.get("resource"), api_v3_key)
    if mch_id is not None and isinstance(resource, dict) and resource.get("mchid", mch_id) != mch_id:
        raise Unauthenticated("the notification is for another merchant")
    return notification, resource
