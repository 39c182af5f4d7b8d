"""HTTP helpers for the tests: signed FC calls and logins over loopback, and one SSL context
for every httpx client of a test process."""

from __future__ import annotations

import functools
import ssl
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


def share_ssl_context() -> None:
    """Every httpx client builds an SSL context (certifi's bundle parsed: tens of ms of CPU
    each) although the tests only speak plain HTTP on loopback; build each kind once per
    test process. The context is unchanged: the same settings, created once."""
    from httpx._transports import default

    create = default.create_ssl_context
    if getattr(create, "shared", False):
        return

    @functools.lru_cache(maxsize=8)
    def cached(verify: Any, cert: Any, trust_env: bool) -> ssl.SSLContext:
        return create(verify=verify, cert=cert, trust_env=trust_env)

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if isinstance(verify, bool) and cert is None:
            return cached(verify, cert, trust_env)
        return create(verify=verify, cert=cert, trust_env=trust_env)

    shared.shared = True  # type: ignore[attr-defined]
    default.create_ssl_context = shared  # type: ignore[assignment]
