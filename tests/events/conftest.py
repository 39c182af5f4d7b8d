"""Helpers for the events tests: a functions module written per test, a config on SQLite
or PostgreSQL, and the payment platforms' fakes with their keys in files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minibase.config import Config, parse_config
from tests.fakes.payments import AlipayNotifier, WechatPayNotifier
from tests.support.config import base_raw
from tests.support.events import APP_ID, write_module


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return "sqlite:///minibase.db"


@pytest.fixture
def alipay() -> AlipayNotifier:
    return AlipayNotifier(APP_ID)


@pytest.fixture
def wechatpay() -> WechatPayNotifier:
    return WechatPayNotifier()


@pytest.fixture
def events_config(
    tmp_path: Path, backend: str, alipay: AlipayNotifier, wechatpay: WechatPayNotifier
) -> Callable[..., Config]:
    """A config whose functions module is ``source`` (``{log}``: a file the handlers append
    to), with both payment platforms' keys."""
    alipay_key = alipay.write_public_key(tmp_path / "alipay_public.pem")
    wechat_key = wechatpay.write_public_key(tmp_path / "wechatpay_public.pem")

    def make(source: str, platform_keys: dict[str, str] | None = None, **sections: Any) -> Config:
        module = write_module(tmp_path, source.replace("{log}", str(tmp_path / "handled.log")))
        raw = base_raw(
            database={"url": backend},
            functions={"module": module, **sections.pop("functions", {})},
            webhooks={
                "alipay": {"app_id": APP_ID, "alipay_public_key_file": str(alipay_key)},
                "wechatpay": {
                    "api_v3_key": wechatpay.api_v3_key,
                    "platform_keys": platform_keys or {wechatpay.serial: str(wechat_key)},
                    "mch_id": wechatpay.mch_id,
                },
            },
            **sections,
        )
        return parse_config(raw, data_dir=tmp_path / "data", base_dir=tmp_path, environ={})

    return make
