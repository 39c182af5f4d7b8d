"""Local fakes that sign payment notifications exactly as Alipay and WeChat Pay do (keys
generated in the tests). Signing is written here independently of ``minibase``, so a shared
bug cannot hide.

- Alipay's asynchronous notification: a form POST; ``sign`` is RSA2 (PKCS#1 v1.5, SHA-256,
  base64) over every other parameter but ``sign_type`` with a non-empty value, sorted by
  name, ``k=v`` joined by ``&``.
- WeChat Pay API v3: a JSON POST whose ``resource`` is AEAD_AES_256_GCM-encrypted with the
  merchant's APIv3 key (ciphertext + 16-byte tag, base64); headers ``Wechatpay-Timestamp``,
  ``-Nonce``, ``-Serial`` and ``-Signature`` (RSA-SHA256 over ``timestamp\\nnonce\\nbody\\n``
  with the platform private key).
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

__all__ = ["AlipayNotifier", "WechatPayNotifier"]

BEIJING = datetime.timezone(datetime.timedelta(hours=8))


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


class AlipayNotifier:
    """Alipay's side of ``notify_url``: signs trade notifications with Alipay's key."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.key = _key()

    def write_public_key(self, path: Path) -> Path:
        path.write_bytes(_public_pem(self.key))
        return path

    def params(self, **fields: str) -> dict[str, str]:
        now = datetime.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        params = {
            "notify_time": now,
            "notify_type": "trade_status_sync",
            "notify_id": "ac05099524730693a8b330c5ecf72da" + secrets.token_hex(4),
            "app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "trade_no": "2013112011001004330000121536",
            "out_trade_no": "6823789339978248",
            "trade_status": "TRADE_SUCCESS",
            "total_amount": "20.00",
            "buyer_id": "2088102122524333",
            "seller_id": "2088101106499364",
            "subject": "会员 premium",
            "gmt_payment": now,
            **fields,
        }
        return params

    def sign(self, params: dict[str, str], key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
        content = "&".join(
            f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k]
        )
        return {**params, "sign": _sign(key or self.key, content.encode("utf-8"))}

    def body(self, **fields: str) -> tuple[dict[str, str], bytes]:
        """A signed notification: (its parameters, the form body Alipay POSTs)."""
        params = self.sign(self.params(**fields))
        return params, urlencode(params).encode()


class WechatPayNotifier:
    """WeChat Pay's side of ``notify_url`` (API v3)."""

    def __init__(self, mch_id: str = "1230000109") -> None:
        self.mch_id = mch_id
        self.key = _key()
        self.serial = "PUB_KEY_ID_" + secrets.token_hex(12).upper()
        self.api_v3_key = secrets.token_hex(16)  # 32 characters

    def write_public_key(self, path: Path) -> Path:
        path.write_bytes(_public_pem(self.key))
        return path

    def write_certificate(self, path: Path) -> str:
        """A platform certificate of the key; returns its serial (hex, as WeChat Pay names it)."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(self.key, hashes.SHA256())
        )
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return format(serial, "X")

    def encrypt(self, resource: dict[str, Any], api_v3_key: str | None = None) -> dict[str, str]:
        nonce = secrets.token_hex(6)  # 12 characters
        aad = "transaction"
        data = json.dumps(resource, ensure_ascii=False).encode()
        sealed = AESGCM((api_v3_key or self.api_v3_key).encode()).encrypt(nonce.encode(), data, aad.encode())
        return {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(sealed).decode(),
            "associated_data": aad,
            "nonce": nonce,
        }

    def transaction(self, **fields: Any) -> dict[str, Any]:
        return {
            "mchid": self.mch_id,
            "appid": "wxd678efh567hg6787",
            "out_trade_no": "1217752501201407033233368018",
            "transaction_id": "1217752501201407033233368018",
            "trade_type": "JSAPI",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "success_time": datetime.datetime.now(BEIJING).isoformat(timespec="seconds"),
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
            **fields,
        }

    def notification(
        self,
        resource: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        timestamp: int | None = None,
        serial: str | None = None,
        api_v3_key: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """(headers, body) of a signed notification."""
        envelope = {
            "id": id or secrets.token_hex(16),
            "create_time": datetime.datetime.now(BEIJING).isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": self.encrypt(resource or self.transaction(), api_v3_key),
        }
        body = json.dumps(envelope, ensure_ascii=False).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        message = ts.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
        headers = {
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": serial or self.serial,
            "Wechatpay-Signature": _sign(key or self.key, message),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }
        return headers, body
