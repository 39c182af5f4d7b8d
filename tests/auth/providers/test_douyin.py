"""Douyin provider over real HTTP against the fake jscode2session API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from minibase.auth.providers.base import Identity
from minibase.auth.providers.douyin import DouyinProvider
from minibase.errors import ProviderError, Unauthenticated
from tests.fakes.douyin_api import DouyinApiState, DouyinUser, make_douyin_api
from tests.fakes.server import free_port, serve_app

APP_ID = "tt5daf2b1234567910"
SECRET = "188506c6412345678955a31de40625ec7"
USERS = {
    "code-alice-1": DouyinUser(openid="dyAlice", unionid="dyUnionAlice"),
    "code-alice-2": DouyinUser(openid="dyAlice", unionid="dyUnionAlice"),
    "code-bob": DouyinUser(openid="dyBob"),
}
SESSION_KEYS = {user.session_key for user in USERS.values()}


@pytest.fixture
def api() -> Iterator[tuple[str, DouyinApiState]]:
    app = make_douyin_api(APP_ID, SECRET, users=USERS)
    with serve_app(app) as base:
        yield base, app.state.fake


async def _exchange(provider: DouyinProvider, *codes: str) -> list[Identity | Exception]:
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
        assert SECRET not in text
        for key in SESSION_KEYS:
            assert key not in text


def test_login_with_valid_code(api: tuple[str, DouyinApiState]) -> None:
    base, fake = api
    [identity] = asyncio.run(_exchange(DouyinProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    assert identity == Identity("douyin", APP_ID, "dyAlice", "dyUnionAlice")
    _assert_no_secrets(identity)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/api/apps/v2/jscode2session")
    assert req.headers["content-type"].startswith("application/json")
    assert req.json == {"appid": APP_ID, "secret": SECRET, "code": "code-alice-1"}
    assert req.query == {}  # the secret stays out of the URL


def test_second_login_same_subject_and_used_code(api: tuple[str, DouyinApiState]) -> None:
    base, _ = api
    first, second, reused, bob = asyncio.run(
        _exchange(
            DouyinProvider(APP_ID, SECRET, api=base),
            "code-alice-1",
            "code-alice-2",
            "code-alice-1",
            "code-bob",
        )
    )
    assert isinstance(first, Identity) and isinstance(second, Identity)
    assert first.subject == second.subject == "dyAlice"
    assert isinstance(reused, Unauthenticated) and "40018" in str(reused)
    assert bob == Identity("douyin", APP_ID, "dyBob", None)  # "" unionid -> None


def test_invalid_code_is_unauthenticated(api: tuple[str, DouyinApiState]) -> None:
    base, _ = api
    [error] = asyncio.run(_exchange(DouyinProvider(APP_ID, SECRET, api=base), "no-such-code"))
    assert isinstance(error, Unauthenticated)
    _assert_no_secrets(error)


@pytest.mark.parametrize("err_no", [-1, 40014, 12345])
def test_platform_errors_are_provider_errors(api: tuple[str, DouyinApiState], err_no: int) -> None:
    base, fake = api
    fake.force_err_no = err_no
    [error] = asyncio.run(_exchange(DouyinProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    assert isinstance(error, ProviderError) and f"err_no {err_no}" in str(error)
    _assert_no_secrets(error)


def test_wrong_secret_and_app_id_are_provider_errors(api: tuple[str, DouyinApiState]) -> None:
    base, _ = api
    wrong = "f" * 32
    [bad_secret] = asyncio.run(_exchange(DouyinProvider(APP_ID, wrong, api=base), "code-alice-1"))
    [bad_app] = asyncio.run(_exchange(DouyinProvider("ttother", SECRET, api=base), "code-alice-1"))
    assert isinstance(bad_secret, ProviderError) and "40017" in str(bad_secret)
    assert wrong not in str(bad_secret)
    assert isinstance(bad_app, ProviderError) and "40015" in str(bad_app)


def test_http_error_status_is_provider_error(api: tuple[str, DouyinApiState]) -> None:
    base, fake = api
    fake.status_code = 500
    [error] = asyncio.run(_exchange(DouyinProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    assert isinstance(error, ProviderError) and "HTTP 500" in str(error)


def test_api_down_is_provider_error() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    [error] = asyncio.run(_exchange(DouyinProvider(APP_ID, SECRET, api=base), "code-alice-1"))
    assert isinstance(error, ProviderError)
    assert "127.0.0.1" not in str(error)
    _assert_no_secrets(error)


def test_slow_api_is_provider_error_quickly(api: tuple[str, DouyinApiState]) -> None:
    base, fake = api
    fake.slow_seconds = 5.0
    started = time.monotonic()
    [error] = asyncio.run(_exchange(DouyinProvider(APP_ID, SECRET, api=base, timeout=0.3), "code-alice-1"))
    assert isinstance(error, ProviderError) and "in time" in str(error)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("doc", "expected", "text"),
    [
        ({"data": {"openid": "o"}}, ProviderError, "without err_no"),
        ({"err_no": 0, "data": {"openid": ""}}, ProviderError, "without an openid"),
        ({"err_no": 0, "data": None}, ProviderError, "without an openid"),
        ({"err_no": "40018", "err_tips": "bad code"}, Unauthenticated, "40018"),
        ({"err_no": 40019, "err_tips": "bad acode"}, Unauthenticated, "40019"),
        ({"err_no": "0", "data": {"openid": "o2", "session_key": "k"}}, None, "o2"),
    ],
)
def test_odd_answers(doc: object, expected: type[Exception] | None, text: str) -> None:
    body = json.dumps(doc).encode()
    provider = DouyinProvider(
        APP_ID,
        SECRET,
        api="https://douyin.invalid",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)),
    )
    [result] = asyncio.run(_exchange(provider, "code"))
    if expected is None:
        assert isinstance(result, Identity) and result.subject == text
    else:
        assert type(result) is expected and text in str(result)


def test_constructor_validates_and_repr_hides_secret() -> None:
    with pytest.raises(ValueError, match="app_id"):
        DouyinProvider(" ", SECRET)
    with pytest.raises(ValueError, match="secret"):
        DouyinProvider(APP_ID, "")
    provider = DouyinProvider(APP_ID, SECRET)
    assert SECRET not in repr(provider)
    assert provider.name == "douyin"
