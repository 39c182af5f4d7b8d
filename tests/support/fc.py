"""FC's invocations in-process: FC 3.0 HTTP-trigger events (fc3) and FC 2.0 WSGI environs (fc2),
as FC builds them, through minibase's handlers."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
import pytest

from minibase.runtime import fc

# What FC hands every invocation: its request id among others (FCContext).
CONTEXT = SimpleNamespace(request_id="ctx-req")


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, {k.lower(): v for k, v in headers.items()}, body

    def json(self) -> Any:
        return orjson.loads(self.body)


def http_event(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    binary: bool = False,
) -> dict[str, Any]:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))  # FC hands them over decoded
    return {
        "version": "v1",
        "rawPath": parts.path,
        "body": base64.b64encode(body).decode() if binary else body.decode(),
        "isBase64Encoded": binary,
        "headers": headers or {},
        "queryParameters": query,
        "requestContext": {
            "accountId": "1234",
            "domainName": "minibase-abc.cn-hangzhou.fcapp.run",
            "domainPrefix": "minibase-abc",
            "http": {
                "method": method,
                "path": unquote(parts.path),
                "protocol": "HTTP/1.1",
                "sourceIp": "1.2.3.4",
            },
            "requestId": "1-req",
        },
    }


def fc3(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
    """One request through the FC 3.0 HTTP trigger handler (events as JSON bytes, as FC sends)."""
    binary = bool(body) and not body.startswith(b"{")
    event = http_event(method, url, body, headers, binary=binary)
    resp = fc.http_handler(orjson.dumps(event), CONTEXT)
    assert set(resp) == {"statusCode", "headers", "isBase64Encoded", "body"}
    raw = base64.b64decode(resp["body"]) if resp["isBase64Encoded"] else resp["body"].encode()
    return Reply(resp["statusCode"], resp["headers"], raw)


def fc2(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    context: Any = CONTEXT,
) -> Reply:
    """One request through the FC 2.0 WSGI handler, with FC's ``fc.request_uri`` and ``fc.context``."""
    parts = urlsplit(url)
    environ: dict[str, Any] = {
        "fc.context": context,
        "REQUEST_METHOD": method,
        "PATH_INFO": "/",  # FC 2.0 strips the proxy prefix here; fc.request_uri keeps it
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "1.2.3.4",
        "fc.request_uri": f"https://1234.cn-hangzhou.fc.aliyuncs.com{parts.path}"
        + (f"?{parts.query}" if parts.query else ""),
        "HTTP_HOST": "1234.cn-hangzhou.fc.aliyuncs.com",
    }
    for k, v in (headers or {}).items():
        if k.lower() == "content-type":
            environ["CONTENT_TYPE"] = v
        else:
            environ["HTTP_" + k.upper().replace("-", "_")] = v
    got: dict[str, Any] = {}

    def start_response(status: str, hdrs: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, dict(hdrs)

    out = b"".join(fc.wsgi_handler(environ, start_response))
    code, _, reason = got["status"].partition(" ")
    assert reason, got["status"]
    return Reply(int(code), got["headers"], out)


def example_environment(monkeypatch: pytest.MonkeyPatch, data: Path, config: Path) -> None:
    """The environment FC gives the TODO example's function: its config and a fresh data
    dir, no Alipay keys, no function name, no code path; the warm app forgotten."""
    monkeypatch.setenv("MINIBASE_CONFIG", str(config))
    monkeypatch.setenv("MINIBASE_DATA", str(data))
    for var in ("ALIPAY_APP_ID", "ALIPAY_PRIVATE_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE", "MINIBASE_FUNCTION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("FC_FUNC_CODE_PATH", raising=False)
    fc.reset()
