"""The HTTP surface over real HTTP: the template's client flow, isolation, refusals, error shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from minibase.auth import fc_signature
from minibase.client import Client, ClientError, Credentials, signed_headers
from tests.support.config import SERVICE, Live
from tests.support.http import FC_INVOKE, PROXY_SESSION, raw_login, signed_post


def test_template_client_flow(live: Live) -> None:
    """A client written for FC's mini-program template works unchanged."""
    login = raw_login(live.url, "dev:alice")
    # The template's client reads the fields at the top level; generic clients unwrap data.
    assert set(login) >= {"sessionId", "sts", "user", "expiresAt", "data"}
    assert login["data"]["sessionId"] == login["sessionId"]
    assert login["user"]["provider"] == "dev" and login["user"]["isNew"] is True
    assert login["sts"]["AccessKeyId"].startswith("STS.")
    sid, creds = login["sessionId"], Credentials.from_wire(login["sts"])

    r = signed_post(live.url, creds, {"sid": sid, "op": "put", "obj": {"id": "buy milk", "completed": False}})
    assert r.status_code == 200 and r.json() == {"data": None}
    r = signed_post(live.url, creds, {"sid": sid, "op": "list"})
    assert r.status_code == 200
    body = r.json()
    assert body["next"] is None
    [todo] = body["data"]
    assert todo["id"] == "buy milk" and todo["completed"] is False
    assert todo["uid"] == login["user"]["uid"] and todo["_version"] == 1
    r = signed_post(live.url, creds, {"sid": sid, "op": "get", "id": "buy milk"})
    assert r.json()["data"] == todo
    r = signed_post(live.url, creds, {"sid": sid, "op": "remove", "id": "buy milk"})
    assert r.json() == {"data": None}
    r = signed_post(live.url, creds, {"sid": sid, "op": "get", "id": "buy milk"})
    assert r.json() == {"data": None}

    bob = raw_login(live.url, "dev:bob")
    r = signed_post(live.url, Credentials.from_wire(bob["sts"]), {"sid": bob["sessionId"], "op": "list"})
    assert r.json() == {"data": [], "next": None}


def test_same_platform_user_same_uid(live: Live) -> None:
    a1, a2, b = (
        raw_login(live.url, "dev:alice"),
        raw_login(live.url, "dev:alice"),
        raw_login(live.url, "dev:bob"),
    )
    assert a1["user"]["uid"] == a2["user"]["uid"] != b["user"]["uid"]
    assert a1["sessionId"] != a2["sessionId"]
    assert a2["user"]["isNew"] is False


def test_users_never_see_each_other(live: Live) -> None:
    alice, bob = live.client("dev:alice"), live.client("dev:bob")
    alice.db("put", obj={"id": "secret", "text": "alice's"})
    bob.db("put", obj={"id": "secret", "text": "bob's"})
    assert alice.db("get", id="secret")["text"] == "alice's"
    assert bob.db("get", id="secret")["text"] == "bob's"
    bob.db("remove", id="secret")
    assert alice.db("get", id="secret")["text"] == "alice's"
    assert [d["text"] for d in alice.db("list")] == ["alice's"]
    # A client-supplied uid is ignored: the server sets the owner.
    bob.db("put", obj={"id": "sneaky", "uid": alice.uid, "_version": 99})
    doc = bob.db("get", id="sneaky")
    assert doc["uid"] == bob.uid and doc["_version"] == 1
    assert alice.db("get", id="sneaky") is None


def test_list_pagination(live: Live) -> None:
    c = live.client("dev:pager")
    ids = [f"t{i:03d}" for i in range(25)]
    for i in ids:
        c.db("put", obj={"id": i})
    seen, cursor, pages = [], None, 0
    while True:
        body = c.invoke("db", {"op": "list", "limit": 10, **({"cursor": cursor} if cursor else {})})
        seen += [d["id"] for d in body["data"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
        c.db("put", obj={"id": "a-inserted-before"})  # concurrent insert behind the cursor
    assert seen == ids and pages == 3


def test_put_is_upsert_with_versions(live: Live) -> None:
    c = live.client("dev:v")
    c.db("put", obj={"id": "x", "n": 1})
    first = c.db("get", id="x")
    c.db("put", obj={"id": "x", "n": 2})
    second = c.db("get", id="x")
    assert second["n"] == 2 and second["_version"] == 2
    assert second["_created"] == first["_created"] and second["_updated"] >= first["_updated"]


def test_bearer_session_on_invoke(live: Live) -> None:
    login = raw_login(live.url, "dev:carol")
    h = {"authorization": f"Bearer {login['sessionId']}"}
    r = httpx.post(live.url + "/invoke/db", json={"op": "put", "obj": {"id": "a"}}, headers=h)
    assert r.status_code == 200, r.text
    r = httpx.post(live.url + "/invoke/db", json={"op": "list"}, headers=h)
    assert [d["id"] for d in r.json()["data"]] == ["a"]
    # /invoke answers the code's own HTTP status.
    r = httpx.post(live.url + "/invoke/db", json={"op": "nope"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidArgument"


def test_signed_invoke_on_invoke_path(live: Live) -> None:
    c = live.client("dev:dave")
    assert c.credentials is not None
    r = signed_post(live.url, c.credentials, {"op": "list"}, path="/invoke/db")
    assert r.status_code == 200 and r.json() == {"data": [], "next": None}


# ------------------------------------------------------------------ refused credentials


def fc_error(r: httpx.Response) -> str:
    assert r.status_code in (400, 401, 403, 404), r.text
    return str(r.json()["ErrorCode"])


def test_forged_credentials_refused(live: Live) -> None:
    login = raw_login(live.url, "dev:eve")
    real = Credentials.from_wire(login["sts"])
    event = {"sid": login["sessionId"], "op": "list"}
    wrong_secret = Credentials(real.access_key_id, "x" * 43, real.security_token, real.expiration)
    assert fc_error(signed_post(live.url, wrong_secret, event)) == "SignatureNotMatch"
    other = raw_login(live.url, "dev:eve2")
    swapped = Credentials(real.access_key_id, real.access_key_secret, other["sts"]["SecurityToken"], 0)
    assert fc_error(signed_post(live.url, swapped, event)).startswith("InvalidAccessKeyId")
    tampered_token = real.security_token[:-2] + ("AA" if not real.security_token.endswith("AA") else "BB")
    forged = Credentials(real.access_key_id, real.access_key_secret, tampered_token, 0)
    assert fc_error(signed_post(live.url, forged, event)).startswith("InvalidSecurityToken")
    # A request altered after signing.
    body = orjson.dumps(event)
    h = signed_headers(real, "POST", FC_INVOKE, body)
    r = httpx.post(live.url + FC_INVOKE.replace("db", "session"), content=body, headers=h)
    assert fc_error(r) == "SignatureNotMatch"
    # Unsigned on the FC Invoke API path.
    r = httpx.post(live.url + FC_INVOKE, json=event)
    assert fc_error(r) == "MissingRequiredHeader"


def test_skewed_date_refused(live: Live) -> None:
    c = live.client("dev:skew")
    assert c.credentials is not None
    import time

    old = fc_signature.format_date(time.time() - 16 * 60)
    r = signed_post(live.url, c.credentials, {"op": "list"}, date=old)
    assert fc_error(r) == "RequestTimeTooSkewed"
    # The body repeats the server's clock (hosts such as Alipay's my.request may drop the
    # headers of an error answer, Date included): the client needs it to fix its clock.
    server_time = datetime.fromisoformat(r.json()["ServerTime"].replace("Z", "+00:00")).timestamp()
    assert abs(server_time - time.time()) < 5
    ok = fc_signature.format_date(time.time() - 14 * 60)
    assert signed_post(live.url, c.credentials, {"op": "list"}, date=ok).status_code == 200


def test_credentials_bound_to_their_session(live: Live) -> None:
    alice, bob = raw_login(live.url, "dev:alice"), raw_login(live.url, "dev:bob")
    alice_creds = Credentials.from_wire(alice["sts"])
    # Alice's credentials replayed with Bob's sid: refused, and nothing of Bob's leaks.
    r = signed_post(live.url, alice_creds, {"sid": bob["sessionId"], "op": "list"})
    assert r.status_code == 200 and r.headers["x-fc-error-type"] == "HandledInvocationError"
    assert r.json()["error"]["code"] == "PermissionDenied"
    # A second session of the same user is still another session.
    alice2 = raw_login(live.url, "dev:alice")
    r = signed_post(live.url, alice_creds, {"sid": alice2["sessionId"], "op": "list"})
    assert r.json()["error"]["code"] == "PermissionDenied"


def test_logout_revokes_everywhere(live: Live) -> None:
    c = live.client("dev:frank")
    creds, sid = c.credentials, c.session_id
    assert creds is not None and sid is not None
    c.db("put", obj={"id": "a"})
    c.logout()
    r = signed_post(live.url, creds, {"sid": sid, "op": "list"})
    assert fc_error(r) == "InvalidSecurityToken" and "revoked" in r.json()["ErrorMessage"]
    r = httpx.post(live.url + "/invoke/db", json={"op": "list"}, headers={"authorization": f"Bearer {sid}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthenticated"
    r = httpx.post(live.url + PROXY_SESSION, json={"op": "refresh", "sessionId": sid})
    assert r.status_code == 401


def test_refresh_gives_new_credentials(live: Live) -> None:
    c = live.client("dev:gina")
    old = c.credentials
    body = c.refresh()
    assert body["sessionId"] == c.session_id and body["user"]["isNew"] is False
    assert c.credentials is not None and old is not None
    assert c.credentials.access_key_id != old.access_key_id
    # Both stay valid until they expire: they are stateless.
    assert signed_post(live.url, old, {"op": "list"}).status_code == 200
    assert signed_post(live.url, c.credentials, {"op": "list"}).status_code == 200


def test_expired_credentials_refused(live: Live) -> None:
    c = live.client("dev:henry")
    assert c.credentials is not None
    live.core.clock = lambda: c.credentials.expiration + 1  # type: ignore[union-attr]
    r = signed_post(
        live.url, c.credentials, {"op": "list"}, date=fc_signature.format_date(c.credentials.expiration + 1)
    )
    assert fc_error(r) == "InvalidSecurityToken.Expired"


def test_client_refreshes_expired_credentials(live: Live) -> None:
    c = live.client("dev:ivy")
    assert c.credentials is not None
    c.credentials.expiration = 0  # as if 15 minutes went by
    assert c.db("list") == []
    assert c.credentials.expiration > 0


# ----------------------------------------------------------------------- bad input

BAD_INPUT = [
    # (path, auth?, body, status, code)
    ("/session", False, b"{not json", 400, "InvalidArgument"),
    ("/session", False, b"[1,2]", 400, "InvalidArgument"),
    ("/session", False, b"{}", 400, "InvalidArgument"),
    ("/session", False, b'{"authCode": 5}', 400, "InvalidArgument"),
    ("/session", False, b'{"authCode": "dev:x", "provider": "nope"}', 400, "InvalidArgument"),
    ("/session", False, b'{"authCode": "not-a-dev-code"}', 401, "Unauthenticated"),
    ("/session", False, b'{"authCode": "x", "provider": "alipay"}', 400, "InvalidArgument"),
    ("/session", False, b'{"op": "fly"}', 400, "InvalidArgument"),
    ("/session", False, b'{"op": "refresh"}', 400, "InvalidArgument"),
    ("/session", False, b'{"op": "refresh", "sessionId": "nope"}', 401, "Unauthenticated"),
    ("/session", False, b'{"authCode": "' + b"x" * 600 + b'"}', 400, "InvalidArgument"),
    ("/session", False, b"x" * (1024 * 1024 + 1), 413, "PayloadTooLarge"),
    ("/invoke/db", False, b'{"op": "list"}', 401, "Unauthenticated"),
    ("/invoke/db", False, b'{"op": "list", "sid": "forged"}', 401, "Unauthenticated"),
    ("/invoke/nope", True, b"{}", 404, "NotFound"),
    ("/invoke/db", True, b"{not json", 400, "InvalidArgument"),
    ("/invoke/db", True, b'"str"', 400, "InvalidArgument"),
    ("/invoke/db", True, b"{}", 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "launch"}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "put"}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "put", "obj": []}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "put", "obj": {"x": 1}}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "put", "obj": {"id": 7}}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "put", "obj": {"id": ""}}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "put", "obj": {"id": "a\\u0000b"}}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "put", "obj": {"id": "' + b"i" * 300 + b'"}}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "put", "obj": {"id": "a", "$where": 1}}', 400, "InvalidArgument"),
    (
        "/invoke/db",
        True,
        b'{"op": "put", "obj": {"id": "a", "d": ' + b"[" * 40 + b"]" * 40 + b"}}",
        413,
        "PayloadTooLarge",
    ),
    ("/invoke/db", True, b'{"op": "get"}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "list", "limit": 0}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "list", "limit": 1001}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "list", "limit": "10"}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "list", "cursor": "garbage"}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "list", "cursor": "c1.bm90IGpzb24"}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "list", "collection": "bad name!"}', 400, "InvalidArgument"),
    ("/invoke/db", True, b'{"op": "list", "sid": 5}', 403, "PermissionDenied"),
    ("/nowhere", False, b"{}", 404, "NotFound"),
    ("/2016-08-15/proxy/other-svc/session/", False, b'{"authCode": "dev:a"}', 404, "NotFound"),
]


@pytest.mark.parametrize(("path", "auth", "body", "status", "code"), BAD_INPUT)
def test_bad_input_gets_a_clear_error(
    live: Live, path: str, auth: bool, body: bytes, status: int, code: str
) -> None:
    headers = {"content-type": "application/json"}
    if auth:
        headers["authorization"] = "Bearer " + raw_login(live.url, "dev:bad")["sessionId"]
    r = httpx.post(live.url + path, content=body, headers=headers)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    # Limit errors add which limit, its value and where (data/validate.py); nothing else.
    assert (
        {"code", "message", "requestId", "serverTime"}
        <= set(err)
        <= {"code", "message", "requestId", "serverTime", "limit", "max", "path"}
    )
    assert err["requestId"] == r.headers["x-fc-request-id"]
    assert "Traceback" not in r.text


def test_method_not_allowed_and_health(live: Live) -> None:
    r = httpx.get(live.url + "/session")
    assert r.status_code == 405 and r.json()["error"]["code"] == "MethodNotAllowed"
    assert httpx.get(live.url + "/healthz").json() == {"data": {"ok": True}}


def test_fc_path_function_errors_are_handled_invocation_errors(live: Live) -> None:
    c = live.client("dev:jo")
    with pytest.raises(ClientError) as e:
        c.invoke("db", {"op": "launch"})
    assert e.value.code == "InvalidArgument" and e.value.status == 200
    assert c.credentials is not None
    # The body carries FC's fields (errorMessage, errorType = our code) beside the envelope.
    r = signed_post(live.url, c.credentials, {"sid": c.session_id, "op": "launch"})
    assert r.status_code == 200 and r.headers["x-fc-error-type"] == "HandledInvocationError"
    body = r.json()
    message = body["error"]["message"]
    assert "launch" in message
    assert body["error"].pop("serverTime").endswith("Z")
    assert body == {
        "error": {"code": "InvalidArgument", "message": message, "requestId": r.headers["x-fc-request-id"]},
        "errorMessage": message,
        "errorType": "InvalidArgument",
    }
    # Off FC's Invoke API path the envelope stays as it was.
    r = httpx.post(
        live.url + "/invoke/db", json={"op": "launch"}, headers={"authorization": f"Bearer {c.session_id}"}
    )
    assert r.status_code == 400 and set(r.json()) == {"error"}
    path = f"/2016-08-15/services/{SERVICE}/functions/nope/invocations"
    assert fc_error(signed_post(live.url, c.credentials, {}, path=path)) == "FunctionNotFound"
    path = "/2016-08-15/services/other/functions/db/invocations"
    assert fc_error(signed_post(live.url, c.credentials, {}, path=path)) == "ServiceNotFound"


def test_oversize_body_without_content_length(live: Live) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b" " * 16384

    r = httpx.post(live.url + "/session", content=chunks())
    assert r.status_code == 413 and r.json()["error"]["code"] == "PayloadTooLarge"


def test_client_with_wrong_service(live: Live) -> None:
    c = Client(live.url, "wrong")
    live.clients.append(c)
    with pytest.raises(ClientError) as e:
        c.login(auth_code="dev:x")
    assert e.value.code == "NotFound"


def test_unexpected_errors_are_internal_without_traceback(
    make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from minibase.app import create_app
    from minibase.core import Minibase
    from tests.support.live import run_uvicorn

    config = make_config()
    core = Minibase.from_config(config)

    async def broken(*args: Any) -> bytes:
        raise RuntimeError("disk on fire at /secret/path")

    core.store.get_document = broken  # type: ignore[method-assign]
    with run_uvicorn(create_app(config, core=core)) as url:
        login = raw_login(url, "dev:x")
        h = {"authorization": f"Bearer {login['sessionId']}"}
        r = httpx.post(url + "/invoke/db", json={"op": "get", "id": "a"}, headers=h)
        assert r.status_code == 500
        err = r.json()["error"]
        assert err["code"] == "Internal" and "fire" not in r.text and "Traceback" not in r.text
        r2 = signed_post(url, Credentials.from_wire(login["sts"]), {"op": "get", "id": "a"})
        assert r2.status_code == 200 and r2.headers["x-fc-error-type"] == "HandledInvocationError"
        assert r2.json()["error"]["code"] == r2.json()["errorType"] == "Internal"
        assert "fire" not in r2.text
    # The server log has the traceback, findable by the request id.
    logged = [rec for rec in caplog.records if err["requestId"] in rec.getMessage()]
    assert logged and logged[0].exc_info is not None
