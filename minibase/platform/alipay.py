"""``ctx.platform.alipay``: Alipay's OpenAPI as the app (docs/platform.md#alipay).

Every call is one RSA2-signed request to the gateway (common parameters in the query
string, ``biz_content`` in the form body), signed exactly as the login's
``alipay.system.oauth.token`` (:mod:`minibase.auth.providers.alipay`); an answer counts
only with Alipay's valid signature over the exact bytes of its ``..._response`` object.
Alipay needs no access token.

``my.getPhoneNumber``'s answer is checked and decrypted here: its ``sign`` is Alipay's RSA2
signature over the ``response`` string (quoted, when it is ciphertext), and the ciphertext
is AES-128-CBC (zero IV, PKCS#7 padding) under the app's AES key (``[auth.alipay] aes_key``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..auth.providers.alipay import (
    _BEIJING,
    _COMMON_KEYS,
    extract_signed_content,
    load_private_key,
    load_public_key,
    rsa2_sign,
    rsa2_verify,
    sign_content,
)
from ..config.providers import AlipayConfig
from ..errors import ConfigError, InvalidArgument, ProviderError, Unavailable
from ._http import PlatformHttp, bridge

if TYPE_CHECKING:
    import httpx

__all__ = ["AlipayClient", "decrypt_aes", "load_aes_key"]

_METHOD = re.compile(r"[a-z]+(\.[a-z0-9]+)+")
_USER_ID = re.compile(r"2088\d{12}")
_BUSY_SUB_CODES = ("isp.", "aop.")  # Alipay's side, or its gateway: try again later


def load_aes_key(text: str) -> bytes:
    """The console's AES key: base64 of 16, 24 or 32 bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) not in (16, 24, 32):
        raise ValueError("aes_key: not the base64 AES key the Alipay console shows")
    return key


def decrypt_aes(ciphertext_b64: str, key: bytes) -> bytes:
    """AES-CBC with a zero IV and PKCS#7 padding, as Alipay encrypts sensitive answers."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        data = base64.b64decode(ciphertext_b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("the phone number answer is not base64 ciphertext") from None
    if not data or len(data) % 16:
        raise InvalidArgument("the phone number answer is not AES ciphertext")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise InvalidArgument("the phone number answer does not decrypt with aes_key") from None


class AlipayClient:
    name = "alipay"

    def __init__(
        self,
        config: AlipayConfig,
        loop: asyncio.AbstractEventLoop | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        from ..auth.providers.alipay import _read

        self.app_id = config.app_id
        self.gateway = config.gateway
        try:
            self._private_key = load_private_key(
                _read(config.private_key_file, "auth.alipay.private_key_file")
            )
            self._public_key = load_public_key(
                _read(config.alipay_public_key_file, "auth.alipay.alipay_public_key_file")
            )
            self._aes_key = load_aes_key(config.aes_key) if config.aes_key else None
        except ValueError as e:
            raise ConfigError("auth.alipay", str(e)) from None
        self._http = PlatformHttp("Alipay", config.timeout, transport)
        self.loop = loop

    def __repr__(self) -> str:
        return f"AlipayClient(app_id={self.app_id!r})"

    def _run(self, coro: Any) -> Any:
        return coro if self.loop is None else bridge(self.loop, coro)

    # ----------------------------------------------------------------- generic

    def call(self, method: str, biz_content: Mapping[str, Any] | None = None, **params: str) -> Any:
        """Call the OpenAPI ``method`` (e.g. ``alipay.security.risk.content.detect``):
        the verified ``..._response`` object when its ``code`` is 10000, ``ProviderError``
        naming ``sub_code`` otherwise. ``params``: other business parameters."""
        return self._run(self._call(method, biz_content, params))

    def signed_params(
        self, method: str, business: Mapping[str, str], now: datetime | None = None
    ) -> dict[str, str]:
        moment = (now or datetime.now(_BEIJING)).astimezone(_BEIJING)
        out = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            **business,
        }
        out["sign"] = rsa2_sign(self._private_key, sign_content(out))
        return out

    async def _call(
        self, method: str, biz_content: Mapping[str, Any] | None, extra: Mapping[str, str]
    ) -> dict[str, Any]:
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            raise InvalidArgument(
                "method is an OpenAPI method name like 'alipay.security.risk.content.detect'"
            )
        business = dict(extra)
        if biz_content is not None:
            business["biz_content"] = orjson.dumps(dict(biz_content)).decode()
        params = self.signed_params(method, business)
        query = {k: params[k] for k in (*_COMMON_KEYS, "sign")}
        form = {k: v for k, v in params.items() if k not in query}
        _, raw = await self._http.json("POST", self.gateway, params=query, data=form)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Unavailable("Alipay answered a body that is not UTF-8", retry_after=5) from None
        key = method.replace(".", "_") + "_response"
        signed = extract_signed_content(body, key)
        if signed is None:
            error = extract_signed_content(body, "error_response")
            # Unsigned errors can only refuse, never grant: read them as such.
            raise _error(orjson.loads(error) if error else {}, method)
        sign = orjson.loads(body).get("sign")
        if not isinstance(sign, str) or not rsa2_verify(self._public_key, signed, sign):
            raise ProviderError(f"Alipay's answer to {method} has no valid signature")
        result: dict[str, Any] = orjson.loads(signed)
        if str(result.get("code")) != "10000":
            raise _error(result, method)
        return result

    # ------------------------------------------------------------------ typed

    def text_risk(self, content: str) -> Any:
        """alipay.security.risk.content.detect: ``{"action": "PASSED"|"REJECTED",
        "keywords": [...], "unique_id": ...}``."""
        return self._run(self._text_risk(content))

    async def _text_risk(self, content: str) -> dict[str, Any]:
        result = await self._call("alipay.security.risk.content.detect", {"content": content}, {})
        if result.get("action") not in ("PASSED", "REJECTED"):
            raise Unavailable("Alipay's content detection answered without an action", retry_after=5)
        return result

    async def check_text(self, text: str, openid: str) -> tuple[bool, str | None]:
        """The declarative content check: (passes, label)."""
        result = await self._text_risk(text)
        return result["action"] == "PASSED", ",".join(map(str, result.get("keywords") or [])) or None

    def send_template_message(
        self,
        to_user: str,
        user_template_id: str,
        data: Mapping[str, Any],
        *,
        page: str | None = None,
        form_id: str | None = None,
    ) -> Any:
        """alipay.open.app.mini.templatemessage.send to ``to_user`` (an open_id, or a
        2088… user_id); ``data`` as Alipay's template keywords (``{"keyword1": {"value":
        ...}}``, plain values wrapped)."""
        biz: dict[str, Any] = {
            "to_user_id" if _USER_ID.fullmatch(to_user) else "to_open_id": to_user,
            "user_template_id": user_template_id,
            "data": orjson.dumps(
                {k: v if isinstance(v, dict) else {"value": str(v)} for k, v in data.items()}
            ).decode(),
        }
        if page is not None:
            biz["page"] = page
        if form_id is not None:
            biz["form_id"] = form_id
        return self._run(self._call("alipay.open.app.mini.templatemessage.send", biz, {}))

    def phone_number(self, answer: Mapping[str, Any] | str) -> Any:
        """``my.getPhoneNumber``'s answer (``{"response", "sign", ...}`` or its JSON text)
        checked and decrypted: the mobile number. ``InvalidArgument`` if it is not one
        Alipay signed for this app."""
        return self._run(self._phone(answer))

    async def _phone(self, answer: Mapping[str, Any] | str) -> str:
        return self.decrypt_phone(answer)

    def decrypt_phone(self, answer: Mapping[str, Any] | str) -> str:
        if isinstance(answer, str):
            try:
                answer = orjson.loads(answer)
            except orjson.JSONDecodeError:
                raise InvalidArgument("the getPhoneNumber answer is not JSON") from None
        if not isinstance(answer, Mapping):
            raise InvalidArgument("the getPhoneNumber answer is an object with response and sign")
        content, sign = answer.get("response"), answer.get("sign")
        if not isinstance(content, str) or not content or not isinstance(sign, str) or not sign:
            raise InvalidArgument("the getPhoneNumber answer needs response and sign")
        if answer.get("sign_type", "RSA2") != "RSA2":
            raise InvalidArgument("the getPhoneNumber answer must be signed RSA2")
        encrypted = not content.lstrip().startswith("{")
        # Alipay signs the ciphertext as a JSON string (in quotes), plain answers as they are.
        if not rsa2_verify(self._public_key, f'"{content}"' if encrypted else content, sign):
            raise InvalidArgument("the getPhoneNumber answer's signature is not Alipay's")
        if encrypted:
            if self._aes_key is None:
                raise InvalidArgument("set [auth.alipay] aes_key to decrypt phone numbers")
            plain = decrypt_aes(content, self._aes_key)
        else:
            plain = content.encode()
        try:
            doc = orjson.loads(plain)
        except orjson.JSONDecodeError:
            raise InvalidArgument("the getPhoneNumber answer does not decrypt to JSON") from None
        if not isinstance(doc, dict) or str(doc.get("code")) != "10000":
            sub = doc.get("subCode", doc.get("sub_code")) if isinstance(doc, dict) else None
            raise InvalidArgument(f"Alipay did not give the phone number ({sub or 'no code'})")
        mobile = doc.get("mobile")
        if not isinstance(mobile, str) or not mobile.strip():
            raise InvalidArgument("the getPhoneNumber answer has no mobile")
        return mobile.strip()

    async def aclose(self) -> None:
        await self._http.aclose()


def _error(doc: Mapping[str, Any], method: str) -> ProviderError | Unavailable:
    code = str(doc.get("code", "-"))[:16]
    sub_code = re.sub(r"[^A-Za-z0-9._-]", "", str(doc.get("sub_code", "-")))[:64]
    if code == "20000" or sub_code.startswith(_BUSY_SUB_CODES):
        return Unavailable(f"Alipay is unavailable ({method}: {sub_code})", retry_after=5)
    return ProviderError(f"Alipay refused {method} (code {code}, sub_code {sub_code})", sub_code=sub_code)
