"""The admin API's boundary over real HTTP: only an admin session cookie opens /_/api/,
and every state-changing call needs that session's CSRF token."""

from __future__ import annotations

import logging

import httpx
import pytest

from minibase.console.api import IDLE_TIMEOUT
from minibase.console.routes import API, PREFIX
from tests.support.config import Live
from tests.support.console import EMAIL, PASSWORD, admin_client, console_sql, create_admin


def _path(path: str) -> str:
    return PREFIX + path.replace("{uid}", "u1").replace("{name}", "todo_list").replace("{id}", "d1")


@pytest.fixture
def admin_live(live: Live) -> Live:
    create_admin(live.core)
    return live


def test_every_api_route_refuses_a_request_without_the_admin_cookie(admin_live: Live) -> None:
    with httpx.Client(base_url=admin_live.url) as c:
        for route in API:
            if route.handler == "login":
                continue
            r = c.request(route.method, _path(route.path), json={} if route.body else None)
            assert r.status_code == 401, (route, r.text)
            assert r.json()["error"]["code"] == "Unauthenticated"


def test_an_app_session_bearer_or_fc_credentials_open_nothing(admin_live: Live) -> None:
    app_user = admin_live.client("dev:alice")
    sid = app_user.session_id
    assert sid
    with httpx.Client(base_url=admin_live.url) as c:
        for route in API:
            if route.handler == "login":
                continue
            for auth in (f"Bearer {sid}", "FC STS.x:signature"):
                r = c.request(route.method, _path(route.path), headers={"authorization": auth})
                assert r.status_code == 401, (route, auth, r.text)
        # The app session's id as the cookie's value is no admin session either.
    with httpx.Client(base_url=admin_live.url, cookies={"minibase_admin": sid}) as c:
        assert c.get(PREFIX + "/users").status_code == 401


def test_state_changing_calls_need_the_sessions_csrf_token(admin_live: Live) -> None:
    alice = admin_live.client("dev:alice")
    uid = alice.user["uid"]
    c, csrf = admin_client(admin_live.url)
    with c:
        for headers in ({}, {"x-csrf-token": "wrong"}, {"x-csrf-token": csrf + "x"}):
            r = c.post(f"{PREFIX}/users/{uid}/disable", headers=headers)
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "PermissionDenied"
        # Another admin session's token does not fit this one.
        other, other_csrf = admin_client(admin_live.url)
        other.close()
        assert (
            c.post(f"{PREFIX}/users/{uid}/disable", headers={"x-csrf-token": other_csrf}).status_code == 403
        )
        assert alice.db("list") is not None  # nothing happened
        # A cross-site origin is refused even with the token.
        r = c.post(
            f"{PREFIX}/users/{uid}/disable", headers={"x-csrf-token": csrf, "origin": "https://evil.example"}
        )
        assert r.status_code == 403
        r = c.post(f"{PREFIX}/users/{uid}/disable", headers={"x-csrf-token": csrf})
        assert r.status_code == 200 and r.json()["data"]["disabled"] is True


def test_an_idle_admin_session_expires(admin_live: Live) -> None:
    c, _ = admin_client(admin_live.url)
    with c:
        assert c.get(PREFIX + "/me").status_code == 200
        console_sql(
            admin_live.core.config, "UPDATE console_sessions SET last_used = last_used - ?", IDLE_TIMEOUT + 1
        )
        r = c.get(PREFIX + "/me")
        assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
        assert c.get(PREFIX + "/me").status_code == 401  # and it is gone


def test_logout_and_removing_the_admin_end_sessions(admin_live: Live) -> None:
    c, csrf = admin_client(admin_live.url)
    with c:
        assert c.post(PREFIX + "/logout", headers={"x-csrf-token": csrf}).status_code == 200
        assert c.get(PREFIX + "/me").status_code == 401
    c, _ = admin_client(admin_live.url)
    with c:
        console_sql(admin_live.core.config, "DELETE FROM console_admins WHERE email = ?", EMAIL)
        assert c.get(PREFIX + "/me").status_code == 401


def test_login_cookie_flags(admin_live: Live) -> None:
    r = httpx.post(admin_live.url + PREFIX + "/login", json={"email": EMAIL, "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/_/" in cookie
    assert "secure" not in cookie  # plain http on loopback
    # Behind an https proxy (X-Forwarded-Proto from a trusted address), the cookie is Secure.
    from minibase.app import create_app
    from minibase.runtime.serve import ForwardedHeaders
    from tests.support.live import run_uvicorn

    app = ForwardedHeaders(create_app(admin_live.core.config), "127.0.0.1")
    with run_uvicorn(app) as url:
        r = httpx.post(
            url + PREFIX + "/login",
            json={"email": EMAIL, "password": PASSWORD},
            headers={"x-forwarded-proto": "https"},
        )
        assert r.status_code == 200
        assert "secure" in r.headers["set-cookie"].lower()


def test_wrong_passwords_are_refused_audited_and_rate_limited(
    admin_live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "minibase.audit")
    with httpx.Client(base_url=admin_live.url) as c:
        r = c.post(PREFIX + "/login", json={"email": EMAIL, "password": "wrong password!"})
        assert r.status_code == 401 and r.json()["error"]["message"] == "wrong email or password"
        r = c.post(PREFIX + "/login", json={"email": "nobody@example.com", "password": "wrong password!"})
        assert r.status_code == 401 and r.json()["error"]["message"] == "wrong email or password"
        codes = [
            c.post(PREFIX + "/login", json={"email": EMAIL, "password": "x" * 12}).status_code
            for _ in range(10)
        ]
        assert codes[-1] == 429 and 429 in codes
        # Even the right password waits now: the bucket is per address and per admin.
        r = c.post(PREFIX + "/login", json={"email": EMAIL, "password": PASSWORD})
        assert (
            r.status_code == 429
            and int(r.headers.get("retry-after", r.json()["error"].get("retryAfter", 1))) >= 1
        )
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "minibase.audit"]
    assert any('"admin.login.failure"' in line and '"reason":"Unauthenticated"' in line for line in lines)
    assert any('"admin.login.failure"' in line and '"reason":"RateLimited"' in line for line in lines)
    assert not any(PASSWORD in line or "wrong password!" in line for line in lines)


def test_bad_input_gets_clear_errors(admin_live: Live) -> None:
    c, csrf = admin_client(admin_live.url)
    h = {"x-csrf-token": csrf}
    with c:
        r = c.post(PREFIX + "/collections/todo_list/query", content=b"{nope", headers=h)
        assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidArgument"
        r = c.post(PREFIX + "/collections/todo_list/query", json={"where": {"a": {"$bogus": 1}}}, headers=h)
        assert r.status_code == 400
        r = c.post(PREFIX + "/collections/no%20such/query", json={}, headers=h)
        assert r.status_code == 400
        assert c.get(PREFIX + "/users/nobody").status_code == 404
        assert c.get(PREFIX + "/audit?since=yesterday").status_code == 400
        assert c.get(PREFIX + "/nothing").status_code == 404
        for name in ("%2e%2e%2fhttp.py", "..%2fapi.py", ".hidden", "missing.js", "api.py"):
            assert c.get("/_/static/" + name).status_code == 404, name
        r = c.delete(PREFIX + "/login")
        assert r.status_code == 405


def test_the_page_is_served_with_a_strict_csp(live: Live) -> None:
    r = httpx.get(live.url + "/_/")
    assert r.status_code == 200 and '<script type="module" src="/_/static/console.js">' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert httpx.get(live.url + "/_/static/console.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(live.url + "/_", follow_redirects=False).status_code == 308


def test_the_console_api_is_in_the_served_openapi(live: Live) -> None:
    spec = httpx.get(live.url + "/openapi.json").json()
    assert spec["components"]["securitySchemes"]["adminCookie"]["in"] == "cookie"
    for route in API:
        op = spec["paths"][PREFIX + route.path][route.method.lower()]
        names = {p["name"] for p in op.get("parameters", [])}
        assert ("X-CSRF-Token" in names) == (route.changes and route.handler != "login"), route
        assert ("security" in op) == (route.handler != "login"), route
