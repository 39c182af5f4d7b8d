"""WeChat provider over real HTTP against the fake jscode2session API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from minibase.auth.providers.base import Identity
from minibase.auth.providers.wechat import WechatProvider
from minibase.errors import ProviderError, Unauthenticated
from tests.fakes.server import free_port, serve_app
from tests.fakes.wechat_api import WechatApiState, WechatUser, make_wechat_api

APP_ID = "wx4f28b4b2dcaafca1"
SECRET = "3e2fa5ce1990693588816ff28e259ae0"
USERS = {
    "code-alice-1": WechatUser(openid="oAlice", unionid="uAlice"),
    "code-alice-2": WechatUser(openid="oAlice", unionid="uAlice"),
    "code-bob": WechatUser(openid="oBob"),
}
SESSION_KEYS = {user.session_key for user in USERS.values()}


@pytest.fixture
def api() -> Iterator[tuple[str, WechatApiState]]:
    app = make_wechat_api(APP_ID, SECRET, users=USERS)
    with serve_app(app) as base:
        fake: WechatApiState = app.state.fake
        fake.risky_codes.add("code-risky")
        yield base, fake


async def _exchange(provider: WechatProvider, *codes: str) -> list[Identity | Exception]:
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


def _assert_no_secrets(*things: object) -> None:
    for thing in things:
        text = f"{thing!s} {thing!r}"
        if isinstance(thing, Exception):
            text += f" {thing.__cause__!r} {thing.__context__ if not thing.__suppress_context__ else ''}"
        assert SECRET not in text
        for key in SESSION_KEYS:
            assert key not in text


def test_login_with_valid_code(api: tuple[str, WechatApiState]) -> None:
    base, fake = api
    [identity] = asyncio.run(_exchange(WechatProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    assert identity == Identity(provider="wechat", app_id=APP_ID, subject="oAlice", unionid="uAlice")
    _assert_no_secrets(identity)
    [req] = fake.requests
    assert (req.method, req.path) == ("GET", "/sns/jscode2session")
    assert req.query == {
        "appid": APP_ID,
        "secret": SECRET,
        "js_code": "code-alice-1",
        "grant_type": "authorization_code",
    }


def test_second_login_same_subject_no_unionid_and_used_code(
    api: tuple[str, WechatApiState],
) -> None:
    base, _ = api
    first, second, reused, bob = asyncio.run(
        _exchange(
            WechatProvider(APP_ID, SECRET, api=base + "/"),
            "code-alice-1",
            "code-alice-2",
            "code-alice-1",
            "code-bob",
        )
    )
    assert isinstance(first, Identity) and isinstance(second, Identity)
    assert first.subject == second.subject == "oAlice"
    assert isinstance(reused, Unauthenticated) and "40163" in str(reused)
    assert bob == Identity("wechat", APP_ID, "oBob", None)


@pytest.mark.parametrize(("code", "errcode"), [("no-such-code", "40029"), ("code-risky", "40226")])
def test_refused_codes_are_unauthenticated(api: tuple[str, WechatApiState], code: str, errcode: str) -> None:
    base, _ = api
    [error] = asyncio.run(_exchange(WechatProvider(APP_ID, SECRET, api=base), code))
    assert isinstance(error, Unauthenticated)
    assert errcode in str(error)
    _assert_no_secrets(error)


@pytest.mark.parametrize("errcode", [-1, 45011, 40999])
def test_platform_errors_are_provider_errors(api: tuple[str, WechatApiState], errcode: int) -> None:
    base, fake = api
    fake.force_errcode = errcode
    [error] = asyncio.run(_exchange(WechatProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert f"errcode {errcode}" in str(error)
    _assert_no_secrets(error)


def test_wrong_secret_and_app_id_are_provider_errors(api: tuple[str, WechatApiState]) -> None:
    base, _ = api
    wrong_secret = "0" * 32
    [bad_secret] = asyncio.run(_exchange(WechatProvider(APP_ID, wrong_secret, api=base), "code-alice-1"))
    [bad_app] = asyncio.run(_exchange(WechatProvider("wxother", SECRET, api=base), "code-alice-1"))
    assert isinstance(bad_secret, ProviderError) and "40125" in str(bad_secret)
    assert wrong_secret not in str(bad_secret)
    assert isinstance(bad_app, ProviderError) and "40013" in str(bad_app)


def test_http_error_status_is_provider_error(api: tuple[str, WechatApiState]) -> None:
    base, fake = api
    fake.status_code = 503
    [error] = asyncio.run(_exchange(WechatProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    assert isinstance(error, ProviderError) and "HTTP 503" in str(error)
    _assert_no_secrets(error)


def test_api_down_is_provider_error_without_url() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    [error] = asyncio.run(_exchange(WechatProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert "127.0.0.1" not in str(error) and "js_code" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    _assert_no_secrets(error)


def test_slow_api_is_provider_error_quickly(api: tuple[str, WechatApiState]) -> None:
    base, fake = api
    fake.slow_seconds = 5.0
    started = time.monotonic()
    [error] = asyncio.run(_exchange(WechatProvider(APP_ID, SECRET, api=base, timeout=0.3), "code-alice-1"))
    assert isinstance(error, ProviderError) and "in time" in str(error)
    assert time.monotonic() - started < 2.0
    _assert_no_secrets(error)


def test_httpx_request_log_does_not_show_the_secret(
    api: tuple[str, WechatApiState], caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = api
    with caplog.at_level(logging.DEBUG):
        asyncio.run(_exchange(WechatProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    messages = [record.getMessage() for record in caplog.records]
    assert any("jscode2session" in message for message in messages)
    for message in messages:
        assert SECRET not in message
        assert "code-alice-1" not in message
        for key in SESSION_KEYS:
            assert key not in message


@pytest.mark.parametrize(
    ("status", "body", "expected", "text"),
    [
        (200, b"<html>", ProviderError, "not JSON"),
        (200, b'"x"', ProviderError, "not an object"),
        (200, b"{}", ProviderError, "without an openid"),
        (200, b'{"openid": 5, "session_key": "k"}', ProviderError, "without an openid"),
        (200, b'{"errcode": "40029", "errmsg": "invalid code"}', Unauthenticated, "40029"),
        (200, b'{"errcode": 0, "openid": "o1", "session_key": "k"}', None, "o1"),
        (200, b'{"errcode": null}', ProviderError, "errcode None"),
    ],
)
def test_odd_answers(status: int, body: bytes, expected: type[Exception] | None, text: str) -> None:
    provider = WechatProvider(
        APP_ID,
        SECRET,
        api="https://wechat.invalid",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body)),
    )
    [result] = asyncio.run(_exchange(provider, "code"))
    if expected is None:
        assert isinstance(result, Identity) and result.subject == text
    else:
        assert type(result) is expected and text in str(result)


def test_constructor_validates_and_repr_hides_secret() -> None:
    with pytest.raises(ValueError, match="app_id"):
        WechatProvider("", SECRET)
    with pytest.raises(ValueError, match="secret"):
        WechatProvider(APP_ID, "")
    with pytest.raises(ValueError, match="timeout"):
        WechatProvider(APP_ID, SECRET, timeout=0)
    provider = WechatProvider(APP_ID, SECRET)
    assert SECRET not in repr(provider)
    assert provider.name == "wechat"


def test_empty_code_is_unauthenticated_without_a_call(api: tuple[str, WechatApiState]) -> None:
    base, fake = api
    [error] = asyncio.run(_exchange(WechatProvider(APP_ID, SECRET, api=base), ""))
    assert isinstance(error, Unauthenticated)
    assert fake.requests == []
