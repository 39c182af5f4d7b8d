"""FC's mini-program template flow through FC's official Python SDK (``aliyun-fc2``), as published.

Login on the session function's HTTP-trigger path with the SDK's ``do_http_request``, then
``invoke_function(service, "db", event)`` with the template's ``{sid, op}`` events, signed with
the login's STS-style credentials. The SDK sends no Content-MD5.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

try:
    import fc2
except ImportError:  # an environment set up before the SDK joined the test extra
    pytest.fail("FC's Python SDK (aliyun-fc2, in the test extra) is not installed: run scripts/setup", False)

from tests.support.config import SERVICE
from tests.support.fc_sdks import Server

TIMEOUT = 10  # seconds; the SDK's own default is 60


def sdk(url: str, key_id: str, secret: str, token: str = "") -> fc2.Client:
    return fc2.Client(
        endpoint=url, accessKeyID=key_id, accessKeySecret=secret, securityToken=token, Timeout=TIMEOUT
    )


def login(server: Server, name: str) -> tuple[str, fc2.Client]:
    """The template's login: the session function's anonymous HTTP trigger. The SDK signs
    every call with the credentials it holds; before login there are none, so any will do."""
    anonymous = sdk(server.url, "anonymous", "anonymous")
    body = json.dumps({"authCode": f"dev:{name}"}).encode()
    r = anonymous.do_http_request("POST", SERVICE, "session", "/", body=body)
    assert r.status_code == 200, r.text
    out = r.json()
    sts = out["sts"]
    assert sts["AccessKeyId"].startswith("STS.") and out["sessionId"]
    return out["sessionId"], sdk(server.url, sts["AccessKeyId"], sts["AccessKeySecret"], sts["SecurityToken"])


def db(client: fc2.Client, sid: str, **event: Any) -> Any:
    payload = json.dumps({"sid": sid, **event}).encode()
    resp = client.invoke_function(SERVICE, "db", payload=payload)
    assert resp.headers.get("x-fc-error-type") is None
    return json.loads(resp.data)


def test_template_flow_through_the_python_sdk(server: Server) -> None:
    alice_sid, alice = login(server, "alice")
    bob_sid, bob = login(server, "bob")

    assert db(alice, alice_sid, op="put", obj={"id": "buy milk", "completed": False}) == {"data": None}
    got = db(alice, alice_sid, op="get", id="buy milk")["data"]
    assert got["id"] == "buy milk" and got["completed"] is False and got["_version"] == 1
    page = db(alice, alice_sid, op="list")
    assert [d["id"] for d in page["data"]] == ["buy milk"] and page["next"] is None

    # Bob never sees alice's todos, and his own of the same id is his.
    assert db(bob, bob_sid, op="list") == {"data": [], "next": None}
    assert db(bob, bob_sid, op="get", id="buy milk") == {"data": None}
    assert db(bob, bob_sid, op="put", obj={"id": "buy milk", "completed": True}) == {"data": None}
    assert db(bob, bob_sid, op="remove", id="buy milk") == {"data": None}
    assert db(alice, alice_sid, op="get", id="buy milk")["data"] == got

    assert db(alice, alice_sid, op="remove", id="buy milk") == {"data": None}
    assert db(alice, alice_sid, op="get", id="buy milk") == {"data": None}
    assert db(alice, alice_sid, op="list") == {"data": [], "next": None}

    # What went over the wire: every call signed with the login's credentials, no Content-MD5.
    calls = server.invocations("db")
    assert len(calls) == 11
    assert all(c.headers["authorization"].startswith("FC STS.") for c in calls)
    assert all("x-fc-security-token" in c.headers and "content-md5" not in c.headers for c in calls)


def test_python_sdk_surfaces_refusals_and_handled_errors(server: Server) -> None:
    sid, alice = login(server, "carol")
    other_sid, _ = login(server, "dan")

    # A forged signature (right key id and token, wrong secret): refused by the gateway.
    forged = sdk(server.url, alice.auth.id, "x" * 43, alice.auth.security_token)
    with pytest.raises(fc2.FcError) as e:
        forged.invoke_function(SERVICE, "db", payload=json.dumps({"sid": sid, "op": "list"}).encode())
    assert (e.value.status_code, e.value.err_code) == (403, "SignatureNotMatch")

    # Another session's sid with carol's credentials: the function refuses (a handled error).
    with pytest.raises(fc2.FcError) as e:
        alice.invoke_function(SERVICE, "db", payload=json.dumps({"sid": other_sid, "op": "list"}).encode())
    assert e.value.status_code == 200 and json.loads(e.value.message)["errorType"] == "PermissionDenied"

    # A bad event: a handled error, whose body the SDK hands over with FC's fields in it.
    with pytest.raises(fc2.FcError) as e:
        alice.invoke_function(SERVICE, "db", payload=json.dumps({"sid": sid, "op": "launch"}).encode())
    assert e.value.status_code == 200
    body = json.loads(e.value.message)
    assert body["errorType"] == body["error"]["code"] == "InvalidArgument"
    assert body["errorMessage"] == body["error"]["message"] and "launch" in body["errorMessage"]
    assert body["RequestId"] == body["error"]["requestId"] == e.value.request_id
