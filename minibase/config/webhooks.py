"""``[webhooks.alipay]`` and ``[webhooks.wechatpay]``: what verifies payment notifications."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..util.record import field, record
from .fields import TABLE, Custom, FilePath, Text, read_fields, spec
from .reader import Reader, check_keys

__all__ = ["AlipayNotifyConfig", "WebhooksConfig", "WechatPayConfig"]


@record
class AlipayNotifyConfig:
    """``[webhooks.alipay]``: Alipay's asynchronous notifications (``verify="alipay"``).
    Either key defaults to ``[auth.alipay]``'s."""

    app_id: str = field(metadata=spec(Text()))
    alipay_public_key_file: Path = field(metadata=spec(FilePath()))


def _api_v3_key(r: Reader, v: Any, key: str) -> str:
    if not isinstance(v, str) or len(v.encode()) != 32:
        raise ConfigError(key, "expected the 32-character APIv3 key set in the WeChat Pay merchant platform")
    return v


def _platform_keys(r: Reader, v: Any, key: str) -> Mapping[str, Path]:
    if not isinstance(v, dict) or not v:
        raise ConfigError(key, "expected a table: serial = PEM file (platform public key or certificate)")
    out: dict[str, Path] = {}
    for serial, _path in v.items():
        out[serial] = FilePath()(r, r.value(v, f"{key}.{serial}"), f"{key}.{serial}")
    return out


@record
class WechatPayConfig:
    """``[webhooks.wechatpay]``: WeChat Pay API v3 notifications (``verify="wechatpay"``)."""

    api_v3_key: str = field(repr=False, metadata=spec(Custom(_api_v3_key, "0" * 32)))
    # Wechatpay-Serial -> the PEM file of that platform public key (PUB_KEY_ID_…) or certificate
    platform_keys: Mapping[str, Path] = field(metadata=spec(_platform_keys))
    # when set, a notification whose resource names another merchant is refused
    mch_id: str | None = field(default=None, metadata=spec(Text()))


@record
class WebhooksConfig:
    """The payment platforms' notification settings (``[webhooks.*]``)."""

    alipay: AlipayNotifyConfig | None = field(default=None, metadata=TABLE)
    wechatpay: WechatPayConfig | None = field(default=None, metadata=TABLE)

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any], auth_alipay: Any = None) -> WebhooksConfig:
        check_keys(t, "webhooks", ("alipay", "wechatpay"))
        alipay = None
        a = r.table(t, "webhooks.alipay")
        if a or auth_alipay is not None:
            values = read_fields(AlipayNotifyConfig, r, a, "webhooks.alipay")
            for name in ("app_id", "alipay_public_key_file"):
                if name not in values:
                    if auth_alipay is None:
                        raise ConfigError(
                            f"webhooks.alipay.{name}", "missing (and no [auth.alipay] to take it from)"
                        )
                    values[name] = getattr(auth_alipay, name)
            alipay = AlipayNotifyConfig(**values)
        w = r.table(t, "webhooks.wechatpay")
        wechatpay = None
        if w:
            values = read_fields(WechatPayConfig, r, w, "webhooks.wechatpay")
            for name in ("api_v3_key", "platform_keys"):
                if name not in values:
                    raise ConfigError(f"webhooks.wechatpay.{name}", "missing")
            wechatpay = WechatPayConfig(**values)
        return cls(alipay=alipay, wechatpay=wechatpay)
