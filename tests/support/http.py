"""Helpers shared by tests (from tests/test_app.py)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from minibase.client import Credentials, signed_headers
from tests.support.config import SERVICE

FC_INVOKE = f"/2016-08-15/services/{SERVICE}/functions/db/invocations"


PROXY_SESSION = f"/2016-08-15/proxy/{SERVICE}/session/"


def raw_login(url: str, code: str) -> dict[str, Any]:
    r = httpx.post(url + PROXY_SESSION, json={"authCode": code})
    assert r.status_code == 200, r.text
    return r.json()


def signed_post(
    url: str, creds: Credentials, event: dict[str, Any], path: str = FC_INVOKE, **kw: Any
) -> httpx.Response:
    body = orjson.dumps(event)
    return httpx.post(url + path, content=body, headers=signed_headers(creds, "POST", path, body, **kw))
