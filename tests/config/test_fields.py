"""Each config record declares its keys once: defaults, file spelling and bounds are read
from the declarations (minibase/config/fields.py), so the parser cannot drift from them."""

from __future__ import annotations

from typing import Any

import pytest

from minibase.config import (
    AppConfig,
    AuthConfig,
    CollectionConfig,
    Config,
    DatabaseConfig,
    FilesArea,
    FilesConfig,
    FunctionsConfig,
    LimitsConfig,
    RateLimitsConfig,
    StsConfig,
    parse_config,
)
from minibase.config.fields import Int, Seconds, file_keys, iter_kinds
from minibase.errors import ConfigError
from minibase.util.record import record_fields, record_meta

DEV = {"auth": {"dev": {"enabled": True}}}
SECTIONS = [
    AppConfig,
    AuthConfig,
    StsConfig,
    DatabaseConfig,
    FilesConfig,
    FilesArea,
    LimitsConfig,
    RateLimitsConfig,
    FunctionsConfig,
    CollectionConfig,
    Config,
]


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_every_field_is_declared(cls: Any) -> None:
    """A field is read by a kind, is a sub-table, or says where it comes from instead."""
    for name in record_fields(cls):
        meta = record_meta(cls, name)
        assert {"kind", "table", "derived"} & set(meta), f"{cls.__name__}.{name} has no declaration"


def test_parsed_defaults_are_the_record_defaults() -> None:
    """An empty file gives exactly the records' own defaults: no second copy in a parser."""
    c = parse_config(DEV, environ={})
    assert c.app == AppConfig() and c.database == DatabaseConfig() and c.files == FilesConfig()
    assert c.limits == LimitsConfig() and c.rate_limits == RateLimitsConfig()
    assert c.functions == FunctionsConfig()
    from minibase.util.record import replace

    assert c.auth == replace(AuthConfig(), dev_enabled=True)


def test_allowed_keys_come_from_the_fields() -> None:
    assert set(file_keys(LimitsConfig)) == set(record_fields(LimitsConfig))
    assert "secret" in file_keys(AppConfig) and "secrets" not in file_keys(AppConfig)
    assert "dev" in file_keys(AuthConfig) and "unavailable" not in file_keys(AuthConfig)
    assert file_keys(AuthConfig, "dev") == ("enabled",)
    assert "write" in file_keys(CollectionConfig)
    assert set(file_keys(Config)) == {
        "app",
        "auth",
        "database",
        "files",
        "limits",
        "rate_limits",
        "functions",
        "collections",
        "webhooks",
    }


@pytest.mark.parametrize(("name", "kind"), [(n, k) for n, _, k in iter_kinds(LimitsConfig)])
def test_limits_bounds_are_enforced_at_both_ends(name: str, kind: Any) -> None:
    assert isinstance(kind, Int | Seconds)  # counts, and query_time (a duration)
    for ok in (kind.lo, kind.hi):
        assert getattr(parse_config({**DEV, "limits": {name: ok}}, environ={}).limits, name) == ok
    bads = (kind.lo - 1, kind.hi + 1) if isinstance(kind, Int) else (kind.lo / 2, kind.hi + 1)
    for bad in bads:
        with pytest.raises(ConfigError) as e:
            parse_config({**DEV, "limits": {name: bad}}, environ={})
        assert e.value.key == f"limits.{name}" and f"between {kind.lo} and {kind.hi}" in str(e.value)


def test_env_values_are_read_through_the_kind() -> None:
    c = parse_config({**DEV, "limits": {"max_batch": "env:B"}}, environ={"B": "7"})
    assert c.limits.max_batch == 7
    with pytest.raises(ConfigError) as e:
        parse_config({**DEV, "limits": {"max_batch": "env:B"}}, environ={})
    assert e.value.key == "limits.max_batch" and "B is not set" in str(e.value)


def test_dev_table_refuses_unknown_keys() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"auth": {"dev": {"enabled": True, "enabeld": True}}}, environ={})
    assert e.value.key == "auth.dev.enabeld"


def test_write_is_only_parsed_when_an_op_inherits_it() -> None:
    ops = {"create": "owner", "update": "owner", "delete": "owner"}
    c = parse_config({**DEV, "collections": {"t": {**ops, "write": "doc.a =="}}}, environ={})
    assert c.collection("t").create.text == "owner"


def test_sts_endpoint_default_is_one_value() -> None:
    """The record's default and what the file's default spelling parses to are the same."""
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}
    arn = "acs:ram::123:role/r"
    base = {"auth": {"dev": {"enabled": True}, "credentials": "sts"}}
    default = parse_config({"auth": {**base["auth"], "sts": {"role_arn": arn}}}, environ=env).auth.sts
    spelled = parse_config(
        {"auth": {**base["auth"], "sts": {"role_arn": arn, "endpoint": "sts.aliyuncs.com"}}}, environ=env
    ).auth.sts
    assert default is not None and spelled is not None
    record_default = StsConfig(role_arn=arn, access_key_id="id", access_key_secret="s").endpoint
    assert default.endpoint == spelled.endpoint == record_default == "https://sts.aliyuncs.com"
