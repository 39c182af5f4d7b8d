"""``auth.credentials = "sts"``: login/refresh credentials from STS AssumeRole, over real HTTP,
against the fake STS of tests/fakes/sts_server.py (which verifies the SDK's V3 signature)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from minibase.app import create_app
from minibase.auth.sts import MAX_POLICY, build_policy, role_session_name
from minibase.client import Credentials as ClientCredentials
from minibase.client import signed_headers
from minibase.config import Config, StsConfig
from minibase.core import Minibase
from minibase.errors import ConfigError
from tests.fakes.server import free_port, serve_app
from tests.fakes.sts_server import StsState, canonical_request, make_sts_server, sign_v3
from tests.support.config import SERVICE, base_raw
from tests.support.live import run_uvicorn
from tests.support.sts import ACCOUNT, AK, ENV, ROLE, SK, TOKEN

SESSION_NAME = re.compile(r"^mb-s_[a-z2-7]{24}$")


def sts_raw(endpoint: str, **sts: Any) -> dict[str, Any]:
    table = {"role_arn": ROLE, "endpoint": endpoint, "region": "cn-hangzhou", **sts}
    return base_raw(auth={"dev": {"enabled": True}, "credentials": "sts", "sts": table})


@pytest.fixture
def fake_sts() -> Iterator[tuple[str, StsState]]:
    app = make_sts_server({AK: SK}, roles={ROLE}, tokens={AK: TOKEN})
    with serve_app(app) as url:
        yield url, app.state.fake


@contextmanager
def serve(config: Config) -> Iterator[httpx.Client]:
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url, httpx.Client(base_url=url, timeout=15) as http:
        yield http


@pytest.fixture
def sts_server(
    make_config: Callable[..., Config], fake_sts: tuple[str, StsState]
) -> Iterator[tuple[httpx.Client, StsState]]:
    url, state = fake_sts
    with serve(make_config(sts_raw(url), ENV)) as http:
        yield http, state


def login(http: httpx.Client, name: str = "alice") -> dict[str, Any]:
    resp = http.post("/session", json={"authCode": f"dev:{name}"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def wire(issued: Any) -> dict[str, str]:
    return {
        "AccessKeyId": issued.access_key_id,
        "AccessKeySecret": issued.access_key_secret,
        "SecurityToken": issued.security_token,
        "Expiration": issued.expiration,
    }


# ------------------------------------------------------------------- login / refresh


def test_login_returns_the_credentials_sts_issued(sts_server: tuple[httpx.Client, StsState]) -> None:
    http, state = sts_server
    body = login(http)
    assert len(state.issued) == 1
    assert body["sts"] == wire(state.issued[0])
    assert body["sts"]["AccessKeyId"].startswith("STS.")
    params = state.params[0]
    assert params["RoleArn"] == ROLE
    assert params["DurationSeconds"] == "900"  # auth.credentials_ttl's default
    assert SESSION_NAME.match(params["RoleSessionName"])
    # The SDK signed with minibase's own (runtime) STS credentials.
    headers = state.requests[0].headers
    assert headers["x-acs-security-token"] == TOKEN
    assert headers["authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={AK},")


def test_inline_policy_allows_only_invoking_this_services_functions(
    sts_server: tuple[httpx.Client, StsState],
) -> None:
    http, state = sts_server
    login(http)
    policy = state.params[0]["Policy"]
    assert len(policy) <= MAX_POLICY
    assert json.loads(policy) == {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["fc:InvokeFunction"],
                "Resource": [
                    f"acs:fc:cn-hangzhou:{ACCOUNT}:services/{SERVICE}/functions/*",
                    f"acs:fc:cn-hangzhou:{ACCOUNT}:services/{SERVICE}.*/functions/*",
                ],
            }
        ],
    }


def test_refresh_gets_new_credentials_under_the_same_session_name(
    sts_server: tuple[httpx.Client, StsState],
) -> None:
    http, state = sts_server
    first = login(http)
    resp = http.post("/session", json={"op": "refresh", "sessionId": first["sessionId"]})
    assert resp.status_code == 200, resp.text
    second = resp.json()
    assert len(state.issued) == 2
    assert second["sts"] == wire(state.issued[1]) != first["sts"]
    assert second["sessionId"] == first["sessionId"]
    names = [p["RoleSessionName"] for p in state.params]
    assert names[0] == names[1]
    # Another login is another session, named apart.
    login(http, "bob")
    assert state.params[2]["RoleSessionName"] != names[0]


def test_duration_follows_config(make_config: Callable[..., Config], fake_sts: tuple[str, StsState]) -> None:
    url, state = fake_sts
    raw = sts_raw(url)
    raw["auth"]["credentials_ttl"] = "30m"
    with serve(make_config(raw, ENV)) as http:
        login(http)
    raw["auth"]["sts"]["duration"] = "1h"
    with serve(make_config(raw, ENV)) as http:
        body = login(http)
    assert [p["DurationSeconds"] for p in state.params] == ["1800", "3600"]
    expires = datetime.fromisoformat(body["sts"]["Expiration"].replace("Z", "+00:00"))
    assert abs((expires - datetime.now(UTC)).total_seconds() - 3600) < 60


# -------------------------------------------------------------- invocations in sts mode


def test_bearer_and_sid_invocations_work(sts_server: tuple[httpx.Client, StsState]) -> None:
    http, _ = sts_server
    sid = login(http)["sessionId"]
    put = {"op": "put", "obj": {"id": "milk", "done": False}}
    resp = http.post("/invoke/db", json=put, headers={"authorization": f"Bearer {sid}"})
    assert resp.status_code == 200, resp.text
    # The template's way (and FC's Invoke path once FC checked the signature): sid in the event.
    resp = http.post("/invoke/db", json={"sid": sid, "op": "get", "id": "milk"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["done"] is False


def test_fc_signed_requests_are_refused_with_a_clear_message(
    sts_server: tuple[httpx.Client, StsState],
) -> None:
    http, _ = sts_server
    body = login(http)
    creds = ClientCredentials.from_wire(body["sts"])
    event = json.dumps({"sid": body["sessionId"], "op": "list"}).encode()

    path = "/invoke/db"
    resp = http.post(path, content=event, headers=signed_headers(creds, "POST", path, event))
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["code"] == "Unauthenticated"
    assert "Bearer" in err["message"] and "Function Compute" in err["message"]

    path = f"/2016-08-15/services/{SERVICE}/functions/db/invocations"
    resp = http.post(path, content=event, headers=signed_headers(creds, "POST", path, event))
    assert resp.status_code == 403
    assert resp.json()["ErrorCode"] == "InvalidSecurityToken"
    assert "Bearer" in resp.json()["ErrorMessage"]


def test_a_revoked_session_is_refused_and_never_reaches_sts(
    sts_server: tuple[httpx.Client, StsState],
) -> None:
    http, state = sts_server
    sid = login(http)["sessionId"]
    assert http.post("/session", json={"op": "logout", "sessionId": sid}).status_code == 200
    for resp in (
        http.post("/invoke/db", json={"op": "list"}, headers={"authorization": f"Bearer {sid}"}),
        http.post("/invoke/db", json={"sid": sid, "op": "list"}),
        http.post("/session", json={"op": "refresh", "sessionId": sid}),
    ):
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == "Unauthenticated"
        assert "revoked" in resp.json()["error"]["message"]
    assert len(state.requests) == 1  # only the login asked STS


# ------------------------------------------------------------------------ STS failures


def _refused(http: httpx.Client) -> dict[str, Any]:
    resp = http.post("/session", json={"authCode": "dev:alice"})
    assert resp.status_code == 502, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert err["code"] == "ProviderError"
    assert "Traceback" not in resp.text
    return err


@pytest.mark.parametrize(
    ("env", "code"),
    [
        ({**ENV, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({**ENV, "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tUnknown"}, "InvalidAccessKeyId.NotFound"),
        ({**ENV, "ALIBABA_CLOUD_SECURITY_TOKEN": "CAIS-stale"}, "InvalidSecurityToken.MismatchWithAccessKey"),
    ],
)
def test_sts_refusing_our_signature_is_a_clear_provider_error(
    make_config: Callable[..., Config], fake_sts: tuple[str, StsState], env: dict[str, str], code: str
) -> None:
    url, state = fake_sts
    with serve(make_config(sts_raw(url), env)) as http:
        err = _refused(http)
        assert err["message"] == f"STS refused AssumeRole ({code}); check [auth.sts] and the function's role"
        assert SK not in json.dumps(err)
        # No half-made session: a refused login leaves nothing a later refresh could use.
        assert state.issued == []


def test_sts_denying_the_role_is_a_provider_error(
    make_config: Callable[..., Config], fake_sts: tuple[str, StsState]
) -> None:
    url, state = fake_sts
    state.denied_roles.add(ROLE)
    with serve(make_config(sts_raw(url), ENV)) as http:
        assert "(NoPermission)" in _refused(http)["message"]
    other = f"acs:ram::{ACCOUNT}:role/missing"
    with serve(make_config(sts_raw(url, role_arn=other), ENV)) as http:
        assert "(EntityNotExist.Role)" in _refused(http)["message"]


def test_sts_server_error(make_config: Callable[..., Config], fake_sts: tuple[str, StsState]) -> None:
    url, state = fake_sts
    state.server_error = True
    with serve(make_config(sts_raw(url), ENV)) as http:
        assert _refused(http)["message"] == "STS failed (InternalError); try again"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>gateway</html>", "STS answered something that is not an AssumeRole response"),
        (b'{"RequestId": "x", "Credentials": {"AccessKeyId": "STS.x"}}', "STS answered without credentials"),
        (
            b'{"Credentials": {"AccessKeyId": "a", "AccessKeySecret": "b", "SecurityToken": "c", "Expiration": "soon"}}',
            "STS answered an Expiration that is not an RFC 3339 time",
        ),
    ],
)
def test_sts_answering_nonsense(
    make_config: Callable[..., Config], fake_sts: tuple[str, StsState], body: bytes, message: str
) -> None:
    url, state = fake_sts
    state.bogus_body = body
    with serve(make_config(sts_raw(url), ENV)) as http:
        assert _refused(http)["message"] == message


def test_sts_unreachable(make_config: Callable[..., Config]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with serve(make_config(sts_raw(endpoint), ENV)) as http:
        assert _refused(http)["message"] == f"STS is unreachable at {endpoint}"


def test_sts_too_slow(make_config: Callable[..., Config], fake_sts: tuple[str, StsState]) -> None:
    url, state = fake_sts
    state.slow_seconds = 5
    with serve(make_config(sts_raw(url, timeout="1s"), ENV)) as http:
        t0 = time.monotonic()
        assert _refused(http)["message"] == "STS did not answer within 1 s"
        assert time.monotonic() - t0 < 3


# ------------------------------------------------------------------------ the fake itself


def _signed_call(
    url: str, *, secret: str = SK, nonce: str, date: datetime | None = None, tamper: bool = False
) -> httpx.Response:
    query = [("DurationSeconds", "900"), ("RoleArn", ROLE), ("RoleSessionName", "mb-test")]
    headers = {
        "host": url.split("://", 1)[1],
        "x-acs-action": "AssumeRole",
        "x-acs-version": "2015-04-01",
        "x-acs-date": (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
        "x-acs-accesskey-id": AK,
        "x-acs-security-token": TOKEN,
    }
    signed = sorted(headers)
    sig = sign_v3(secret, canonical_request("POST", "/", query, headers, signed, b""))
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={';'.join(signed)},Signature={sig}"
    )
    if tamper:
        query[0] = ("DurationSeconds", "3600")
    return httpx.post(f"{url}/?{urlencode(query)}", headers=headers)


def test_the_fake_verifies_signatures_timestamps_and_nonces(fake_sts: tuple[str, StsState]) -> None:
    url, _ = fake_sts
    ok = _signed_call(url, nonce="n1")
    assert ok.status_code == 200, ok.text
    assert set(ok.json()) == {"RequestId", "AssumedRoleUser", "Credentials"}
    cases = [
        (_signed_call(url, nonce="n1"), 400, "SignatureNonceUsed"),
        (_signed_call(url, nonce="n2", secret="wrong"), 400, "SignatureDoesNotMatch"),
        (_signed_call(url, nonce="n3", tamper=True), 400, "SignatureDoesNotMatch"),
        (
            _signed_call(url, nonce="n4", date=datetime.now(UTC) - timedelta(minutes=20)),
            400,
            "InvalidTimeStamp.Expired",
        ),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status
        assert set(resp.json()) >= {"RequestId", "HostId", "Code", "Message"}
        assert resp.json()["Code"] == code


# ----------------------------------------------------------------------------- config


def test_role_session_name_fits_sts_rules() -> None:
    assert role_session_name("s_abcdefghijklmnopqrstuvwx") == "mb-s_abcdefghijklmnopqrstuvwx"
    name = role_session_name("weird/ref with spaces" * 10)
    assert re.match(r"^[A-Za-z0-9.@_-]{2,64}$", name)


def _sts(**kw: Any) -> StsConfig:
    return StsConfig(role_arn=ROLE, access_key_id=AK, access_key_secret=SK, **kw)


def test_fc3_policy_names_the_apps_functions() -> None:
    policy = json.loads(
        build_policy(_sts(fc_version="3.0", region="cn-shanghai"), SERVICE, ["files", "db", "x"])
    )
    resources = policy["Statement"][0]["Resource"]
    assert resources == [f"acs:fc:cn-shanghai:*:functions/{n}" for n in ("db", "files", "x")]
    listed = json.loads(build_policy(_sts(fc_version="3.0", functions=("todo-*",)), SERVICE, ["db"]))
    assert listed["Statement"][0]["Resource"] == ["acs:fc:*:*:functions/todo-*"]


def test_a_policy_over_2048_characters_is_a_config_error() -> None:
    names = [f"function-with-a-long-name-{i:03d}" for i in range(60)]
    with pytest.raises(ConfigError) as e:
        build_policy(_sts(fc_version="3.0"), SERVICE, names)
    assert e.value.key == "auth.sts.functions"
    assert "2048" in str(e.value)


def test_sts_config_reads_its_keys(make_config: Callable[..., Config]) -> None:
    raw = sts_raw("http://127.0.0.1:9", role_arn="env:ROLE_ARN")
    config = make_config(raw, {**ENV, "ROLE_ARN": ROLE})
    sts = config.auth.sts
    assert sts is not None
    assert (sts.role_arn, sts.endpoint, sts.account_id, sts.duration) == (
        ROLE,
        "http://127.0.0.1:9",
        ACCOUNT,
        900,
    )
    assert (sts.access_key_id, sts.security_token) == (AK, TOKEN)
    assert SK not in repr(sts) and TOKEN not in repr(sts)
    default = make_config(
        base_raw(auth={"dev": {"enabled": True}, "credentials": "sts", "sts": {"role_arn": ROLE}}), ENV
    )
    assert default.auth.sts is not None and default.auth.sts.endpoint == "https://sts.aliyuncs.com"
    # Local mode ignores the section and needs no cloud credentials.
    local = make_config(base_raw(auth={"dev": {"enabled": True}, "sts": {"role_arn": ROLE}}), {})
    assert local.auth.credentials == "local" and local.auth.sts is None


@pytest.mark.parametrize(
    ("sts", "env", "key", "words"),
    [
        ({"endpoint": "http://127.0.0.1:9"}, ENV, "auth.sts.role_arn", "required"),
        ({"role_arn": "arn:aws:iam::1:role/x"}, ENV, "auth.sts.role_arn", "not a RAM role ARN"),
        ({"role_arn": ROLE, "duration": "10m"}, ENV, "auth.sts.duration", "900"),
        ({"role_arn": ROLE, "duration": "2h"}, ENV, "auth.sts.duration", "3600"),
        ({"role_arn": ROLE, "endpoint": "http://sts.example.com"}, ENV, "auth.sts.endpoint", "loopback"),
        ({"role_arn": ROLE, "endpoint": "ftp://x"}, ENV, "auth.sts.endpoint", "expected"),
        ({"role_arn": ROLE, "fc_version": "4"}, ENV, "auth.sts.fc_version", "3.0"),
        ({"role_arn": ROLE, "functions": []}, ENV, "auth.sts.functions", "list"),
        ({"role_arn": ROLE, "rolearn": "x"}, ENV, "auth.sts.rolearn", "unknown key"),
        ({"role_arn": "env:NOPE"}, ENV, "auth.sts.role_arn", "NOPE is not set"),
        ({"role_arn": ROLE}, {}, "auth.sts", "ALIBABA_CLOUD_ACCESS_KEY_ID"),
    ],
)
def test_config_errors_name_the_key(
    make_config: Callable[..., Config], sts: dict[str, Any], env: dict[str, str], key: str, words: str
) -> None:
    raw = base_raw(auth={"dev": {"enabled": True}, "credentials": "sts", "sts": sts})
    with pytest.raises(ConfigError) as e:
        make_config(raw, env)
    assert e.value.key == key
    assert words in str(e.value)


def test_a_too_long_policy_stops_the_server_at_start(make_config: Callable[..., Config]) -> None:
    names = [f"function-with-a-long-name-{i:03d}" for i in range(60)]
    config = make_config(sts_raw("http://127.0.0.1:9", fc_version="3.0", functions=names), ENV)
    with pytest.raises(ConfigError) as e:
        Minibase.from_config(config)
    assert e.value.key == "auth.sts.functions"


def test_sts_mode_without_the_sdk_stops_at_start(
    make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    import minibase.auth.sts as sts_module

    config = make_config(sts_raw("http://127.0.0.1:9"), ENV)
    real = sts_module.importlib.util.find_spec
    monkeypatch.setattr(
        sts_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "alibabacloud_sts20150401" else real(name, *a),
    )
    with pytest.raises(ConfigError) as e:
        Minibase.from_config(config)
    assert e.value.key == "auth.credentials" and "minibase[sts]" in str(e.value)


def test_fc_invoke_api_in_sts_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_sts: tuple[str, StsState]
) -> None:
    """On FC the platform verified the STS signature; the event's sid names the session."""
    from minibase.runtime import fc

    url, state = fake_sts
    config = tmp_path / "minibase.toml"
    config.write_text(
        f'[app]\nservice = "{SERVICE}"\ndefault_collection = "todo_list"\n'
        f'[auth]\ncredentials = "sts"\n[auth.dev]\nenabled = true\n'
        f'[auth.sts]\nrole_arn = "{ROLE}"\nendpoint = "{url}"\n'
    )
    monkeypatch.setenv("MINIBASE_CONFIG", str(config))
    monkeypatch.setenv("MINIBASE_DATA", str(tmp_path / "data"))
    for name, value in ENV.items():  # what the FC runtime sets for a service with a role
        monkeypatch.setenv(name, value)

    def event(function: str, payload: dict[str, Any]) -> Any:
        ctx = SimpleNamespace(function=SimpleNamespace(name=function), request_id="r1")
        return json.loads(fc.event_handler(json.dumps(payload).encode(), ctx))

    fc.reset()
    try:
        login = event("session", {"authCode": "dev:alice"})
        assert login["sts"] == wire(state.issued[0])
        sid = login["sessionId"]
        assert event("db", {"sid": sid, "op": "put", "obj": {"id": "a"}}) == {"data": None}
        assert event("db", {"sid": sid, "op": "get", "id": "a"})["data"]["id"] == "a"
        assert event("session", {"op": "logout", "sessionId": sid}) == {"data": None}
        assert event("db", {"sid": sid, "op": "get", "id": "a"})["error"]["code"] == "Unauthenticated"
    finally:
        fc.reset()


def test_fc_context_credentials_sign_assume_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_sts: tuple[str, StsState]
) -> None:
    """The role credentials FC passes with each invocation replace the ones read from the
    environment at start (temporary: a long-lived instance may outlive them)."""
    from minibase.runtime import fc

    url, state = fake_sts
    config = tmp_path / "minibase.toml"
    config.write_text(
        f'[app]\nservice = "{SERVICE}"\n[auth]\ncredentials = "sts"\n[auth.dev]\nenabled = true\n'
        f'[auth.sts]\nrole_arn = "{ROLE}"\nendpoint = "{url}"\n'
    )
    monkeypatch.setenv("MINIBASE_CONFIG", str(config))
    monkeypatch.setenv("MINIBASE_DATA", str(tmp_path / "data"))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    def login_event(context: Any) -> dict[str, Any]:
        body = fc.http_handler(
            {
                "version": "v1",
                "rawPath": "/session",
                "body": json.dumps({"authCode": "dev:alice"}),
                "isBase64Encoded": False,
                "headers": {"content-type": "application/json"},
                "queryParameters": {},
                "requestContext": {"http": {"method": "POST", "path": "/session"}, "requestId": "r"},
            },
            context,
        )
        result: dict[str, Any] = json.loads(body["body"])
        return result

    fc.reset()
    try:
        assert "sts" in login_event(None)
        state.keys, state.tokens = {"STS.new": "new-secret-0123456789"}, {"STS.new": "new-token"}
        assert login_event(None)["error"]["code"] == "ProviderError"  # the start-up ones expired
        creds = SimpleNamespace(access_key_id="STS.new", access_key_secret="new-secret-0123456789")
        creds.security_token = "new-token"
        assert "sts" in login_event(SimpleNamespace(credentials=creds, request_id="r2"))
        assert state.requests[-1].headers["authorization"].startswith("ACS3-HMAC-SHA256 Credential=STS.new,")
    finally:
        fc.reset()
