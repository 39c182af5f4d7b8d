"""The FC handlers run the seed flow in-process with FC-shaped events, like `serve` does."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from minibase.client import Credentials, signed_headers
from minibase.runtime import fc

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "todo" / "minibase.toml"
INVOKE = "/2016-08-15/services/todo-list-svc/functions/db/invocations"
SESSION = "/2016-08-15/proxy/todo-list-svc/session/"


@pytest.fixture(autouse=True)
def fc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MINIBASE_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("MINIBASE_DATA", str(tmp_path / "data"))
    for var in ("ALIPAY_APP_ID", "ALIPAY_PRIVATE_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    fc.reset()
    yield
    fc.reset()


def http_event(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "version": "v1",
        "rawPath": path,
        "body": body.decode(),
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "queryParameters": {},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "1.2.3.4"},
            "requestId": "r1",
        },
    }


def http(method: str, path: str, event: dict[str, Any], creds: Credentials | None = None) -> dict[str, Any]:
    body = orjson.dumps(event)
    headers = signed_headers(creds, method, path, body) if creds else {}
    return fc.http_handler(orjson.dumps(http_event(method, path, body, headers)), SimpleNamespace())


def login(name: str) -> dict[str, Any]:
    resp = http("POST", SESSION, {"authCode": f"dev:{name}"})
    assert resp["statusCode"] == 200, resp
    return dict(orjson.loads(resp["body"]))


def test_http_handler_seed_flow() -> None:
    alice = login("alice")
    creds = Credentials.from_wire(alice["sts"])
    r = http(
        "POST",
        INVOKE,
        {"sid": alice["sessionId"], "op": "put", "obj": {"id": "buy milk", "completed": False}},
        creds,
    )
    assert r["statusCode"] == 200 and orjson.loads(r["body"]) == {"data": None}
    r = http("POST", INVOKE, {"sid": alice["sessionId"], "op": "list"}, creds)
    assert [d["id"] for d in orjson.loads(r["body"])["data"]] == ["buy milk"]
    assert r["headers"]["content-type"] == "application/json" and r["isBase64Encoded"] is False
    bob = login("bob")
    r = http("POST", INVOKE, {"sid": bob["sessionId"], "op": "list"}, Credentials.from_wire(bob["sts"]))
    assert orjson.loads(r["body"])["data"] == []
    # A forged signature is refused the FC way.
    forged = Credentials(creds.access_key_id, "x" * 43, creds.security_token, creds.expiration)
    r = http("POST", INVOKE, {"sid": alice["sessionId"], "op": "list"}, forged)
    assert r["statusCode"] == 403 and orjson.loads(r["body"])["ErrorCode"] == "SignatureNotMatch"
    # Base64 bodies, as FC sends binary ones.
    import base64

    e = http_event("POST", SESSION, headers={})
    e["body"], e["isBase64Encoded"] = base64.b64encode(b'{"authCode": "dev:carol"}').decode(), True
    assert fc.http_handler(e, None)["statusCode"] == 200


def test_event_handler_seed_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    alice = login("alice")
    ctx = SimpleNamespace(function=SimpleNamespace(name="db"), request_id="req-1")
    out = orjson.loads(
        fc.event_handler(orjson.dumps({"sid": alice["sessionId"], "op": "put", "obj": {"id": "a"}}), ctx)
    )
    assert out == {"data": None}
    out = orjson.loads(fc.event_handler(orjson.dumps({"sid": alice["sessionId"], "op": "list"}), ctx))
    assert [d["id"] for d in out["data"]] == ["a"] and out["next"] is None
    out = orjson.loads(fc.event_handler(orjson.dumps({"sid": "forged", "op": "list"}), ctx))
    assert out["error"]["code"] == "Unauthenticated" and out["error"]["requestId"] == "req-1"
    out = orjson.loads(fc.event_handler(b"{not json", ctx))
    assert out["error"]["code"] == "InvalidArgument"
    # The function name may come from the environment instead.
    monkeypatch.setenv("MINIBASE_FUNCTION", "session")
    out = orjson.loads(fc.event_handler(orjson.dumps({"authCode": "dev:zed"}), None))
    assert out["sessionId"] and out["user"]["provider"] == "dev"
    # Developer functions too.
    ctx2 = SimpleNamespace(function=SimpleNamespace(name="stats"), request_id="req-2")
    out = orjson.loads(fc.event_handler(orjson.dumps({"sid": alice["sessionId"]}), ctx2))
    assert out == {"data": {"total": 1, "completed": 0, "open": 1}}


def test_wsgi_handler_seed_flow() -> None:
    def call(
        path: str, event: dict[str, Any], creds: Credentials | None = None
    ) -> tuple[str, dict[str, str], Any]:
        body = orjson.dumps(event)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "REMOTE_ADDR": "1.2.3.4",
        }
        for k, v in (signed_headers(creds, "POST", path, body) if creds else {}).items():
            if k != "content-type":
                environ["HTTP_" + k.upper().replace("-", "_")] = v
        got: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            got["status"], got["headers"] = status, dict(headers)

        out = b"".join(fc.wsgi_handler(environ, start_response))
        return got["status"], got["headers"], orjson.loads(out)

    status, _, alice = call(SESSION, {"authCode": "dev:alice"})
    assert status == "200 OK"
    creds = Credentials.from_wire(alice["sts"])
    status, _, body = call(INVOKE, {"sid": alice["sessionId"], "op": "put", "obj": {"id": "w"}}, creds)
    assert status == "200 OK" and body == {"data": None}
    status, headers, body = call(INVOKE, {"sid": alice["sessionId"], "op": "nope"}, creds)
    assert status == "200 OK" and headers["x-fc-error-type"] == "HandledInvocationError"
    assert body["error"]["code"] == "InvalidArgument"


def test_handler_import_is_light() -> None:
    """Cold start: importing the handler module pulls in no HTTP client, crypto or driver."""
    code = "import sys, minibase.runtime.fc; print(' '.join(sorted(sys.modules)))"
    mods = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    for heavy in ("starlette", "uvicorn", "httpx", "cryptography", "asyncpg", "boto3"):
        assert heavy not in mods, heavy
