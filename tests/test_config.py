from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from minibase.config import load_config, parse_config
from minibase.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "todo" / "minibase.toml"


def parse(raw: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    return parse_config(raw, data_dir="/tmp/d", base_dir="/base", environ=env or {})


DEV = {"auth": {"dev": {"enabled": True}}}


def test_example_loads_without_alipay_env() -> None:
    c = load_config(EXAMPLE, environ={})
    assert c.app.service == "todo-list-svc" and c.app.default_collection == "todo_list"
    assert c.auth.providers == ("dev",)
    assert "ALIPAY_APP_ID" in c.auth.unavailable["alipay"]
    assert c.data_dir == EXAMPLE.parent / "data"
    assert c.sqlite_path == EXAMPLE.parent / "data" / "minibase.db"


def test_example_with_alipay_env() -> None:
    env = {
        "ALIPAY_APP_ID": "2021",
        "ALIPAY_PRIVATE_KEY_FILE": "/k/a.pem",
        "ALIPAY_PUBLIC_KEY_FILE": "k/b.pem",
    }
    c = load_config(EXAMPLE, environ=env, data_dir="/elsewhere")
    assert c.auth.providers == ("alipay", "dev") and c.auth.alipay is not None
    assert c.auth.alipay.app_id == "2021"
    assert c.auth.alipay.private_key_file == Path("/k/a.pem")
    assert c.auth.alipay.alipay_public_key_file == EXAMPLE.parent / "k" / "b.pem"
    assert c.data_dir == Path("/elsewhere")


def test_defaults() -> None:
    c = parse(DEV)
    assert c.auth.session_idle == 30 * 86400 and c.auth.session_max == 180 * 86400
    assert c.auth.credentials_ttl == 900 and c.limits.max_body == 1024 * 1024
    assert c.limits.query_time == 3.0
    assert parse({**DEV, "limits": {"query_time": "250ms"}}).limits.query_time == 0.25
    assert c.collection("anything").read.text == "owner"


@pytest.mark.parametrize(
    ("raw", "env", "key"),
    [
        ({"auth": {}}, {}, "auth"),
        ({**DEV, "bogus": {}}, {}, "bogus"),
        ({**DEV, "app": {"nmae": "x"}}, {}, "app.nmae"),
        ({**DEV, "app": {"service": "has space"}}, {}, "app.service"),
        ({**DEV, "app": {"secret": "short"}}, {}, "app.secret"),
        ({**DEV, "app": {"secret": "env:NOPE"}}, {}, "app.secret"),
        ({**DEV, "app": {"secret": 5}}, {}, "app.secret"),
        ({"auth": {"dev": {"enabled": "maybe"}}}, {}, "auth.dev.enabled"),
        ({"auth": {"dev": {"enabled": True}, "session_idle": "soon"}}, {}, "auth.session_idle"),
        ({"auth": {"dev": {"enabled": True}, "session_idle": "200d"}}, {}, "auth.session_idle"),
        ({"auth": {"dev": {"enabled": True}, "credentials_ttl": "5m"}}, {}, "auth.credentials_ttl"),
        ({"auth": {"dev": {"enabled": True}, "credentials_ttl": "2h"}}, {}, "auth.credentials_ttl"),
        ({"auth": {"dev": {"enabled": True}, "credentials": "magic"}}, {}, "auth.credentials"),
        (
            {"auth": {"alipay": {"app_id": "1", "private_key_file": "a"}}},
            {},
            "auth.alipay.alipay_public_key_file",
        ),
        (
            {
                "auth": {
                    "alipay": {"app_id": "env:A", "private_key_file": "env:B", "alipay_public_key_file": "c"}
                }
            },
            {},
            "auth.alipay.app_id",
        ),
        (
            {"auth": {"wechat": {"app_id": "env:A", "secret": "env:B"}}},
            {"A": "wx1"},  # one set, one not: a half-done setup is an error, not "unavailable"
            "auth.wechat.secret",
        ),
        ({"auth": {"wechat": {"app_id": "a", "secret": "s", "api": "ftp://x"}}}, {}, "auth.wechat.api"),
        ({"auth": {"wechat": {"app_id": "a", "secret": "s", "apps": 1}}}, {}, "auth.wechat.apps"),
        ({**DEV, "database": {"url": "mysql://x"}}, {}, "database.url"),
        ({**DEV, "limits": {"max_body": 10}}, {}, "limits.max_body"),
        ({**DEV, "limits": {"query_time": "1ms"}}, {}, "limits.query_time"),
        ({**DEV, "limits": {"query_time": "1h"}}, {}, "limits.query_time"),
        ({**DEV, "limits": {"query_time": "soon"}}, {}, "limits.query_time"),
        ({**DEV, "functions": {"trigger_lease": "0s"}}, {}, "functions.trigger_lease"),
        ({**DEV, "functions": {"trigger_lease": "2h"}}, {}, "functions.trigger_lease"),
        ({**DEV, "collections": {"todo": {"read": "everyone"}}}, {}, "collections.todo.read"),
        ({**DEV, "collections": {"todo": {"write": "doc.a == doc.b"}}}, {}, "collections.todo.write"),
        ({**DEV, "collections": {"todo": {"update": "doc.a =="}}}, {}, "collections.todo.update"),
        ({**DEV, "collections": {"todo": {"schema": {"type": "nope"}}}}, {}, "collections.todo.schema"),
        ({**DEV, "collections": {"todo": {"schema": "missing.json"}}}, {}, "collections.todo.schema"),
        ({**DEV, "collections": {"todo": {"indexes": [["uid"]]}}}, {}, "collections.todo.indexes[0]"),
        ({**DEV, "collections": {"todo": {"indexes": ["a..b"]}}}, {}, "collections.todo.indexes[0]"),
        ({**DEV, "collections": {"todo": {"indexes": "done"}}}, {}, "collections.todo.indexes"),
        ({**DEV, "collections": {"todo": {"raed": "owner"}}}, {}, "collections.todo.raed"),
        ({**DEV, "collections": {"bad name": {}}}, {}, "collections.bad name"),
        ({**DEV, "collections": {"todo": "owner"}}, {}, "collections.todo"),
    ],
)
def test_wrong_values_name_their_key(raw: dict[str, Any], env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(raw, env)
    assert e.value.key == key, str(e.value)


def test_env_values_and_secret_rotation() -> None:
    c = parse({**DEV, "app": {"secret": ["env:NEW", "o" * 32]}}, {"NEW": "n" * 32})
    assert c.app.secrets == ("n" * 32, "o" * 32)


def test_write_sets_create_update_delete() -> None:
    c = parse({**DEV, "collections": {"t": {"read": "public", "write": "none", "delete": "owner"}}})
    col = c.collection("t")
    assert [r.text for r in (col.read, col.create, col.update, col.delete)] == [
        "public",
        "none",
        "none",
        "owner",
    ]


def test_disabled_provider_section_is_ignored() -> None:
    c = parse(
        {"auth": {"dev": {"enabled": True}, "wechat": {"enabled": False, "app_id": "env:X", "secret": "y"}}}
    )
    assert c.auth.wechat is None and c.auth.providers == ("dev",)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[app\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_sqlite_absolute_path() -> None:
    c = parse({**DEV, "database": {"url": "sqlite:////var/db/x.db"}})
    assert c.sqlite_path == Path("/var/db/x.db")


def test_rule_errors_give_the_position() -> None:
    with pytest.raises(ConfigError) as e:
        parse({**DEV, "collections": {"todo": {"read": "doc.shared == true ||| x"}}})
    assert e.value.key == "collections.todo.read" and "at " in str(e.value)


def test_schema_and_indexes(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"type": "object", "required": ["title"]}')
    c = parse_config(
        {**DEV, "collections": {"t": {"schema": "s.json", "indexes": ["done", ["n", "a.b"]]}}},
        data_dir=tmp_path,
        base_dir=tmp_path,
        environ={},
    )
    col = c.collection("t")
    assert col.schema == {"type": "object", "required": ["title"]}
    assert col.indexes == ((("done",),), (("n",), ("a", "b")))


def test_trigger_lease_reaches_the_dispatcher() -> None:
    from typing import cast

    from minibase.events.decl import EventSpecs
    from minibase.events.runner import Events

    config = parse({**DEV, "functions": {"trigger_lease": "90s"}}, {})
    assert config.functions.trigger_lease == 90.0
    assert parse(DEV, {}).functions.trigger_lease == 60.0
    # The dispatcher holds its claims for the configured lease (no I/O in the constructor).
    events = Events(config, EventSpecs(), cast(Any, None), cast(Any, None))
    assert events.dispatcher.lease == 90.0
