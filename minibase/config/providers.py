"""The login providers: one table, read by the config (``[auth.NAME]``), the provider
registry (:func:`minibase.auth.providers.build_providers`) and the OpenAPI description.

Adding a provider: a record for its ``[auth.NAME]`` keys here (defaults such as its API
endpoint on the fields), an entry in :data:`PROVIDERS`, the ``AuthConfig`` field the entry
names, and its module under ``minibase/auth/providers/`` with ``from_config(config)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..util.record import field, record, record_required
from .fields import FilePath, Flag, Seconds, Text, Url, file_keys, read_fields, spec
from .reader import Reader, check_keys

__all__ = [
    "ALIPAY_GATEWAY",
    "DOUYIN_API",
    "PROVIDERS",
    "WECHAT_API",
    "AlipayConfig",
    "DouyinConfig",
    "ProviderEntry",
    "WechatConfig",
    "read_provider",
]

# The platforms' production endpoints (the provider classes default to them too).
ALIPAY_GATEWAY = "https://openapi.alipay.com/gateway.do"
WECHAT_API = "https://api.weixin.qq.com"
DOUYIN_API = "https://developer.toutiao.com"


@record
class AlipayConfig:
    """``[auth.alipay]``: the app id, key files and gateway of Alipay's OpenAPI."""

    EXTRA_KEYS = ("enabled",)

    app_id: str = field(metadata=spec(Text()))
    private_key_file: Path = field(metadata=spec(FilePath()))
    alipay_public_key_file: Path = field(metadata=spec(FilePath()))
    gateway: str = field(default=ALIPAY_GATEWAY, metadata=spec(Url()))
    timeout: float = field(default=5.0, metadata=spec(Seconds()))
    # The console's AES key ("content encryption"): decrypts my.getPhoneNumber's answer.
    aes_key: str | None = field(default=None, repr=False, metadata=spec(Text()))


@record
class WechatConfig:
    """``[auth.wechat]``: the app id and secret for jscode2session."""

    EXTRA_KEYS = ("enabled",)

    app_id: str = field(metadata=spec(Text()))
    secret: str = field(repr=False, metadata=spec(Text()))
    api: str = field(default=WECHAT_API, metadata=spec(Url()))
    timeout: float = field(default=5.0, metadata=spec(Seconds()))


@record
class DouyinConfig:
    """``[auth.douyin]``: the app id and secret for Douyin's jscode2session."""

    EXTRA_KEYS = ("enabled",)

    app_id: str = field(metadata=spec(Text()))
    secret: str = field(repr=False, metadata=spec(Text()))
    api: str = field(default=DOUYIN_API, metadata=spec(Url()))
    timeout: float = field(default=5.0, metadata=spec(Seconds()))


@record
class ProviderEntry:
    """A login provider: its name (the ``provider`` of a login, ``[auth.NAME]``), the
    record of its keys (None: it has none but ``[auth.dev] enabled``), the ``AuthConfig``
    field holding its config (a record, or ``True`` when enabled), and its module under
    ``minibase.auth.providers``, imported only when it is configured."""

    name: str
    config: type | None
    attr: str
    module: str


PROVIDERS: tuple[ProviderEntry, ...] = (
    ProviderEntry("alipay", AlipayConfig, "alipay", "alipay"),
    ProviderEntry("wechat", WechatConfig, "wechat", "wechat"),
    ProviderEntry("douyin", DouyinConfig, "douyin", "douyin"),
    ProviderEntry("dev", None, "dev_enabled", "dev"),  # [auth.dev] enabled = true
)


def read_provider(r: Reader, auth: dict[str, Any], entry: ProviderEntry, unavailable: dict[str, str]) -> Any:
    """``[auth.NAME]`` as its record; None when absent or ``enabled = false``, or when every
    required value is an unset ``env:`` (then ``unavailable[NAME]`` says what to set: the
    provider refuses logins with that hint instead of failing the whole server)."""
    cls, key = entry.config, f"auth.{entry.name}"
    t = r.table(auth, key)
    if cls is None or not t:
        return None
    check_keys(t, key, file_keys(cls))
    if not Flag()(r, r.value(t, f"{key}.enabled", True), f"{key}.enabled"):
        return None
    required = record_required(cls)
    for name in required:
        if name not in t:
            raise ConfigError(f"{key}.{name}", "missing")
    refs = [t[n] for n in required]
    unset = [v[4:] for v in refs if isinstance(v, str) and v.startswith("env:") and not r.environ.get(v[4:])]
    if unset and len(unset) == len(refs):
        unavailable[entry.name] = f"set {', '.join(unset)} to enable it"
        return None
    return cls(**read_fields(cls, r, t, key))
