"""Alipay provider: RSA2 signing against the official SDK's vectors, response extraction
and verification, then real HTTP against the fake gateway."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from minibase.auth.providers.alipay import (
    OAUTH_TOKEN_RESPONSE_KEY,
    AlipayProvider,
    extract_signed_content,
    load_private_key,
    load_public_key,
    rsa2_sign,
    rsa2_verify,
    sign_content,
)
from minibase.auth.providers.base import Identity
from minibase.errors import ProviderError, Unauthenticated
from tests.fakes.alipay_gateway import AlipayGatewayState, AlipayUser, make_alipay_gateway
from tests.fakes.server import free_port, serve_app

# A copy of shared/vectors/alipay_rsa2.json (computed by Alipay's official SDK).
VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "alipay_rsa2.json"
APP_ID = "2021000000000001"
BEIJING = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def vec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def _pem(vec: dict[str, Any], name: str) -> bytes:
    return str(vec[name]).encode("ascii")


def _bare(pem: bytes) -> bytes:
    """The base64 body of a PEM, on one line, as the Alipay console shows keys."""
    return b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))


# --- pure functions against the official SDK's vectors -----------------------------------


def test_sign_content_matches_sdk(vec: dict[str, Any]) -> None:
    assert sign_content(vec["request_params"]) == vec["sign_content"]


def test_sign_content_rules() -> None:
    params = {"b": "x y&z=1", "a": "中文", "sign": "ignored", "empty": "", "c": "1"}
    assert sign_content(params) == "a=中文&b=x y&z=1&c=1"


def test_rsa2_sign_matches_sdk(vec: dict[str, Any]) -> None:
    key = load_private_key(_pem(vec, "app_private_key_pem"))
    assert rsa2_sign(key, vec["sign_content"]) == vec["sign"]
    public = load_public_key(_pem(vec, "app_public_key_pem"))
    assert rsa2_verify(public, vec["sign_content"], vec["sign"])
    assert rsa2_verify(public, vec["sign_content"].encode(), vec["sign"])
    assert not rsa2_verify(public, vec["sign_content"] + "x", vec["sign"])


def test_response_vector_extracts_and_verifies(vec: dict[str, Any]) -> None:
    body = vec["response_body"]
    signed = extract_signed_content(body, OAUTH_TOKEN_RESPONSE_KEY)
    assert signed is not None
    assert signed == vec["response_signed_content"]
    alipay_public = load_public_key(_pem(vec, "alipay_public_key_pem"))
    assert rsa2_verify(alipay_public, signed, json.loads(body)["sign"])


def test_tampered_response_vector_fails(vec: dict[str, Any]) -> None:
    body = vec["response_body"].replace("2088102150477652", "2088102150477653")
    signed = extract_signed_content(body, OAUTH_TOKEN_RESPONSE_KEY)
    assert signed is not None
    alipay_public = load_public_key(_pem(vec, "alipay_public_key_pem"))
    assert not rsa2_verify(alipay_public, signed, json.loads(body)["sign"])
    # The app's own key does not verify Alipay's answers either.
    app_public = load_public_key(_pem(vec, "app_public_key_pem"))
    good = vec["response_signed_content"]
    assert not rsa2_verify(app_public, good, json.loads(vec["response_body"])["sign"])


def test_rsa2_verify_never_raises(vec: dict[str, Any]) -> None:
    public = load_public_key(_pem(vec, "app_public_key_pem"))
    for bad in ["", "not base64!", "AAAA", "=" * 8, vec["sign"][:-4]]:
        assert rsa2_verify(public, vec["sign_content"], bad) is False


def test_error_vector_has_no_signed_content(vec: dict[str, Any]) -> None:
    assert extract_signed_content(vec["error_body"], OAUTH_TOKEN_RESPONSE_KEY) is None
    assert extract_signed_content(vec["error_body"], "error_response") == json.dumps(
        json.loads(vec["error_body"])["error_response"], ensure_ascii=False, separators=(",", ":")
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # braces and escaped quotes inside strings
        (
            r'{"k_response":{"a":"}\"{","b":{"c":[1,{"d":"\\"}]}},"sign":"s"}',
            r'{"a":"}\"{","b":{"c":[1,{"d":"\\"}]}}',
        ),
        # the key inside an earlier string value is not the key
        (r'{"note":"\"k_response\":{\"x\":1}","k_response":{"real":1},"sign":"s"}', '{"real":1}'),
        # the key nested in another object is not the top-level key
        ('{"other":{"k_response":{"fake":1}},"k_response":{"real":2}}', '{"real":2}'),
        # whitespace is kept inside, skipped outside
        ('{ "sign" : "s" ,\n "k_response" : { "a" : [ 1 , 2 ] } }', '{ "a" : [ 1 , 2 ] }'),
        # scalars before it
        ('{"n":-1.5e3,"t":true,"z":null,"k_response":{}}', "{}"),
        # escaped key spelling
        (r'{"k\u005fresponse":{"a":1}}', '{"a":1}'),
        # not there / not an object / malformed
        ('{"error_response":{"code":"40002"}}', None),
        ('{"k_response":"{}"}', None),
        ('{"k_response":[{}]}', None),
        ('{"k_response":{"a":"unterminated}}', None),
        ('{"k_response":{"a":{}', None),
        ("[]", None),
        ("", None),
        ("not json", None),
    ],
)
def test_extract_signed_content_edge_cases(body: str, expected: str | None) -> None:
    assert extract_signed_content(body, "k_response") == expected


# --- keys -------------------------------------------------------------------------------


def test_private_key_formats(vec: dict[str, Any]) -> None:
    pkcs1_pem = _pem(vec, "app_private_key_pem")
    key = load_private_key(pkcs1_pem)
    pkcs8_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    variants: list[bytes | str] = [
        pkcs1_pem,
        pkcs8_pem,
        _bare(pkcs1_pem),
        _bare(pkcs8_pem),
        pkcs1_pem.decode(),
    ]
    variants.append(pkcs1_pem.replace(b"\n", b"\r\n") + b"\n\n")
    for variant in variants:
        assert rsa2_sign(load_private_key(variant), vec["sign_content"]) == vec["sign"]


def test_public_key_formats(vec: dict[str, Any]) -> None:
    spki_pem = _pem(vec, "app_public_key_pem")
    key = load_public_key(spki_pem)
    pkcs1_pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    for variant in [spki_pem, pkcs1_pem, _bare(spki_pem), _bare(pkcs1_pem)]:
        assert rsa2_verify(load_public_key(variant), vec["sign_content"], vec["sign"])


def test_bad_keys_are_value_errors_without_key_material(vec: dict[str, Any]) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_private = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ec_public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    truncated = _pem(vec, "app_private_key_pem")[:200] + b"\n-----END RSA PRIVATE KEY-----\n"
    for bad in [b"", b"garbage!", b"QUJD", truncated, ec_private, _bare(ec_private)]:
        with pytest.raises(ValueError, match="private key") as info:
            load_private_key(bad)
        assert "MII" not in str(info.value)
    for bad in [b"", b"garbage!", b"QUJD", ec_public, _pem(vec, "app_private_key_pem")]:
        with pytest.raises(ValueError, match="public key"):
            load_public_key(bad)
    with pytest.raises(ValueError, match="app private key"):
        AlipayProvider(APP_ID, b"nope", _pem(vec, "alipay_public_key_pem"))
    with pytest.raises(ValueError, match="Alipay public key"):
        AlipayProvider(APP_ID, _pem(vec, "app_private_key_pem"), b"nope")
    with pytest.raises(ValueError, match="app_id"):
        AlipayProvider("", _pem(vec, "app_private_key_pem"), _pem(vec, "alipay_public_key_pem"))


def test_generated_keys_round_trip() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = rsa2_sign(load_private_key(pem), "a=1&b=中文")
    assert len(base64.b64decode(signature)) == 256
    assert rsa2_verify(load_public_key(public_pem), "a=1&b=中文", signature)
    assert rsa2_verify(load_public_key(_bare(public_pem)), "a=1&b=中文".encode(), signature)


def test_signed_params_vector(vec: dict[str, Any]) -> None:
    provider = AlipayProvider(APP_ID, _pem(vec, "app_private_key_pem"), _pem(vec, "alipay_public_key_pem"))
    when = datetime(2026, 11, 25, 12, 0, 13, tzinfo=UTC)  # 20:00:13 in Beijing
    params = provider.signed_params(vec["request_params"]["code"], now=when)
    assert {k: v for k, v in params.items() if k != "sign"} == vec["request_params"]
    assert params["sign"] == vec["sign"]


def test_import_does_not_import_httpx() -> None:
    code = (
        "import sys\n"
        "import minibase.auth.providers.alipay, minibase.auth.providers.wechat\n"
        "import minibase.auth.providers.douyin\n"
        "assert 'httpx' not in sys.modules, 'httpx imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- over HTTP against the fake gateway ---------------------------------------------------

USERS = {
    "code-alice-1": AlipayUser(user_id="2088102150477652", open_id="074a1CcTG1LelxKe4xQC0zgNdId0"),
    "code-alice-2": AlipayUser(user_id="2088102150477652", open_id="074a1CcTG1LelxKe4xQC0zgNdId0"),
    "code-bob": AlipayUser(user_id="2088000000000002", open_id="074bobOpenId"),
    "code-legacy": AlipayUser(user_id="2088000000000003"),  # no open_id
}


@pytest.fixture
def gateway(vec: dict[str, Any]) -> Iterator[tuple[str, AlipayGatewayState]]:
    app = make_alipay_gateway(
        _pem(vec, "app_public_key_pem"), _pem(vec, "alipay_private_key_pem"), APP_ID, users=USERS
    )
    with serve_app(app) as base:
        yield f"{base}/gateway.do", app.state.fake


def _provider(
    vec: dict[str, Any], gateway_url: str, *, timeout: float = 5.0, **keys: bytes
) -> AlipayProvider:
    return AlipayProvider(
        APP_ID,
        keys.get("private_key_pem", _pem(vec, "app_private_key_pem")),
        keys.get("alipay_public_key_pem", _pem(vec, "alipay_public_key_pem")),
        gateway=gateway_url,
        timeout=timeout,
    )


async def _exchange(provider: AlipayProvider, *codes: str) -> list[Identity | Exception]:
    out: list[Identity | Exception] = []
    try:
        for code in codes:
            try:
                out.append(await provider.exchange(code))
            except (ProviderError, Unauthenticated) as exc:
                out.append(exc)
    finally:
        await provider.aclose()
    return out


def test_login_with_valid_code(vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]) -> None:
    url, fake = gateway
    [identity] = asyncio.run(_exchange(_provider(vec, url), "code-alice-1"))
    assert identity == Identity(provider="alipay", app_id=APP_ID, subject=USERS["code-alice-1"].open_id or "")

    [req] = fake.requests
    assert req.method == "POST"
    assert req.path == "/gateway.do"
    assert set(req.query) == {
        "app_id",
        "method",
        "format",
        "charset",
        "sign_type",
        "timestamp",
        "version",
        "sign",
    }
    assert req.query["method"] == "alipay.system.oauth.token"
    assert (req.query["format"], req.query["charset"]) == ("JSON", "utf-8")
    assert (req.query["sign_type"], req.query["version"]) == ("RSA2", "1.0")
    assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert req.form == {"grant_type": "authorization_code", "code": "code-alice-1"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", req.query["timestamp"])
    sent = datetime.strptime(req.query["timestamp"], "%Y-%m-%d %H:%M:%S")
    assert abs(sent.replace(tzinfo=BEIJING) - datetime.now(BEIJING)) < timedelta(minutes=1)


def test_second_login_same_subject_and_codes_are_single_use(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    url, _ = gateway
    first, second, reused, bob = asyncio.run(
        _exchange(_provider(vec, url), "code-alice-1", "code-alice-2", "code-alice-1", "code-bob")
    )
    assert isinstance(first, Identity) and isinstance(second, Identity)
    assert first.subject == second.subject == USERS["code-alice-1"].open_id
    assert isinstance(reused, Unauthenticated)
    assert isinstance(bob, Identity) and bob.subject == "074bobOpenId"


def test_user_id_when_no_open_id_and_numbers_as_strings(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    url, fake = gateway
    fake.numbers_as_strings = True
    [identity] = asyncio.run(_exchange(_provider(vec, url), "code-legacy"))
    assert isinstance(identity, Identity)
    assert identity.subject == "2088000000000003"
    assert identity.unionid is None


def test_invalid_code_is_unauthenticated(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    url, _ = gateway
    [error] = asyncio.run(_exchange(_provider(vec, url), "no-such-code"))
    assert isinstance(error, Unauthenticated)
    assert "isv.code-invalid" in str(error)


def test_empty_code_is_refused_without_a_call(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    url, fake = gateway
    [error] = asyncio.run(_exchange(_provider(vec, url), "  "))
    assert isinstance(error, Unauthenticated)
    assert fake.requests == []


@pytest.mark.parametrize("tamper", ["signature", "body", "missing"])
def test_tampered_response_is_provider_error(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState], tamper: Any
) -> None:
    url, fake = gateway
    fake.tamper = tamper
    [error] = asyncio.run(_exchange(_provider(vec, url), "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert not isinstance(error, Unauthenticated)


def test_response_signed_by_someone_else_is_provider_error(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    # Configured with the wrong Alipay public key: Alipay's genuine answer must not verify.
    url, _ = gateway
    provider = _provider(vec, url, alipay_public_key_pem=_pem(vec, "app_public_key_pem"))
    [error] = asyncio.run(_exchange(provider, "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert "signature" in str(error)


def test_wrong_app_key_is_refused_by_gateway(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    url, fake = gateway
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    [error] = asyncio.run(_exchange(_provider(vec, url, private_key_pem=other_pem), "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert "isv.invalid-signature" in str(error) and "40002" in str(error)
    assert len(fake.requests) == 1
    assert "code-alice-1" not in fake.used_codes


def test_gateway_unavailable_is_provider_error(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    url, fake = gateway
    fake.unavailable = True
    [error] = asyncio.run(_exchange(_provider(vec, url), "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert "isp.unknow-error" in str(error)


def test_gateway_down_is_provider_error(vec: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{free_port()}/gateway.do"
    [error] = asyncio.run(_exchange(_provider(vec, url), "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert "127.0.0.1" not in str(error)


def test_slow_gateway_is_provider_error_quickly(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    url, fake = gateway
    fake.slow_seconds = 5.0
    started = time.monotonic()
    [error] = asyncio.run(_exchange(_provider(vec, url, timeout=0.3), "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert "in time" in str(error)
    assert time.monotonic() - started < 2.0


def test_second_exchange_after_aclose_reopens(
    vec: dict[str, Any], gateway: tuple[str, AlipayGatewayState]
) -> None:
    url, _ = gateway
    provider = _provider(vec, url)

    async def main() -> tuple[str, str]:
        first = await provider.exchange("code-alice-1")
        await provider.aclose()
        await provider.aclose()  # idempotent
        try:
            second = await provider.exchange("code-alice-2")
        finally:
            await provider.aclose()
        return first.subject, second.subject

    a, b = asyncio.run(main())
    assert a == b


# --- odd answers, through a mock transport --------------------------------------------


def _mock_provider(vec: dict[str, Any], handler: Any) -> AlipayProvider:
    return AlipayProvider(
        APP_ID,
        _pem(vec, "app_private_key_pem"),
        _pem(vec, "alipay_public_key_pem"),
        gateway="https://alipay.invalid/gateway.do",
        transport=httpx.MockTransport(handler),
    )


@pytest.mark.parametrize(
    ("status", "body", "expected", "text"),
    [
        (502, b"<html>bad gateway</html>", ProviderError, "HTTP 502"),
        (200, b"<html>not json</html>", ProviderError, "not JSON"),
        (200, b"[1, 2]", ProviderError, "not an object"),
        (200, b"\xff\xfe", ProviderError, "UTF-8"),
        (200, b'{"something_else": {}}', ProviderError, "without a token response"),
        (200, b'{"error_response": "x"}', ProviderError, "without details"),
        (
            200,
            b'{"error_response":{"code":"40002","sub_code":"isv.code-invalid"}}',
            Unauthenticated,
            "isv.code-invalid",
        ),
        (
            200,
            b'{"error_response":{"code":"40002","sub_code":"isv.unmatched-app-id"}}',
            Unauthenticated,
            "isv.unmatched-app-id",
        ),
        (
            200,
            b'{"error_response":{"code":"40002","sub_code":"isv.grant-type-invalid"}}',
            ProviderError,
            "isv.grant-type-invalid",
        ),
        (
            200,
            b'{"error_response":{"code":"40006","sub_code":"<script>\\"x"}}',
            ProviderError,
            "sub_code scriptx",
        ),
    ],
)
def test_odd_answers(
    vec: dict[str, Any], status: int, body: bytes, expected: type[Exception], text: str
) -> None:
    provider = _mock_provider(vec, lambda request: httpx.Response(status, content=body))
    [error] = asyncio.run(_exchange(provider, "code"))
    assert type(error) is expected
    assert text in str(error)


def test_vector_response_logs_in_via_mock(vec: dict[str, Any]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=vec["response_body"].encode())

    [identity] = asyncio.run(_exchange(_mock_provider(vec, handler), "4b203fe6c11548bcabd8da5bb087a83b"))
    assert identity == Identity("alipay", APP_ID, "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5")
    # The signature covers common + business params together.
    [request] = seen
    params = {**dict(request.url.params), **dict(httpx.QueryParams(request.content.decode()))}
    public = load_public_key(_pem(vec, "app_public_key_pem"))
    assert rsa2_verify(public, sign_content(params), params["sign"])


def test_signed_error_inside_response_is_refused(vec: dict[str, Any]) -> None:
    # Some gateways put a business failure inside the signed ..._response object.
    key = serialization.load_pem_private_key(_pem(vec, "alipay_private_key_pem"), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    inner = '{"code":"40004","msg":"Business Failed","sub_code":"isv.code-invalid"}'
    signature = rsa2_sign(key, inner)
    body = f'{{"{OAUTH_TOKEN_RESPONSE_KEY}":{inner},"sign":"{signature}"}}'.encode()
    provider = _mock_provider(vec, lambda request: httpx.Response(200, content=body))
    [error] = asyncio.run(_exchange(provider, "code"))
    assert isinstance(error, Unauthenticated)


def test_signed_response_without_subject_is_provider_error(vec: dict[str, Any]) -> None:
    key = serialization.load_pem_private_key(_pem(vec, "alipay_private_key_pem"), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    inner = '{"access_token":"t","user_id":"","open_id":null}'
    body = f'{{"{OAUTH_TOKEN_RESPONSE_KEY}":{inner},"sign":"{rsa2_sign(key, inner)}"}}'.encode()
    provider = _mock_provider(vec, lambda request: httpx.Response(200, content=body))
    [error] = asyncio.run(_exchange(provider, "code"))
    assert isinstance(error, ProviderError)
