"""The TODO example's events: the fake "pay for premium" flow with an Alipay notification
signed by the local fake, the nightly cleanup, and the per-user todo counter trigger."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from minibase.config import load_config
from minibase.core import Minibase
from minibase.errors import PermissionDenied
from minibase.results import Raw
from minibase.store.records import Key
from minibase.store.writes import Insert
from tests.fakes.payments import AlipayNotifier
from tests.support.examples import EXAMPLE

APP_ID = "2021000000000042"
FORM = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}


def _example_core(tmp_path: Path, alipay: AlipayNotifier) -> Minibase:
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "app_private.pem").write_bytes(
        app_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    alipay.write_public_key(tmp_path / "alipay_public.pem")
    environ = {
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_PRIVATE_KEY_FILE": str(tmp_path / "app_private.pem"),
        "ALIPAY_PUBLIC_KEY_FILE": str(tmp_path / "alipay_public.pem"),
    }
    return Minibase.from_config(load_config(EXAMPLE, data_dir=tmp_path / "data", environ=environ))


def test_pay_for_premium_cleanup_and_todo_counter(tmp_path: Path) -> None:
    alipay = AlipayNotifier(APP_ID)

    async def run() -> None:
        core = _example_core(tmp_path, alipay)
        await core.start()
        try:
            assert core.events is not None
            login = await core.invoke("session", {"authCode": "dev:alice"}, None)
            alice = await core.caller_from_session_id(login.value["sessionId"])

            async def db(event: dict[str, Any]) -> Any:
                result = await core.invoke("db", event, alice)
                return orjson.loads(orjson.dumps(result.data if hasattr(result, "data") else result))

            # Pay for premium: an order, then Alipay's notification.
            order = await core.invoke("buyPremium", {}, alice)
            assert order["total_amount"] == "9.90"
            mine = await db({"op": "get", "collection": "orders", "id": order["out_trade_no"]})
            assert mine["status"] == "pending"
            # A notification for the order with another amount does not make it paid.
            _, cheap = alipay.body(out_trade_no=order["out_trade_no"], total_amount="0.01")
            assert await core.webhook("payNotify", FORM, {}, cheap, "r0") == Raw(
                200, b"success", "text/plain; charset=utf-8"
            )
            assert (await db({"op": "get", "collection": "orders", "id": order["out_trade_no"]}))[
                "status"
            ] == "pending"
            _, body = alipay.body(out_trade_no=order["out_trade_no"], total_amount="9.90")
            for _ in range(2):  # Alipay may deliver it twice
                reply = await core.webhook("payNotify", FORM, {}, body, "r1")
                assert reply.body == b"success"
            paid = await db({"op": "get", "collection": "orders", "id": order["out_trade_no"]})
            assert paid["status"] == "paid" and paid["trade_no"]
            assert (await db({"op": "get", "collection": "profiles", "id": "me"}))["premium"] is True
            # Clients cannot write the orders or the profile themselves.
            with pytest.raises(PermissionDenied):
                await core.invoke("db", {"op": "put", "collection": "profiles", "obj": {"id": "me"}}, alice)

            # The todo counter trigger.
            for i in range(3):
                await db(
                    {"op": "insert", "collection": "todo_list", "obj": {"id": f"t{i}", "title": f"todo {i}"}}
                )
            await db({"op": "remove", "collection": "todo_list", "id": "t0"})
            await core.events.dispatcher.drain()
            assert (await db({"op": "get", "collection": "todo_counts", "id": "me"}))["n"] == 2

            # The nightly cleanup drops orders left unpaid for a day, and only those.
            await core.store.write(
                [
                    Insert(
                        Key("orders", alice.uid, "stale"), {"status": "pending", "amount": "9.90", "since": 0}
                    )
                ],
                "t",
            )
            assert await core.events.run_now("cleanup") is True
            left = await db({"op": "query", "collection": "orders"})
            assert sorted(d["id"] for d in left) == [order["out_trade_no"]]
        finally:
            await core.stop()

    asyncio.run(run())
