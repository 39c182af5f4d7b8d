"""The provider table feeds the config, the provider registry and OpenAPI."""

from __future__ import annotations

from pathlib import Path

import pytest

from minibase.auth.providers import build_providers
from minibase.config import PROVIDERS, AuthConfig, parse_config
from minibase.config.fields import file_keys
from minibase.openapi import build_openapi
from minibase.util.record import record_fields

WECHAT = {"app_id": "wx1", "secret": "s"}
DOUYIN = {"app_id": "tt1", "secret": "s"}


def test_every_entry_has_its_auth_field_and_module() -> None:
    for entry in PROVIDERS:
        assert entry.attr in record_fields(AuthConfig)
        if entry.config is not None:
            assert entry.name in file_keys(AuthConfig)
        from importlib import import_module

        assert callable(import_module(f"minibase.auth.providers.{entry.module}").from_config)


def test_registry_builds_what_the_config_enables() -> None:
    c = parse_config({"auth": {"dev": {"enabled": True}, "wechat": WECHAT, "douyin": DOUYIN}}, environ={})
    assert c.auth.providers == ("wechat", "douyin", "dev")
    built = build_providers(c.auth)
    assert list(built) == ["wechat", "douyin", "dev"]
    assert [p.name for p in built.values()] == ["wechat", "douyin", "dev"]


def test_defaults_of_the_table_reach_the_provider() -> None:
    c = parse_config({"auth": {"wechat": WECHAT}}, environ={})
    provider = build_providers(c.auth)["wechat"]
    assert c.auth.wechat is not None and c.auth.wechat.api == "https://api.weixin.qq.com"
    assert provider.api == c.auth.wechat.api  # type: ignore[attr-defined]


def test_unreadable_alipay_key_names_its_key(tmp_path: Path) -> None:
    from minibase.errors import ConfigError

    raw = {"auth": {"alipay": {"app_id": "1", "private_key_file": "nope.pem", "alipay_public_key_file": "x"}}}
    c = parse_config(raw, base_dir=tmp_path, environ={})
    with pytest.raises(ConfigError) as e:
        build_providers(c.auth)
    assert e.value.key == "auth.alipay.private_key_file"


def test_openapi_lists_the_table() -> None:
    c = parse_config({"auth": {"dev": {"enabled": True}}}, environ={})
    spec = build_openapi(c.app.service)
    login = spec["components"]["schemas"]["session.login"]
    assert login["properties"]["provider"]["enum"] == [p.name for p in PROVIDERS]


def test_no_provider_error_names_every_platform_of_the_table() -> None:
    from minibase.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        parse_config({"auth": {}}, environ={})
    assert e.value.key == "auth"
    for entry in PROVIDERS:
        assert f"[auth.{entry.name}]" in str(e.value)
