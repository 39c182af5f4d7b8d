"""The FC handlers run the template's client flow in-process with FC-shaped events, as `serve` does.

Each transport (FC 3.0 HTTP trigger events, FC 2.0 WSGI environs, Invoke API events) drives
the same flow: login → put → get → list → remove → developer function → files → logout →
refused, against the TODO example's config with a fresh data dir.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import pytest

from minibase.client import Credentials, signed_headers
from minibase.runtime import fc
from tests.support.fc import Reply, example_environment, fc2, fc3, http_event

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "todo" / "minibase.toml"
SERVICE = "todo-list-svc"
SESSION = f"/2016-08-15/proxy/{SERVICE}/session/"
PNG = b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary, not UTF-8 \x80"


def invoke_path(function: str) -> str:
    return f"/2016-08-15/services/{SERVICE}/functions/{function}/invocations"


@pytest.fixture(autouse=True)
def fc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    example_environment(monkeypatch, tmp_path / "data", EXAMPLE)
    yield
    fc.reset()


# ----------------------------------------------------------------- transports


class HttpClient:
    """A template client over one HTTP transport: login on the session path, functions via the
    FC Invoke API path (FC-signed) and ``/invoke/{fn}`` (Bearer)."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.sid = ""
        self.creds: Credentials | None = None

    def login(self, name: str) -> dict[str, Any]:
        r = self.send(
            "POST", SESSION, orjson.dumps({"authCode": f"dev:{name}"}), {"content-type": "application/json"}
        )
        assert r.status == 200, r.body
        out = r.json()
        self.sid, self.creds = out["sessionId"], Credentials.from_wire(out["sts"])
        return dict(out)

    def signed(self, function: str, event: dict[str, Any]) -> Reply:
        assert self.creds is not None
        body = orjson.dumps(event)
        path = invoke_path(function)
        return self.send("POST", path, body, signed_headers(self.creds, "POST", path, body))

    def bearer(self, function: str, event: dict[str, Any]) -> Reply:
        headers = {"authorization": f"Bearer {self.sid}", "content-type": "application/json"}
        return self.send("POST", f"/invoke/{function}", orjson.dumps(event), headers)

    def call(self, function: str, event: dict[str, Any]) -> Any:
        r = self.signed(function, {"sid": self.sid, **event})
        assert r.status == 200 and "x-fc-error-type" not in r.headers, (r.status, r.body)
        return r.json()


def http_template_flow(send: Any) -> None:
    alice = HttpClient(send)
    alice.login("alice")
    assert alice.call("db", {"op": "put", "obj": {"id": "buy milk", "completed": False}}) == {"data": None}
    got = alice.call("db", {"op": "get", "id": "buy milk"})["data"]
    assert got["id"] == "buy milk" and got["completed"] is False and got["uid"]
    page = alice.call("db", {"op": "list"})
    assert [d["id"] for d in page["data"]] == ["buy milk"] and page["next"] is None
    # Bearer on /invoke works too, with the status the code has.
    r = alice.bearer("db", {"op": "get", "id": "buy milk"})
    assert r.status == 200 and r.json()["data"]["id"] == "buy milk"
    r = alice.bearer("db", {"op": "nope"})
    assert r.status == 400 and r.json()["error"]["code"] == "InvalidArgument"
    # The invocation's own request id, so that the failure can be found in FC's logs.
    assert r.json()["error"]["requestId"] == r.headers["x-fc-request-id"] == "ctx-req"
    # Function errors on the Invoke API path: 200 + x-fc-error-type, the envelope and FC's
    # fields as body.
    r = alice.signed("db", {"sid": alice.sid, "op": "nope"})
    assert r.status == 200 and r.headers["x-fc-error-type"] == "HandledInvocationError"
    err = r.json()["error"]
    assert err["code"] == "InvalidArgument" and err["requestId"] == "ctx-req"
    assert r.json()["errorType"] == "InvalidArgument" and r.json()["errorMessage"] == err["message"]
    # Another user sees nothing of alice's.
    bob = HttpClient(send)
    bob.login("bob")
    assert bob.call("db", {"op": "list"})["data"] == []
    assert bob.call("db", {"op": "get", "id": "buy milk"})["data"] is None
    # The developer's function.
    assert alice.call("stats", {}) == {"data": {"total": 1, "completed": 0, "open": 1}}
    # Files: a binary upload and download through the same handler (base64 both ways).
    up = alice.call(
        "files", {"op": "uploadUrl", "path": "a.png", "contentType": "image/png", "size": len(PNG)}
    )
    url = urlsplit(up["data"]["url"])
    assert url.scheme == "https" and up["data"]["method"] == "PUT"
    r = send("PUT", f"{url.path}?{url.query}", PNG, up["data"]["headers"])
    assert r.status in (200, 201, 204), r.body
    down = alice.call("files", {"op": "downloadUrl", "path": "a.png"})["data"]["url"]
    got_file = send("GET", urlsplit(down).path + "?" + urlsplit(down).query)
    assert got_file.status == 200 and got_file.body == PNG
    assert alice.call("files", {"op": "stat", "path": "a.png"})["data"]["size"] == len(PNG)
    # Remove, then it is gone.
    assert alice.call("db", {"op": "remove", "id": "buy milk"}) == {"data": None}
    assert alice.call("db", {"op": "get", "id": "buy milk"}) == {"data": None}
    # A forged signature is refused the FC way.
    assert alice.creds is not None
    forged = alice.creds
    alice.creds = Credentials(forged.access_key_id, "x" * 43, forged.security_token, forged.expiration)
    r = alice.signed("db", {"sid": alice.sid, "op": "list"})
    assert r.status == 403 and r.json()["ErrorCode"] == "SignatureNotMatch"
    alice.creds = forged
    # Logout, then the session and its credentials are refused.
    r = send(
        "POST",
        SESSION,
        orjson.dumps({"op": "logout", "sessionId": alice.sid}),
        {"content-type": "application/json"},
    )
    assert r.status == 200 and r.json() == {"data": None}
    r = alice.signed("db", {"sid": alice.sid, "op": "list"})
    assert r.status == 403 and r.json()["ErrorCode"] == "InvalidSecurityToken"
    r = alice.bearer("db", {"op": "list"})
    assert r.status == 401 and r.json()["error"]["code"] == "Unauthenticated"


def test_http_handler_template_flow() -> None:
    http_template_flow(fc3)


def test_wsgi_handler_template_flow() -> None:
    http_template_flow(fc2)


def test_wsgi_handler_without_request_uri_uses_path_info() -> None:
    body = orjson.dumps({"authCode": "dev:pat"})
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": SESSION,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    got: dict[str, Any] = {}
    out = fc.wsgi_handler(environ, lambda status, headers: got.update(status=status))
    assert got["status"] == "200 OK" and orjson.loads(b"".join(out))["sessionId"]


def event(function: str, payload: Any, request_id: str = "req-1") -> Any:
    ctx = SimpleNamespace(function=SimpleNamespace(name=function), request_id=request_id)
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return orjson.loads(fc.event_handler(data, ctx))


def test_event_handler_template_flow() -> None:
    login = event("session", {"authCode": "dev:alice"})
    sid = login["sessionId"]
    assert login["user"]["provider"] == "dev" and login["sts"]["AccessKeyId"]
    assert event("db", {"sid": sid, "op": "put", "obj": {"id": "a", "completed": True}}) == {"data": None}
    assert event("db", {"sid": sid, "op": "get", "id": "a"})["data"]["completed"] is True
    page = event("db", {"sid": sid, "op": "list"})
    assert [d["id"] for d in page["data"]] == ["a"] and page["next"] is None
    assert event("stats", {"sid": sid}) == {"data": {"total": 1, "completed": 1, "open": 0}}
    assert event("files", {"sid": sid, "op": "stat", "path": "none.png"}) == {"data": None}
    assert event("files", {"sid": sid, "op": "list"})["data"] == []
    assert event("db", {"sid": sid, "op": "remove", "id": "a"}) == {"data": None}
    assert event("db", {"sid": sid, "op": "get", "id": "a"}) == {"data": None}
    assert event("session", {"op": "logout", "sessionId": sid}) == {"data": None}
    out = event("db", {"sid": sid, "op": "list"}, "req-9")
    assert out["error"]["code"] == "Unauthenticated" and out["error"]["requestId"] == "req-9"
    # Developer functions need a session unless public.
    assert event("stats", {})["error"]["code"] == "Unauthenticated"


def test_event_handler_errors_use_the_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    assert event("db", b"{not json")["error"]["code"] == "InvalidArgument"
    assert event("db", [1, 2])["error"]["code"] == "InvalidArgument"
    message = "no function named 'nope' (set MINIBASE_FUNCTION)"
    # The envelope, with FC's fields beside it as on the Invoke API path of `serve`.
    out = event("nope", {})
    assert out["error"].pop("serverTime").endswith("Z")
    assert out == {
        "error": {"code": "NotFound", "message": message, "requestId": "req-1"},
        "errorMessage": message,
        "errorType": "NotFound",
    }
    assert orjson.loads(fc.event_handler(b"{}", None))["error"]["code"] == "NotFound"
    # An event dict (as local tools pass) works like bytes.
    assert orjson.loads(
        fc.event_handler({"authCode": "dev:d"}, SimpleNamespace(function=SimpleNamespace(name="session")))
    )["sessionId"]


def test_event_handler_function_name_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """MINIBASE_FUNCTION names the minibase function whatever the FC function is called."""
    monkeypatch.setenv("MINIBASE_FUNCTION", "session")
    ctx = SimpleNamespace(function=SimpleNamespace(name="todo-list-svc-session"), request_id="r")
    out = orjson.loads(fc.event_handler(orjson.dumps({"authCode": "dev:zed"}), ctx))
    assert out["sessionId"] and out["user"]["provider"] == "dev"
    out = orjson.loads(fc.event_handler(orjson.dumps({"authCode": "dev:zed"}), None))
    assert out["sessionId"]


def audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "minibase.audit"]


@pytest.mark.parametrize("send", [fc3, fc2], ids=["http_handler", "wsgi_handler"])
def test_http_handlers_use_the_invocations_request_id(send: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Answers, x-fc-request-id and audit lines carry FC's id for the invocation
    (``context.request_id``), so that a user can find a failure in FC's logs."""
    caplog.set_level(logging.INFO, logger="minibase.audit")
    c = HttpClient(send)
    c.login("ida")
    assert c.creds is not None
    r = c.signed("db", {"sid": c.sid, "op": "list"})
    assert r.status == 200 and r.headers["x-fc-request-id"] == "ctx-req"
    # Refused by the gateway (FC's shape), and by the router (Starlette's 404).
    forged = Credentials(c.creds.access_key_id, "x" * 43, c.creds.security_token, c.creds.expiration)
    body, path = orjson.dumps({"sid": c.sid, "op": "list"}), invoke_path("db")
    r = send("POST", path, body, signed_headers(forged, "POST", path, body))
    assert r.status == 403 and r.json()["RequestId"] == r.headers["x-fc-request-id"] == "ctx-req"
    r = send("GET", "/no/such/route")
    assert r.status == 404 and r.json()["error"]["requestId"] == r.headers["x-fc-request-id"] == "ctx-req"
    # A permission refusal (ida's credentials with another session's sid), audited.
    other = HttpClient(send)
    other.login("jay")
    r = c.signed("db", {"sid": other.sid, "op": "list"})
    assert r.json()["error"]["code"] == "PermissionDenied" and r.json()["error"]["requestId"] == "ctx-req"
    events = audit_events(caplog)
    assert {e["event"] for e in events} == {"login.success", "gateway.refused", "permission.denied"}
    assert {e["requestId"] for e in events} == {"ctx-req"}


def test_request_id_without_fc_context() -> None:
    """Without ``context.request_id``: the FC 3.0 event's requestContext.requestId, the
    x-fc-request-id header FC adds on FC 2.0, else a new one; never a malformed one."""
    resp = fc.http_handler(http_event("GET", "/no/such/route"), None)
    assert resp["headers"]["x-fc-request-id"] == orjson.loads(resp["body"])["error"]["requestId"] == "1-req"
    r = fc2("GET", "/no/such/route", headers={"x-fc-request-id": "hdr-req"}, context=None)
    assert r.json()["error"]["requestId"] == r.headers["x-fc-request-id"] == "hdr-req"
    # FC's context wins over a header a client could have sent.
    r = fc2("GET", "/no/such/route", headers={"x-fc-request-id": "hdr-req"})
    assert r.json()["error"]["requestId"] == "ctx-req"
    for bad in ("", "has space", "x" * 129, "caf\u00e9", 42):
        r = fc2("GET", "/no/such/route", context=SimpleNamespace(request_id=bad))
        rid = r.json()["error"]["requestId"]
        assert rid == r.headers["x-fc-request-id"] and len(rid) == 16 and int(rid, 16) >= 0, bad


def test_event_handler_audits_with_the_invocations_request_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="minibase.audit")
    assert event("session", {"authCode": "dev:ivy"}, "ev-req")["sessionId"]
    assert event("session", {"authCode": "nope:ivy", "provider": "nope"}, "ev-req-2")["error"]
    got = {(e["event"], e["requestId"]) for e in audit_events(caplog)}
    assert got == {("login.success", "ev-req"), ("login.failure", "ev-req-2")}


def test_http_handler_bad_events_answer_the_envelope() -> None:
    for bad in (b"not json", b"[1]", orjson.dumps({**http_event("POST", SESSION), "body": 5})):
        resp = fc.http_handler(bad, SimpleNamespace(request_id="r-bad"))
        assert resp["statusCode"] == 400 and resp["isBase64Encoded"] is False
        err = orjson.loads(resp["body"])["error"]
        assert err["code"] == "InvalidArgument" and err["requestId"] == "r-bad"
    e = http_event("POST", SESSION)
    e["body"], e["isBase64Encoded"] = "***not base64***", True
    resp = fc.http_handler(e, None)
    assert resp["statusCode"] == 400 and "base64" in orjson.loads(resp["body"])["error"]["message"]
    # Unknown routes and methods answer like serve does.
    resp = fc.http_handler(http_event("GET", "/no/such/route"), None)
    assert resp["statusCode"] == 404 and orjson.loads(resp["body"])["error"]["code"] == "NotFound"
    resp = fc.http_handler(http_event("GET", "/healthz"), None)
    assert resp["statusCode"] == 200 and orjson.loads(resp["body"]) == {"data": {"ok": True}}
    # Text responses stay text; the web app's pages are served as well.
    resp = fc.http_handler(http_event("GET", "/"), None)
    assert resp["statusCode"] == 200 and resp["isBase64Encoded"] is False and "<html" in resp["body"].lower()


def test_http_handler_percent_encoded_paths() -> None:
    """rawPath is percent-encoded; the app routes on the decoded path, as under uvicorn."""
    c = HttpClient(fc3)
    c.login("eve")
    name = "照片 1.png"
    up = c.call("files", {"op": "uploadUrl", "path": name, "contentType": "image/png", "size": len(PNG)})[
        "data"
    ]
    url = urlsplit(up["url"])
    assert quote(name) in url.path
    assert fc3("PUT", f"{url.path}?{url.query}", PNG, up["headers"]).status in (200, 201, 204)
    assert c.call("files", {"op": "stat", "path": name})["data"]["size"] == len(PNG)


def test_config_error_is_logged_and_answered_internal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[app]\nname = 5\n")
    monkeypatch.setenv("MINIBASE_CONFIG", str(bad))
    resp = fc.http_handler(http_event("POST", SESSION, b"{}"), SimpleNamespace(request_id="r-cfg"))
    assert resp["statusCode"] == 500
    err = orjson.loads(resp["body"])["error"]
    assert err.pop("serverTime").endswith("Z")
    assert err == {"code": "Internal", "message": "internal error", "requestId": "r-cfg"}
    assert "app.name" in caplog.text and "Traceback" not in resp["body"]
    # Fixed config, next invocation works: a failed start is not cached.
    monkeypatch.setenv("MINIBASE_CONFIG", str(EXAMPLE))
    assert (
        fc3("POST", SESSION, orjson.dumps({"authCode": "dev:x"}), {"content-type": "application/json"}).status
        == 200
    )


def test_relative_config_resolves_in_the_code_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FC_FUNC_CODE_PATH", str(EXAMPLE.parent))
    monkeypatch.setenv("MINIBASE_CONFIG", "minibase.toml")
    assert fc.config_path() == str(EXAMPLE)
    monkeypatch.delenv("MINIBASE_CONFIG")
    assert fc.config_path() == str(EXAMPLE)
    monkeypatch.chdir(EXAMPLE.parent.parent)
    monkeypatch.delenv("FC_FUNC_CODE_PATH")
    monkeypatch.setenv("MINIBASE_CONFIG", "todo/minibase.toml")
    assert fc.config_path() == str(EXAMPLE.parent.parent / "todo" / "minibase.toml")
    assert (
        fc3("POST", SESSION, orjson.dumps({"authCode": "dev:x"}), {"content-type": "application/json"}).status
        == 200
    )


def test_handler_import_is_light() -> None:
    """Cold start: importing the handler module pulls in no HTTP client, crypto or driver."""
    code = "import sys, minibase.runtime.fc; print(' '.join(sorted(sys.modules)))"
    mods = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    for heavy in ("starlette", "uvicorn", "httpx", "cryptography", "asyncpg", "boto3"):
        assert heavy not in mods, heavy
