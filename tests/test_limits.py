"""Every input limit over real HTTP (and the FC handlers): a clear 413/400 with a stable
code, the limit's config key, and nothing written. Config parsing range-checks each key."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest

from minibase.app import create_app
from minibase.client import Credentials, signed_headers
from minibase.config import Config, LimitsConfig, parse_config
from minibase.core import Minibase
from minibase.errors import ConfigError
from minibase.runtime import fc
from tests.support.config import SERVICE, Live, base_raw
from tests.support.live import run_uvicorn

LIMITS = {
    "max_body": 4096,
    "max_depth": 4,
    "max_id_length": 8,
    "max_string_length": 64,
    "max_key_length": 16,
    "max_keys": 20,
    "max_batch": 3,
    "max_query_limit": 20,
}

MODULE = """
from minibase import function

@function("echo", public=True)
async def echo(ctx, event):
    return event
"""

FC_INVOKE = f"/2016-08-15/services/{SERVICE}/functions/{{}}/invocations"


def limits_raw(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "limits_fns.py").write_text(textwrap.dedent(MODULE))
    return base_raw(limits=LIMITS, functions={"module": "limits_fns"})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Live]:
    config = parse_config(limits_raw(tmp_path), data_dir=tmp_path / "data", base_dir=tmp_path, environ={})
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        live = Live(url, core)
        try:
            yield live
        finally:
            for c in live.clients:
                c.close()


def nested(levels: int) -> Any:
    """A value that makes an event ``{"op": ..., "obj": {"id": "a", "d": value}}`` exactly
    ``levels`` deep (event 1, obj 2, d 3, ...)."""
    v: Any = 0
    for _ in range(levels - 2):
        v = [v]
    return v


def obj(**fields: Any) -> dict[str, Any]:
    return {"op": "insert", "obj": {"id": "a", **fields}}


# (case, function, event or raw body, status, code, limit key); each row is one past its limit.
ROWS: list[tuple[str, str, dict[str, Any] | bytes, int, str, str]] = [
    (
        "body",
        "db",
        b'{"op": "insert", "obj": {"id": "a", "s": "' + b"x" * 5000 + b'"}}',
        413,
        "PayloadTooLarge",
        "max_body",
    ),
    ("depth", "db", obj(d=nested(5)), 413, "PayloadTooLarge", "max_depth"),
    (
        "depth in where",
        "db",
        {"op": "query", "where": {"a": {"$in": [[[1]]]}}},
        413,
        "PayloadTooLarge",
        "max_depth",
    ),
    ("string", "db", obj(s="x" * 65), 413, "PayloadTooLarge", "max_string_length"),
    (
        "string in update",
        "db",
        {"op": "update", "id": "a", "set": {"s": "x" * 65}},
        413,
        "PayloadTooLarge",
        "max_string_length",
    ),
    ("key", "db", obj(**{"k" * 17: 1}), 413, "PayloadTooLarge", "max_key_length"),
    (
        "keys",
        "db",
        {"op": "insert", "obj": {"id": "a", **{f"k{i}": i for i in range(20)}}},
        413,
        "PayloadTooLarge",
        "max_keys",
    ),
    (
        "batch",
        "db",
        {"op": "batch", "ops": [{"op": "remove", "id": f"b{i}"} for i in range(4)]},
        400,
        "InvalidArgument",
        "max_batch",
    ),
    ("query limit", "db", {"op": "query", "limit": 21}, 400, "InvalidArgument", "max_query_limit"),
    ("list limit", "db", {"op": "list", "limit": 21}, 400, "InvalidArgument", "max_query_limit"),
    ("id", "db", {"op": "insert", "obj": {"id": "i" * 9}}, 400, "InvalidArgument", "max_id_length"),
    ("id of get", "db", {"op": "get", "id": "i" * 9}, 400, "InvalidArgument", "max_id_length"),
    ("function string", "echo", {"s": "x" * 65}, 413, "PayloadTooLarge", "max_string_length"),
    ("function depth", "echo", {"a": [[[[]]]]}, 413, "PayloadTooLarge", "max_depth"),
    ("function body", "echo", b'{"s": "' + b"x" * 5000 + b'"}', 413, "PayloadTooLarge", "max_body"),
]


def _body(event: dict[str, Any] | bytes) -> bytes:
    return event if isinstance(event, bytes) else orjson.dumps(event)


@pytest.mark.parametrize(
    ("case", "function", "event", "status", "code", "limit"), ROWS, ids=[r[0] for r in ROWS]
)
def test_limit_over_http(
    server: Live, case: str, function: str, event: dict[str, Any] | bytes, status: int, code: str, limit: str
) -> None:
    login = httpx.post(server.url + "/session", json={"authCode": "dev:lim"}).json()
    bearer = {"authorization": f"Bearer {login['sessionId']}", "content-type": "application/json"}
    r = httpx.post(f"{server.url}/invoke/{function}", content=_body(event), headers=bearer)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert err["limit"] == f"limits.{limit}" and err["max"] == LIMITS[limit]
    assert f"limits.{limit}" in err["message"]
    # Nothing was written, whatever the op.
    r = httpx.post(server.url + "/invoke/db", json={"op": "count"}, headers=bearer)
    assert r.json() == {"data": 0}

    # The FC Invoke API path, signed: event limits are function errors (200, handled), the
    # body size is refused by the gateway, FC's way.
    creds = Credentials.from_wire(login["sts"])
    path = FC_INVOKE.format(function)
    body = _body(event)
    r = httpx.post(server.url + path, content=body, headers=signed_headers(creds, "POST", path, body))
    if limit == "max_body":
        assert r.status_code == 413 and r.json()["ErrorCode"] == "PayloadTooLarge", r.text
    else:
        assert r.status_code == 200 and r.headers["x-fc-error-type"] == "HandledInvocationError"
        assert r.json()["error"]["code"] == code and r.json()["error"]["limit"] == f"limits.{limit}"


def test_values_at_the_limits_are_accepted(server: Live) -> None:
    c = server.client("dev:edge")
    doc = {"id": "i" * 8, "s": "x" * 64, "k" * 16: nested(4), **{f"f{i}": i for i in range(17)}}
    assert len(doc) == 20
    assert c.invoke("db", {"op": "insert", "obj": doc})["data"]["s"] == "x" * 64
    got = c.invoke("db", {"op": "get", "id": "i" * 8})["data"]
    assert got["k" * 16] == nested(4) and got["s"] == "x" * 64
    ops = [{"op": "insert", "obj": {"id": f"b{i}"}} for i in range(3)]
    assert len(c.invoke("db", {"op": "batch", "ops": ops})["data"]) == 3
    assert len(c.invoke("db", {"op": "query", "limit": 20})["data"]) == 4
    assert c.invoke("echo", {"s": "x" * 64})["data"] == {"s": "x" * 64}


def test_session_events_share_the_limits(server: Live) -> None:
    r = httpx.post(server.url + "/session", json={"authCode": "dev:" + "x" * 61})
    assert r.status_code == 413 and r.json()["error"]["limit"] == "limits.max_string_length"
    r = httpx.post(
        server.url + f"/2016-08-15/proxy/{SERVICE}/session/", json={"authCode": "dev:a", "x": [[[[1]]]]}
    )
    assert r.status_code == 413 and r.json()["error"]["limit"] == "limits.max_depth"


def test_fc_event_handler_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "limits_fns.py").write_text(textwrap.dedent(MODULE))
    toml = "\n".join(
        [
            f'[app]\nname = "t"\nservice = "{SERVICE}"\nsecret = "test-secret-0123456789-abcdefghijklmnop"',
            "[auth.dev]\nenabled = true",
            '[functions]\nmodule = "limits_fns"',
            "[limits]",
            *(f"{k} = {v}" for k, v in LIMITS.items()),
        ]
    )
    (tmp_path / "minibase.toml").write_text(toml + "\n")
    monkeypatch.setenv("MINIBASE_CONFIG", str(tmp_path / "minibase.toml"))
    monkeypatch.setenv("MINIBASE_DATA", str(tmp_path / "data"))
    monkeypatch.syspath_prepend(str(tmp_path))
    fc.reset()
    try:
        ctx = SimpleNamespace(function=SimpleNamespace(name="echo"), request_id="r1")
        out = orjson.loads(fc.event_handler(b'{"s": "' + b"x" * 5000 + b'"}', ctx))
        assert out["error"]["code"] == "PayloadTooLarge" and out["error"]["limit"] == "limits.max_body"
        out = orjson.loads(fc.event_handler('{"s": "' + "汉" * 1400 + '"}', ctx))  # 4200 bytes
        assert out["error"]["limit"] == "limits.max_body"
        out = orjson.loads(fc.event_handler(orjson.dumps({"s": "x" * 65}), ctx))
        assert out["error"]["limit"] == "limits.max_string_length" and out["error"]["path"] == "s"
        assert orjson.loads(fc.event_handler(orjson.dumps({"s": "ok"}), ctx)) == {"data": {"s": "ok"}}
    finally:
        fc.reset()


# (key, a value out of range); every key is range-checked and the error names it.
BAD_CONFIG: list[tuple[str, Any]] = [
    ("max_body", 1023),
    ("max_body", 64 * 1024 * 1024 + 1),
    ("max_depth", 1),
    ("max_depth", 257),
    ("max_id_length", 0),
    ("max_id_length", 1025),
    ("max_string_length", 15),
    ("max_string_length", 64 * 1024 * 1024 + 1),
    ("max_key_length", 7),
    ("max_key_length", 4097),
    ("max_keys", 15),
    ("max_keys", 100_001),
    ("max_batch", 0),
    ("max_batch", 101),
    ("max_query_limit", 0),
    ("max_query_limit", 1001),
    ("max_keys", "many"),
    ("max_batch", True),
    ("max_bytes", 10),  # unknown key
]


@pytest.mark.parametrize(("key", "value"), BAD_CONFIG)
def test_config_range_checks(make_config: Callable[..., Config], key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(base_raw(limits={key: value}))
    assert info.value.key == f"limits.{key}"


def test_config_defaults_and_values(make_config: Callable[..., Config]) -> None:
    assert make_config().limits == LimitsConfig(
        max_body=1024 * 1024,
        max_depth=32,
        max_id_length=256,
        max_string_length=256 * 1024,
        max_key_length=256,
        max_keys=1000,
        max_batch=100,
        max_query_limit=1000,
    )
    # max_document, not set, follows max_body.
    want = LimitsConfig(**LIMITS, max_document=LIMITS["max_body"])
    assert make_config(base_raw(limits=LIMITS)).limits == want
