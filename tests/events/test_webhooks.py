"""Webhooks over real HTTP: Alipay and WeChat Pay notifications signed by local fakes,
verified, deduplicated in the database, answered as each platform expects; forged,
tampered, stale and replayed ones refused or acknowledged without running twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from minibase.app import create_app
from minibase.config import Config
from minibase.core import Minibase
from tests.fakes.payments import AlipayNotifier, WechatPayNotifier, _key
from tests.support.events import handled
from tests.support.live import run_uvicorn

MODULE = """
import json, asyncio, os
from minibase import function
from minibase.events import webhook

LOG = {log!r}

def record(line):
    with open(LOG, "a") as f:
        f.write(line + "\\n")

@webhook("payNotify", verify="alipay")
async def pay_notify(ctx, event):
    if event.payload.get("out_trade_no") == "explode" and not os.path.exists(LOG + ".fixed"):
        raise RuntimeError("the order system is down")
    if event.payload.get("out_trade_no") == "slow":
        await asyncio.sleep(0.5)
    assert ctx.uid is None and ctx.caller is None
    record(json.dumps({"id": event.id, "trade": event.payload["out_trade_no"], "amount": event.payload["total_amount"],
                       "raw": len(event.body), "ctype": event.headers.get("content-type")}))

@webhook("wxNotify", verify="wechatpay")
def wx_notify(ctx, event):
    record(json.dumps({"id": event.id, "trade": event.payload["out_trade_no"], "state": event.payload["trade_state"],
                       "event_type": event.notification["event_type"]}))

@webhook("github")
def github(ctx, event):
    event.require_secret("s3cret-value", header="X-Hub-Secret")
    record(json.dumps({"payload": event.payload, "q": dict(event.query)}))
    return {"ok": True}
"""


@pytest.fixture
def server(events_config: Callable[..., Config]) -> Iterator[tuple[str, Minibase]]:
    config = events_config(MODULE.replace("{log!r}", "'{log}'"))
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        yield url, core


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + path, content=body, headers=headers)


def test_alipay_good_notification_is_handled_once(
    server: tuple[str, Minibase], alipay: AlipayNotifier, tmp_path: Path
) -> None:
    url, _ = server
    params, body = alipay.body(out_trade_no="order-1")
    r = post(url, "/webhooks/payNotify", body, FORM)
    assert (r.status_code, r.text) == (200, "success")
    assert r.headers["content-type"].startswith("text/plain")
    lines = [json.loads(x) for x in handled(tmp_path)]
    assert lines == [
        {
            "id": params["notify_id"],
            "trade": "order-1",
            "amount": "20.00",
            "raw": len(body),
            "ctype": FORM["Content-Type"],
        }
    ]
    # Alipay resends until it reads "success" (and sometimes after): acknowledged, not rerun.
    for _ in range(2):
        r = post(url, "/webhooks/payNotify", body, FORM)
        assert (r.status_code, r.text) == (200, "success")
    assert len(handled(tmp_path)) == 1


def test_alipay_forged_tampered_and_foreign_notifications_are_refused(
    server: tuple[str, Minibase], alipay: AlipayNotifier, tmp_path: Path
) -> None:
    url, _ = server
    forged = alipay.sign(alipay.params(out_trade_no="forged"), key=_key())  # not Alipay's key
    tampered = alipay.sign(alipay.params(out_trade_no="t"))
    tampered["total_amount"] = "0.01"  # changed after signing
    foreign = alipay.sign(alipay.params(app_id="2021000000009999"))  # signed, but another app
    unsigned = alipay.params()
    rsa1 = alipay.sign(alipay.params())
    rsa1["sign_type"] = "RSA"
    for params in (forged, tampered, foreign, unsigned, rsa1):
        r = post(url, "/webhooks/payNotify", urlencode(params).encode(), FORM)
        assert (r.status_code, r.text) == (200, "fail"), params
    for junk in (b"", b"\xff\xfe", b"a=1&a=2", json.dumps({"sign": "x"}).encode()):
        r = post(url, "/webhooks/payNotify", junk, FORM)
        assert (r.status_code, r.text) == (200, "fail"), junk
    assert handled(tmp_path) == []


def test_alipay_failed_handler_answers_fail_and_the_retry_runs_it(
    server: tuple[str, Minibase], alipay: AlipayNotifier, tmp_path: Path
) -> None:
    url, _ = server
    _, body = alipay.body(out_trade_no="explode")
    r = post(url, "/webhooks/payNotify", body, FORM)
    assert (r.status_code, r.text) == (200, "fail")  # so Alipay retries
    assert handled(tmp_path) == []
    (tmp_path / "handled.log.fixed").write_text("")
    r = post(url, "/webhooks/payNotify", body, FORM)
    assert (r.status_code, r.text) == (200, "success")
    assert len(handled(tmp_path)) == 1


def test_alipay_concurrent_duplicates_run_the_handler_once(
    server: tuple[str, Minibase], alipay: AlipayNotifier, tmp_path: Path
) -> None:
    url, _ = server
    _, body = alipay.body(out_trade_no="slow")

    async def both() -> list[str]:
        async with httpx.AsyncClient() as c:
            rs = await asyncio.gather(
                *(c.post(url + "/webhooks/payNotify", content=body, headers=FORM) for _ in range(3))
            )
            return sorted(r.text for r in rs)

    answers = asyncio.run(both())
    assert "success" in answers and set(answers) <= {"success", "fail"}
    assert len(handled(tmp_path)) == 1
    r = post(url, "/webhooks/payNotify", body, FORM)  # the retries of those answered "fail"
    assert r.text == "success"
    assert len(handled(tmp_path)) == 1


def test_wechatpay_good_notification_is_decrypted_and_handled_once(
    server: tuple[str, Minibase], wechatpay: WechatPayNotifier, tmp_path: Path
) -> None:
    url, _ = server
    headers, body = wechatpay.notification(wechatpay.transaction(out_trade_no="wx-1"), id="EV-1")
    r = post(url, "/webhooks/wxNotify", body, headers)
    assert r.status_code == 204 and r.content == b""
    assert [json.loads(x) for x in handled(tmp_path)] == [
        {"id": "EV-1", "trade": "wx-1", "state": "SUCCESS", "event_type": "TRANSACTION.SUCCESS"}
    ]
    # A replay (the same notification, freshly signed: WeChat Pay resends with new headers).
    headers2, body2 = wechatpay.notification(wechatpay.transaction(out_trade_no="wx-1"), id="EV-1")
    assert post(url, "/webhooks/wxNotify", body2, headers2).status_code == 204
    assert post(url, "/webhooks/wxNotify", body, headers).status_code == 204
    assert len(handled(tmp_path)) == 1


def _fail(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == "FAIL" and isinstance(body["message"], str) and body["message"]


def test_wechatpay_forged_tampered_stale_and_foreign_notifications_are_refused(
    server: tuple[str, Minibase], wechatpay: WechatPayNotifier, tmp_path: Path
) -> None:
    url, _ = server
    cases: list[tuple[str, dict[str, str], bytes]] = []
    h, b = wechatpay.notification(key=_key())
    cases.append(("forged signature", h, b))
    h, b = wechatpay.notification()
    cases.append(("tampered body", h, b.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESX")))
    h, b = wechatpay.notification(timestamp=int(time.time()) - 310)
    cases.append(("stale", h, b))
    h, b = wechatpay.notification(timestamp=int(time.time()) + 310)
    cases.append(("from the future", h, b))
    h, b = wechatpay.notification(serial="PUB_KEY_ID_UNKNOWN")
    cases.append(("unknown serial", h, b))
    h, b = wechatpay.notification(api_v3_key="k" * 32)
    cases.append(("another APIv3 key", h, b))
    h, b = wechatpay.notification(wechatpay.transaction(mchid="1900000000"))
    cases.append(("another merchant", h, b))
    h, b = wechatpay.notification()
    cases.append(("no signature", {k: v for k, v in h.items() if k != "Wechatpay-Signature"}, b))
    for what, headers, body in cases:
        r = post(url, "/webhooks/wxNotify", body, headers)
        assert r.status_code in (400, 401), what
        _fail(r, r.status_code)
    assert handled(tmp_path) == []


def test_wechatpay_platform_certificate_by_serial(
    tmp_path: Path, events_config: Callable[..., Config], wechatpay: WechatPayNotifier
) -> None:
    serial = wechatpay.write_certificate(tmp_path / "wechatpay_cert.pem")
    config = events_config(
        MODULE.replace("{log!r}", "'{log}'"), platform_keys={serial: str(tmp_path / "wechatpay_cert.pem")}
    )
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        h, b = wechatpay.notification(serial=serial)
        assert post(url, "/webhooks/wxNotify", b, h).status_code == 204
        h, b = wechatpay.notification()  # the public key's serial is not configured here
        _fail(post(url, "/webhooks/wxNotify", b, h), 401)
    assert len(handled(tmp_path)) == 1


def test_plain_webhook_with_a_shared_secret(server: tuple[str, Minibase], tmp_path: Path) -> None:
    url, _ = server
    r = httpx.post(
        url + "/webhooks/github?x=1", json={"ref": "main"}, headers={"X-Hub-Secret": "s3cret-value"}
    )
    assert r.status_code == 200 and r.json() == {"data": {"ok": True}}
    assert [json.loads(x) for x in handled(tmp_path)] == [{"payload": {"ref": "main"}, "q": {"x": "1"}}]
    for secret in ("wrong", "", "s3cret-valu", "s3cret-value2"):
        r = httpx.post(url + "/webhooks/github", json={}, headers={"X-Hub-Secret": secret})
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthenticated"
    r = httpx.post(url + "/webhooks/github", json={})
    assert r.status_code == 401
    assert len(handled(tmp_path)) == 1


def test_unknown_webhook_and_other_methods(server: tuple[str, Minibase]) -> None:
    url, _ = server
    r = httpx.post(url + "/webhooks/nope", content=b"x")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"
    assert httpx.get(url + "/webhooks/payNotify").status_code == 405


def test_through_the_fc_http_trigger_handler(
    tmp_path: Path, alipay: AlipayNotifier, wechatpay: WechatPayNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FC's HTTP trigger handler feeds the same app: the notification is verified and
    answered ``success`` there too (SQLite; the path under test is the FC adapter)."""
    import orjson

    from minibase.runtime import fc
    from tests.support.events import APP_ID, write_module
    from tests.support.fc import CONTEXT, http_event

    key = alipay.write_public_key(tmp_path / "alipay_public.pem")
    wkey = wechatpay.write_public_key(tmp_path / "wechatpay_public.pem")
    module = write_module(tmp_path, MODULE.replace("{log!r}", repr(str(tmp_path / "handled.log"))))
    (tmp_path / "minibase.toml").write_text(
        f"""
[app]
name = "pay"
service = "pay-svc"
secret = "test-secret-0123456789-abcdefghijklmnop"
[auth.dev]
enabled = true
[functions]
module = "{module}"
[webhooks.alipay]
app_id = "{APP_ID}"
alipay_public_key_file = "{key}"
[webhooks.wechatpay]
api_v3_key = "{wechatpay.api_v3_key}"
platform_keys = {{ {wechatpay.serial} = "{wkey}" }}
"""
    )
    monkeypatch.setenv("MINIBASE_CONFIG", str(tmp_path / "minibase.toml"))
    monkeypatch.setenv("MINIBASE_DATA", str(tmp_path / "data"))
    fc.reset()
    try:
        _, body = alipay.body(out_trade_no="fc-1")
        for _ in range(2):
            event = http_event("POST", "/webhooks/payNotify", body, FORM)
            resp = fc.http_handler(orjson.dumps(event), CONTEXT)
            assert (resp["statusCode"], resp["body"]) == (200, "success")
        forged = urlencode(alipay.sign(alipay.params(), key=_key())).encode()
        resp = fc.http_handler(orjson.dumps(http_event("POST", "/webhooks/payNotify", forged, FORM)), CONTEXT)
        assert (resp["statusCode"], resp["body"]) == (200, "fail")
    finally:
        fc.reset()
    assert [json.loads(x)["trade"] for x in handled(tmp_path)] == ["fc-1"]
