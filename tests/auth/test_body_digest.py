"""A FC signature covers the body only through a signed Content-MD5 (issue 18, point 5).

Found by a review: on ``/invoke/…`` a request signed for ``{"op":"list"}`` was accepted
with a ``put`` body, so a captured signed request was a bearer token for any event for 15
minutes. Now ``/invoke/…`` requires Content-MD5 on FC-signed calls; FC's Invoke API path
keeps FC's behaviour (its Python SDK sends none) unless ``[auth] require_body_digest``.
Our clients always send one. Everything over real HTTP on loopback.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from minibase.app import create_app
from minibase.auth import fc_signature
from minibase.client import Client, Credentials, signed_headers
from minibase.config import Config
from minibase.core import Minibase
from tests.support.config import SERVICE, base_raw
from tests.support.live import run_uvicorn

FC_INVOKE = f"/2016-08-15/services/{SERVICE}/functions/db/invocations"
LIST = orjson.dumps({"op": "list"})
PUT = orjson.dumps({"op": "put", "obj": {"id": "planted", "by": "attacker"}})


class Server:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = Client(url, SERVICE)
        self.client.login(auth_code="dev:victim")
        assert self.client.credentials is not None
        self.creds: Credentials = self.client.credentials

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.url + path, content=body, headers=headers)

    def planted(self) -> bool:
        return self.client.db("get", id="planted") is not None


@pytest.fixture
def serve(make_config: Callable[..., Config]) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []
    stack: list[Any] = []

    def start(**auth: Any) -> Server:
        config = make_config(base_raw(auth={"dev": {"enabled": True}, **auth}))
        cm = run_uvicorn(create_app(config, core=Minibase.from_config(config)))
        url = cm.__enter__()
        stack.append(cm)
        servers.append(Server(url))
        return servers[-1]

    yield start
    for s in servers:
        s.client.close()
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.mark.parametrize("path", ["/invoke/db", FC_INVOKE])
def test_a_signature_without_digest_cannot_carry_another_body(
    serve: Callable[..., Server], path: str
) -> None:
    """The finding: signed for `list`, sent with a `put`. Refused on /invoke/ always, on the
    FC path when require_body_digest is on; nothing is written either way."""
    s = serve(require_body_digest=path == FC_INVOKE)
    headers = signed_headers(s.creds, "POST", path, LIST, content_md5=False)
    r = s.post(path, PUT, headers)
    if path == FC_INVOKE:
        assert r.status_code == 400, r.text
        assert r.json()["ErrorCode"] == "MissingRequiredHeader"
    else:
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "Unauthenticated"
    assert "Content-MD5" in r.text
    assert not s.planted()
    # The same signed request with the body it was signed for is refused the same way.
    assert s.post(path, LIST, headers).status_code == r.status_code


@pytest.mark.parametrize("path", ["/invoke/db", FC_INVOKE])
def test_a_signed_digest_binds_the_body(serve: Callable[..., Server], path: str) -> None:
    s = serve(require_body_digest=True)
    headers = signed_headers(s.creds, "POST", path, LIST)
    assert headers["content-md5"]
    assert s.post(path, LIST, headers).status_code == 200
    # Swapping the body: the digest no longer matches. Swapping the digest too: the
    # signature no longer matches (Content-MD5 is in the string to sign).
    r = s.post(path, PUT, headers)
    assert r.status_code in (400, 401), r.text
    assert "Content-MD5 does not match" in r.text
    forged = {
        **headers,
        "content-md5": base64.b64encode(hashlib.md5(PUT, usedforsecurity=False).digest()).decode(),
    }
    r = s.post(path, PUT, forged)
    assert r.status_code in (401, 403), r.text
    assert "SignatureNotMatch" in r.text or "signature" in r.text
    assert not s.planted()


def test_fc_path_keeps_fcs_behaviour_by_default(serve: Callable[..., Server]) -> None:
    """FC's Python SDK signs without Content-MD5: accepted on the FC path unless configured."""
    s = serve()
    headers = signed_headers(s.creds, "POST", FC_INVOKE, LIST, content_md5=False)
    r = s.post(FC_INVOKE, LIST, headers)
    assert r.status_code == 200, r.text
    # …but /invoke/ on the same server refuses it.
    headers = signed_headers(s.creds, "POST", "/invoke/db", LIST, content_md5=False)
    assert s.post("/invoke/db", LIST, headers).status_code == 401


def test_the_python_client_always_signs_a_digest(serve: Callable[..., Server]) -> None:
    s = serve(require_body_digest=True)
    seen: list[str | None] = []
    with Client(s.url, SERVICE) as c:
        c.login(auth_code="dev:carol")
        c.http.event_hooks["request"].append(lambda req: seen.append(req.headers.get("content-md5")))
        c.db("put", obj={"id": "a", "t": 1})
        assert c.db("get", id="a")["t"] == 1
        assert c.invoke("db", {"op": "count"})["data"] == 1
    assert len(seen) >= 3 and all(seen), seen


def _md5_forms(body: bytes) -> dict[str, str]:
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    return {
        "rfc1864": base64.b64encode(digest).decode(),
        "node-sdk": base64.b64encode(digest.hex().encode()).decode(),  # base64 of the hex digest
        "go-sdk": digest.hex(),
        "go-sdk-upper": digest.hex().upper(),
    }


@pytest.mark.parametrize("path", ["/invoke/db", FC_INVOKE])
def test_each_content_md5_form_fcs_clients_send_over_http(serve: Callable[..., Server], path: str) -> None:
    """Issue 10: FC's Node.js SDK signs base64 of the hex digest, its Go SDK the hex digest;
    each form (signed, as those SDKs sign it) is accepted on a real server, and a digest of
    another body, in any form, is refused before the function runs."""
    s = serve(require_body_digest=True)

    def send(md5: str, body: bytes) -> httpx.Response:
        headers = {
            "content-type": "application/json",
            "date": fc_signature.format_date(),
            "x-fc-security-token": s.creds.security_token,
            "content-md5": md5,
        }
        headers["authorization"] = fc_signature.authorization(
            s.creds.access_key_id, s.creds.access_key_secret, "POST", path, headers, None
        )
        return s.post(path, body, headers)

    for form, md5 in _md5_forms(LIST).items():
        r = send(md5, LIST)
        assert r.status_code == 200 and r.json() == {"data": [], "next": None}, (form, r.text)
    # FC's path refuses FC's way (400 InvalidArgument); /invoke/ as any refused signature.
    status, code = (400, "InvalidArgument") if path == FC_INVOKE else (401, "Unauthenticated")
    for form, md5 in _md5_forms(b'{"op":"count"}').items():
        r = send(md5, PUT)
        assert r.status_code == status and code in r.text, (form, r.text)
        assert "Content-MD5 does not match the body" in r.text, (form, r.text)
    assert not s.planted()
