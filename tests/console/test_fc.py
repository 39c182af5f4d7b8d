"""The console through Function Compute's HTTP-trigger handler (minibase.runtime.fc), as it is
served on FC: the page, an admin login (cookie), a read, CSRF on a state-changing call, and no
app session opening the admin API."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from minibase.cli import main
from minibase.runtime import fc
from tests.support.console import EMAIL, PASSWORD
from tests.support.examples import EXAMPLE
from tests.support.fc import example_environment, fc3

JSON = {"content-type": "application/json"}


@pytest.fixture(autouse=True)
def fc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MINIBASE_ADMIN_PASSWORD", PASSWORD)
    example_environment(monkeypatch, tmp_path / "data", EXAMPLE)
    base = ["--config", str(EXAMPLE), "--data", str(tmp_path / "data")]
    assert main(["admins", "create", *base, "--email", EMAIL]) == 0
    yield
    fc.reset()


def test_console_page_and_admin_api_through_the_fc_http_handler() -> None:
    page = fc3("GET", "/_/")
    assert page.status == 200, page.body[:200]
    assert page.headers["content-type"].startswith("text/html")
    assert b"<script" in page.body

    wrong = fc3("POST", "/_/api/login", orjson.dumps({"email": EMAIL, "password": "not it"}), JSON)
    assert wrong.status == 401, wrong.body
    login = fc3("POST", "/_/api/login", orjson.dumps({"email": EMAIL, "password": PASSWORD}), JSON)
    assert login.status == 200, login.body
    cookie = login.headers["set-cookie"]
    # FC's HTTP trigger is https: the cookie is Secure there.
    assert {"httponly", "samesite=strict", "secure"} <= {a.strip().lower() for a in cookie.split(";")}, cookie
    admin = {"cookie": cookie.split(";", 1)[0]}
    csrf = login.json()["data"]["csrf"]

    me = fc3("GET", "/_/api/me", headers=admin)
    assert me.status == 200 and me.json()["data"]["email"] == EMAIL, me.body
    overview = fc3("GET", "/_/api/overview", headers=admin)
    assert overview.status == 200, overview.body

    # A state-changing call needs the CSRF header; with it the session ends.
    refused = fc3("POST", "/_/api/logout", headers=admin)
    assert refused.status == 403 and refused.json()["error"]["code"] == "PermissionDenied", refused.body
    out = fc3("POST", "/_/api/logout", headers={**admin, "x-csrf-token": csrf})
    assert out.status == 200, out.body
    assert fc3("GET", "/_/api/me", headers=admin).status == 401


def test_an_app_session_does_not_open_the_admin_api_on_fc(tmp_path: Path) -> None:
    session = fc3("POST", "/session", orjson.dumps({"authCode": "dev:alice", "provider": "dev"}), JSON)
    assert session.status == 200, session.body
    sid = session.json()["sessionId"]
    me = fc3("GET", "/_/api/me", headers={"authorization": f"Bearer {sid}"})
    assert me.status == 401 and me.json()["error"]["code"] == "Unauthenticated", me.body
    users = fc3("GET", "/_/api/users", headers={"authorization": f"Bearer {sid}"})
    assert users.status == 401, users.body


def test_the_last_audit_batch_is_stored_when_the_instance_stops(tmp_path: Path) -> None:
    """An FC instance may be stopped right after a call: its audit events still reach the
    console's table (the batch is written at shutdown, not lost with the event loop)."""
    session = fc3("POST", "/session", orjson.dumps({"authCode": "dev:bob", "provider": "dev"}), JSON)
    assert session.status == 200, session.body
    uid = session.json()["user"]["uid"]
    fc.reset()  # the runtime stops at once: no time for the delayed batch
    db = sqlite3.connect(tmp_path / "data" / "minibase.db")
    try:
        events = [e for (e,) in db.execute("SELECT event FROM console_audit WHERE uid = ?", (uid,))]
    finally:
        db.close()
    assert events, "the login's audit event was lost at shutdown"
