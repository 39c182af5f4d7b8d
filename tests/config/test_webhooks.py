"""``[webhooks.alipay]`` and ``[webhooks.wechatpay]``: defaults, required keys, bounds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from minibase.config import Config
from minibase.errors import ConfigError
from tests.support.config import base_raw


def test_alipay_defaults_to_the_login_provider(make_config: Callable[..., Config], tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("x")
    assert make_config().webhooks.alipay is None and make_config().webhooks.wechatpay is None
    auth = {
        "dev": {"enabled": True},
        "alipay": {"app_id": "2021", "private_key_file": "k.pem", "alipay_public_key_file": "k.pem"},
    }
    c = make_config(base_raw(auth=auth))
    assert c.webhooks.alipay is not None and c.webhooks.alipay.app_id == "2021"
    assert c.webhooks.alipay.alipay_public_key_file == tmp_path / "k.pem"
    c = make_config(base_raw(auth=auth, webhooks={"alipay": {"app_id": "2099"}}))
    assert c.webhooks.alipay is not None and c.webhooks.alipay.app_id == "2099"
    with pytest.raises(ConfigError, match=r"webhooks\.alipay\.alipay_public_key_file"):
        make_config(base_raw(webhooks={"alipay": {"app_id": "2099"}}))


def test_wechatpay_keys(make_config: Callable[..., Config], tmp_path: Path) -> None:
    ok = {"api_v3_key": "a" * 32, "platform_keys": {"PUB_KEY_ID_1": "p.pem"}, "mch_id": "190000"}
    c = make_config(base_raw(webhooks={"wechatpay": ok}))
    assert c.webhooks.wechatpay is not None
    assert c.webhooks.wechatpay.platform_keys == {"PUB_KEY_ID_1": tmp_path / "p.pem"}
    assert "a" * 32 not in repr(c.webhooks.wechatpay)  # a secret
    for bad, key in (
        ({**ok, "api_v3_key": "short"}, "api_v3_key"),
        ({**ok, "platform_keys": {}}, "platform_keys"),
        ({k: v for k, v in ok.items() if k != "api_v3_key"}, "api_v3_key"),
        ({**ok, "surprise": 1}, "surprise"),
    ):
        with pytest.raises(ConfigError, match=key):
            make_config(base_raw(webhooks={"wechatpay": bad}))
    with pytest.raises(ConfigError, match="webhooks"):
        make_config(base_raw(webhooks={"paypal": {}}))
