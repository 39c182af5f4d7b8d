"""Developer functions end to end: declared in a module, invoked over real HTTP."""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from minibase.app import create_app
from minibase.client import ClientError
from minibase.config import Config, parse_config
from minibase.core import Minibase
from minibase.errors import ConfigError
from tests.support.config import Live, base_raw
from tests.support.live import run_uvicorn

MODULE = """
import asyncio, time
from minibase import function, Conflict

@function("whoami")
async def whoami(ctx, event):
    return {"uid": ctx.uid, "provider": ctx.provider, "rid": ctx.request_id, "event": event}

@function(public=True)
def ping(ctx, event):
    return {"pong": True, "uid": ctx.uid}

@function("addTodo")
async def add_todo(ctx, event):
    return await ctx.db.insert("todo_list", {"title": event["title"], "completed": False})

@function("syncCount")
def sync_count(ctx, event):
    ctx.db.insert("todo_list", {"title": "from a thread"})
    [group] = ctx.db.aggregate("todo_list", [{"$group": {"_id": None, "n": {"$count": {}}}}])
    assert group["n"] == ctx.db.count("todo_list")
    return ctx.db.count("todo_list")

@function("peek")
async def peek(ctx, event):
    # Rules apply inside functions: the caller cannot read another user's todo.
    return await ctx.db.get("todo_list", event["id"], owner=event["owner"])

@function("refuse")
async def refuse(ctx, event):
    raise Conflict("already done", hint="x")

@function("crash")
async def crash(ctx, event):
    raise RuntimeError("secret internals /etc/passwd")

@function("slow", timeout=0.3)
async def slow(ctx, event):
    await asyncio.sleep(5)

@function("slowSync", timeout=0.3)
def slow_sync(ctx, event):
    time.sleep(1)

@function("notJson")
async def not_json(ctx, event):
    return {"when": object()}
"""


def write_module(tmp_path: Path, source: str) -> str:
    name = f"fns_{secrets.token_hex(4)}"  # unique: modules are cached per process
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def fn_config(tmp_path: Path, module: str, **functions: object) -> Config:
    raw = base_raw(functions={"module": module, **functions})
    return parse_config(raw, data_dir=tmp_path / "data", base_dir=tmp_path, environ={})


@pytest.fixture
def fn_live(tmp_path: Path) -> Iterator[Live]:
    config = fn_config(tmp_path, write_module(tmp_path, MODULE))
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        live = Live(url, core)
        try:
            yield live
        finally:
            for c in live.clients:
                c.close()


def bearer(live: Live, name: str) -> dict[str, str]:
    r = httpx.post(live.url + "/session", json={"authCode": f"dev:{name}"})
    return {"authorization": f"Bearer {r.json()['sessionId']}"}


def test_called_with_the_callers_identity(fn_live: Live) -> None:
    c = fn_live.client("dev:alice")
    body = c.invoke("whoami", {"x": 1})
    assert body["data"]["uid"] == c.uid and body["data"]["provider"] == "dev"
    assert body["data"]["event"] == {"x": 1}  # the sid is not passed on
    r = httpx.post(fn_live.url + "/invoke/whoami", json={"y": 2}, headers=bearer(fn_live, "bob"))
    assert r.status_code == 200 and r.json()["data"]["rid"] == r.headers["x-fc-request-id"]


def test_session_required_unless_public(fn_live: Live) -> None:
    r = httpx.post(fn_live.url + "/invoke/whoami", json={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthenticated"
    r = httpx.post(fn_live.url + "/invoke/ping", json={})
    assert r.json() == {"data": {"pong": True, "uid": None}}


def test_data_access_as_the_caller(fn_live: Live) -> None:
    alice, bob = fn_live.client("dev:alice"), fn_live.client("dev:bob")
    todo = alice.invoke("addTodo", {"title": "milk"})["data"]
    assert todo["uid"] == alice.uid and todo["title"] == "milk"
    assert alice.db("get", id=todo["id"])["title"] == "milk"
    assert bob.invoke("peek", {"id": todo["id"], "owner": alice.uid})["data"] is None
    assert alice.invoke("syncCount", {})["data"] == 2


def test_errors_map_to_the_envelope(fn_live: Live, caplog: pytest.LogCaptureFixture) -> None:
    h = bearer(fn_live, "alice")
    r = httpx.post(fn_live.url + "/invoke/refuse", json={}, headers=h)
    assert (
        r.status_code == 409 and r.json()["error"]["code"] == "Conflict" and r.json()["error"]["hint"] == "x"
    )
    r = httpx.post(fn_live.url + "/invoke/crash", json={}, headers=h)
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["code"] == "Internal" and "passwd" not in r.text and "Traceback" not in r.text
    logged = [rec for rec in caplog.records if err["requestId"] in rec.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the server log
    r = httpx.post(fn_live.url + "/invoke/notJson", json={}, headers=h)
    assert r.status_code == 500 and r.json()["error"]["code"] == "Internal"
    c = fn_live.client("dev:alice")
    with pytest.raises(ClientError) as e:
        c.invoke("refuse", {})
    assert e.value.code == "Conflict" and e.value.status == 200  # FC path: handled error


@pytest.mark.parametrize("name", ["slow", "slowSync"])
def test_time_limit(fn_live: Live, name: str) -> None:
    r = httpx.post(fn_live.url + f"/invoke/{name}", json={}, headers=bearer(fn_live, "alice"), timeout=10)
    assert r.status_code == 504 and r.json()["error"]["code"] == "DeadlineExceeded"


def test_unknown_function(fn_live: Live) -> None:
    r = httpx.post(fn_live.url + "/invoke/nope", json={}, headers=bearer(fn_live, "alice"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import nonexistent_module_xyz\n", "cannot import"),
        ("raise RuntimeError('boom')\n", "boom"),
        ("x = 1\n", "declares no @function"),
        ("from minibase import function\n@function('db')\nasync def db(ctx, e): pass\n", "reserved"),
        (
            "from minibase import function\n@function('a')\nasync def a(ctx, e): pass\n@function('a')\nasync def b(ctx, e): pass\n",
            "two functions",
        ),
    ],
)
def test_bad_modules_fail_at_start(tmp_path: Path, source: str, message: str) -> None:
    config = fn_config(tmp_path, write_module(tmp_path, source))
    with pytest.raises(ConfigError) as e:
        Minibase.from_config(config)
    assert e.value.key == "functions.module" and message in str(e.value)


def test_bad_names_refused_at_declaration() -> None:
    from minibase import function

    with pytest.raises(ValueError):
        function("has space")


def test_config_timeouts(tmp_path: Path, make_config: Callable[..., Config]) -> None:
    c = fn_config(tmp_path, "m", timeout="2s", timeouts={"slow": "1m"})
    assert c.functions.timeout_for("slow") == 60 and c.functions.timeout_for("other") == 2
    with pytest.raises(ConfigError) as e:
        fn_config(tmp_path, "m", timeout="20m")
    assert e.value.key == "functions.timeout"
    with pytest.raises(ConfigError):
        fn_config(tmp_path, "bad module!")


def test_example_functions(tmp_path: Path) -> None:
    """The TODO example's clearCompleted and stats, against its own config."""
    from minibase.config import load_config

    example = Path(__file__).resolve().parents[2] / "examples" / "todo" / "minibase.toml"
    config = load_config(example, data_dir=tmp_path, environ={})
    core = Minibase.from_config(config)
    with run_uvicorn(create_app(config, core=core)) as url:
        live = Live(url, core)
        c = live.client("dev:alice")
        other = live.client("dev:bob")
        try:
            for i in range(5):
                c.db("put", obj={"id": f"t{i}", "title": f"t{i}", "completed": i % 2 == 0})
            other.db("put", obj={"id": "t0", "completed": True})
            assert c.invoke("stats", {})["data"] == {"total": 5, "completed": 3, "open": 2}
            assert c.invoke("clearCompleted", {})["data"] == {"removed": 3}
            assert sorted(d["id"] for d in c.db("list")) == ["t1", "t3"]
            assert other.db("get", id="t0") is not None  # bob's completed todo stays
            assert c.invoke("rename", {"id": "t1", "title": " new "})["data"]["title"] == "new"
            with pytest.raises(ClientError) as e:
                c.invoke("rename", {"id": "t1", "title": ""})
            assert e.value.code == "InvalidArgument"
        finally:
            c.close()
            other.close()
