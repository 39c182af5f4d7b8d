"""Security events reach the audit log as JSON lines, without secrets."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.support.config import Live
from tests.support.http import FC_INVOKE, raw_login, signed_post


def events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "minibase.audit"]


def test_security_events_are_logged_without_secrets(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="minibase.audit")
    alice = raw_login(live.url, "dev:alice")
    bob = raw_login(live.url, "dev:bob")
    httpx.post(live.url + "/session", json={"authCode": "nope"})  # login failure
    httpx.post(live.url + "/session", json={"op": "refresh", "sessionId": alice["sessionId"]})
    from minibase.client import Credentials

    creds = Credentials.from_wire(alice["sts"])
    signed_post(live.url, creds, {"sid": bob["sessionId"], "op": "list"})  # permission denied
    wrong = Credentials(creds.access_key_id, "x" * 43, creds.security_token, creds.expiration)
    signed_post(live.url, wrong, {"op": "list"})  # bad signature
    httpx.post(live.url + "/session", json={"op": "logout", "sessionId": alice["sessionId"]})
    got = events(caplog)
    kinds = [e["event"] for e in got]
    for kind in (
        "login.success",
        "login.failure",
        "refresh.success",
        "permission.denied",
        "gateway.refused",
        "logout.success",
    ):
        assert kind in kinds, kinds
    success = next(e for e in got if e["event"] == "login.success")
    assert success["uid"] == alice["user"]["uid"] and success["provider"] == "dev" and success["requestId"]
    failure = next(e for e in got if e["event"] == "login.failure")
    assert failure["reason"] == "Unauthenticated"
    assert next(e for e in got if e["event"] == "gateway.refused")["reason"] == "SignatureNotMatch"
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (alice["sessionId"], bob["sessionId"], creds.access_key_secret, creds.security_token):
        assert secret not in text
    assert FC_INVOKE  # the FC path is the one exercised
