"""A fake Alipay OpenAPI gateway answering ``alipay.system.oauth.token``.

It checks what the real gateway checks (common params, timestamp, the request's RSA2
signature with the app public key) and answers the way Alipay writes its bodies. Signing
is implemented here independently of ``minibase`` so a shared bug cannot hide.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import RecordedRequest, record, wait_or_disconnect

__all__ = ["AlipayGatewayState", "AlipayUser", "make_alipay_gateway"]

BEIJING = timezone(timedelta(hours=8))
RESPONSE_KEY = "alipay_system_oauth_token_response"

Tamper = Literal["signature", "body", "missing"]


@dataclass
class AlipayUser:
    user_id: str
    open_id: str | None = None


@dataclass
class AlipayGatewayState:
    app_id: str
    app_public_key: rsa.RSAPublicKey
    alipay_private_key: rsa.RSAPrivateKey
    users: dict[str, AlipayUser]  # auth code -> user; codes are single-use, as on Alipay
    used_codes: set[str] = field(default_factory=set)
    requests: list[RecordedRequest] = field(default_factory=list)
    tamper: Tamper | None = None  # break the success response's signature
    slow_seconds: float = 0.0  # sleep before answering
    numbers_as_strings: bool = False  # "expires_in": "1296000", as some gateways send
    unavailable: bool = False  # answer 20000 isp.unknow-error
    max_skew: timedelta = timedelta(minutes=15)
    # Other OpenAPI methods: method -> handler(params) -> the ..._response object to sign
    # (a "code" other than "10000" is an error answer). See tests/fakes/alipay_openapi.py.
    methods: dict[str, Callable[[dict[str, str]], dict[str, object]]] = field(default_factory=dict)


def _sign_content(params: dict[str, str]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k])


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _error(code: str, msg: str, sub_code: str, sub_msg: str) -> Response:
    # Alipay answers errors with HTTP 200 and an (often unsigned) error_response.
    body = _json({"error_response": {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}})
    return Response(body, media_type="text/html;charset=utf-8")


def _missing(sub_code: str, sub_msg: str) -> Response:
    return _error("40001", "Missing Required Arguments", sub_code, sub_msg)


def _invalid(sub_code: str, sub_msg: str) -> Response:
    return _error("40002", "Invalid Arguments", sub_code, sub_msg)


def _check(state: AlipayGatewayState, params: dict[str, str]) -> Response | None:
    """The gateway's own checks, in the order the real one reports them."""
    if not params.get("sign"):
        return _missing("isv.missing-signature", "缺少签名参数")
    if not params.get("app_id"):
        return _missing("isv.missing-app-id", "缺少appId参数")
    if params["app_id"] != state.app_id:
        return _invalid("isv.invalid-app-id", "无效的AppID参数")
    if not params.get("method"):
        return _missing("isv.missing-method", "缺少方法名参数")
    if params["method"] != "alipay.system.oauth.token" and params["method"] not in state.methods:
        return _invalid("isv.invalid-method", "不存在的方法名")
    if params.get("format", "JSON").upper() != "JSON":
        return _invalid("isv.invalid-format", "无效的数据格式")
    if params.get("charset", "").lower() != "utf-8":
        return _invalid("isv.invalid-charset", "无效的字符集")
    if not params.get("sign_type"):
        return _missing("isv.missing-signature-type", "缺少签名类型参数")
    if params["sign_type"] != "RSA2":
        return _invalid("isv.invalid-signature-type", "无效的签名类型")
    if not params.get("timestamp"):
        return _missing("isv.missing-timestamp", "缺少时间戳参数")
    try:
        sent = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return _invalid("isv.invalid-timestamp", "非法的时间戳参数")
    if abs(datetime.now(BEIJING) - sent) > state.max_skew:
        return _invalid("isv.invalid-timestamp", "非法的时间戳参数")
    if not params.get("version"):
        return _missing("isv.missing-version", "缺少版本参数")
    if params["version"] != "1.0":
        return _invalid("isv.invalid-parameter", "参数无效")
    try:
        signature = base64.b64decode(params["sign"], validate=True)
        state.app_public_key.verify(
            signature,
            _sign_content(params).encode("utf-8"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return _invalid(
            "isv.invalid-signature",
            "验签出错, 建议检查签名字符串或签名私钥与应用公钥是否匹配",
        )
    return None


def _success(state: AlipayGatewayState, user: AlipayUser) -> Response:
    now = datetime.now(BEIJING)
    expires: int | str = 1296000
    re_expires: int | str = 2592000
    if state.numbers_as_strings:
        expires, re_expires = str(expires), str(re_expires)
    result: dict[str, object] = {
        "access_token": "authusrB" + secrets.token_hex(16),
        "auth_start": now.strftime("%Y-%m-%d %H:%M:%S"),
        "expires_in": expires,
        "re_expires_in": re_expires,
        "refresh_token": "authusrB" + secrets.token_hex(16),
        "user_id": user.user_id,
    }
    if user.open_id is not None:
        result["open_id"] = user.open_id
    content = _json(result)
    signature = base64.b64encode(
        state.alipay_private_key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    ).decode("ascii")
    if state.tamper == "signature":
        raw = bytearray(base64.b64decode(signature))
        raw[len(raw) // 2] ^= 0x01
        signature = base64.b64encode(bytes(raw)).decode("ascii")
    elif state.tamper == "body":
        content = content.replace(user.user_id, user.user_id[:-1] + ("1" if user.user_id[-1] != "1" else "2"))
        if user.open_id is not None:
            content = content.replace(user.open_id, "attacker" + user.open_id)
    body = f'{{"{RESPONSE_KEY}":{content}'
    body += "}" if state.tamper == "missing" else f',"sign":"{signature}"}}'
    return Response(body, media_type="text/html;charset=utf-8")


def _signed(state: AlipayGatewayState, key: str, result: dict[str, object]) -> Response:
    """``{"<key>": result, "sign": ...}`` signed over the exact bytes of ``result``."""
    content = _json(result)
    signature = base64.b64encode(
        state.alipay_private_key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    ).decode("ascii")
    if state.tamper == "signature":
        raw = bytearray(base64.b64decode(signature))
        raw[len(raw) // 2] ^= 0x01
        signature = base64.b64encode(bytes(raw)).decode("ascii")
    return Response(f'{{"{key}":{content},"sign":"{signature}"}}', media_type="text/html;charset=utf-8")


def make_alipay_gateway(
    app_public_key_pem: bytes,
    alipay_private_key_pem: bytes,
    app_id: str,
    *,
    users: dict[str, AlipayUser] | None = None,
    path: str = "/gateway.do",
) -> Starlette:
    """The fake gateway app; its state (users, recorded requests, modes) is
    ``app.state.fake``, an :class:`AlipayGatewayState`."""
    app_public_key = serialization.load_pem_public_key(app_public_key_pem)
    alipay_private_key = serialization.load_pem_private_key(alipay_private_key_pem, password=None)
    assert isinstance(app_public_key, rsa.RSAPublicKey)
    assert isinstance(alipay_private_key, rsa.RSAPrivateKey)
    state = AlipayGatewayState(
        app_id=app_id,
        app_public_key=app_public_key,
        alipay_private_key=alipay_private_key,
        users=dict(users or {}),
    )

    async def gateway(request: Request) -> Response:
        recorded = await record(request)
        content_type = recorded.headers.get("content-type", "")
        if recorded.body and content_type.startswith("application/x-www-form-urlencoded"):
            recorded.form = dict(parse_qsl(recorded.body.decode("utf-8"), keep_blank_values=True))
        state.requests.append(recorded)
        if state.slow_seconds:
            await wait_or_disconnect(request, state.slow_seconds)
        # The real gateway takes params from either place; placement is asserted by tests.
        params = {**recorded.query, **recorded.form}
        refused = _check(state, params)
        if refused is not None:
            return refused
        if state.unavailable:
            return _error("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
        handler = state.methods.get(params["method"])
        if handler is not None:
            return _signed(state, params["method"].replace(".", "_") + "_response", handler(params))
        if params.get("grant_type") != "authorization_code":
            return _invalid("isv.grant-type-invalid", "grant_type参数不正确")
        code = params.get("code", "")
        user = state.users.get(code)
        if user is None or code in state.used_codes:
            return _invalid("isv.code-invalid", "授权码code无效")
        state.used_codes.add(code)
        return _success(state, user)

    app = Starlette(routes=[Route(path, gateway, methods=["GET", "POST"])])
    app.state.fake = state
    return app
