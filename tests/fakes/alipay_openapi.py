"""Alipay OpenAPI methods on the fake gateway (``make_alipay_gateway``), checking what Alipay
checks (the gateway verifies the request's RSA2 signature first), and ``my.getPhoneNumber``
answers built as Alipay builds them: the JSON AES-128-CBC encrypted (zero IV, PKCS#7) under
the app's AES key, the base64 ciphertext signed RSA2 as a quoted JSON string. Written
independently of minibase so a shared bug cannot hide.

Protocols: alipay.security.risk.content.detect, alipay.open.app.mini.templatemessage.send,
my.getPhoneNumber's sensitive-data encryption; the docs are listed in docs/platform.md.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sympadding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.applications import Starlette

__all__ = ["AlipayOpenApi", "add_openapi", "new_aes_key", "phone_answer"]


def new_aes_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


@dataclass
class AlipayOpenApi:
    open_ids: set[str]
    risky_words: set[str] = field(default_factory=lambda: {"赌博", "gamble"})
    templates: set[str] = field(default_factory=lambda: {"TPL_DONE"})
    sent: list[dict[str, Any]] = field(default_factory=list)
    detected: list[str] = field(default_factory=list)
    down: bool = False  # content detection answers 20000 isp.unknow-error


def _fail(
    sub_code: str, sub_msg: str, code: str = "40004", msg: str = "Business Failed"
) -> dict[str, object]:
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _biz(params: dict[str, str]) -> dict[str, Any] | None:
    try:
        value = json.loads(params.get("biz_content", ""))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def add_openapi(gateway: Starlette, api: AlipayOpenApi) -> None:
    """Register the methods on the fake gateway; state at ``gateway.state.openapi``."""
    state = gateway.state.fake

    def detect(params: dict[str, str]) -> dict[str, object]:
        biz = _biz(params)
        if api.down:
            return _fail("isp.unknow-error", "系统繁忙", "20000", "Service Currently Unavailable")
        if biz is None or not isinstance(biz.get("content"), str) or not biz["content"]:
            return _fail("isv.invalid-parameter", "content 不能为空", "40002", "Invalid Arguments")
        api.detected.append(biz["content"])
        hits = [w for w in api.risky_words if w in biz["content"]]
        return {
            "code": "10000",
            "msg": "Success",
            "action": "REJECTED" if hits else "PASSED",
            "keywords": hits,
            "unique_id": os.urandom(8).hex(),
        }

    def template(params: dict[str, str]) -> dict[str, object]:
        biz = _biz(params)
        if biz is None:
            return _fail("isv.invalid-parameter", "biz_content", "40002", "Invalid Arguments")
        to = biz.get("to_open_id", biz.get("to_user_id"))
        if to not in api.open_ids:
            return _fail("USER_NOT_EXIST", "用户不存在")
        if biz.get("user_template_id") not in api.templates:
            return _fail("TEMPLATE_NOT_EXIST", "模板不存在")
        try:
            data = json.loads(biz.get("data", ""))
        except ValueError:
            return _fail("isv.invalid-parameter", "data", "40002", "Invalid Arguments")
        if not isinstance(data, dict):
            return _fail("isv.invalid-parameter", "data", "40002", "Invalid Arguments")
        api.sent.append({**biz, "data": data})
        return {"code": "10000", "msg": "Success"}

    state.methods["alipay.security.risk.content.detect"] = detect
    state.methods["alipay.open.app.mini.templatemessage.send"] = template
    gateway.state.openapi = api


def phone_answer(gateway: Starlette, aes_key: str, mobile: str, *, code: str = "10000") -> dict[str, str]:
    """What ``my.getPhoneNumber`` hands the mini-program: ``{"response", "sign", ...}``."""
    plain = json.dumps({"code": code, "msg": "Success", "mobile": mobile}).encode()
    padder = sympadding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(aes_key)), modes.CBC(bytes(16))).encryptor()
    response = base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()
    key = gateway.state.fake.alipay_private_key
    sign = base64.b64encode(key.sign(f'"{response}"'.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return {
        "response": response,
        "sign": sign,
        "sign_type": "RSA2",
        "encrypt_type": "AES",
        "charset": "UTF-8",
    }
