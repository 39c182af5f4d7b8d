"""The core over its collaborators: ``Minibase.from_config`` does the I/O, the constructor
takes what it is given; the built-ins and the developer's functions are registry entries
called through one invoke path (the same caller checks, the same lookup)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minibase.auth.sessions import Caller
from minibase.config import Config, parse_config
from minibase.core import Minibase
from minibase.errors import ConfigError, NotFound, PermissionDenied, Unauthenticated
from minibase.functions.registry import FunctionSpec
from minibase.util.names import BUILTIN_FUNCTIONS
from tests.functions.test_invoke import fn_config, write_module
from tests.support.config import base_raw

WEBHOOK_MODULE = """
from minibase.events import webhook

@webhook("payNotify", verify="alipay")
def pay_notify(ctx, event):
    return None
"""

MODULE = """
from minibase import function

@function("readThrough")
async def read_through(ctx, event):
    return await ctx.db.get("todo_list", event["id"])
"""


def test_from_config_does_the_io_the_constructor_none(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    raw = base_raw()
    del raw["app"]["secret"]  # the key then lives in the data dir: from_config creates it
    core = Minibase.from_config(make_config(raw))
    assert (core.config.data_dir / "secret.key").is_file()

    # Another core over the same collaborators, for a data dir that does not exist: the
    # constructor reads and creates nothing, and keeps what it was given.
    elsewhere = parse_config(raw, data_dir=tmp_path / "nowhere", base_dir=tmp_path, environ={})
    other = Minibase(
        elsewhere,
        store=core.store,
        minter=core.minter,
        sessions=core.sessions,
        limiter=core.limiter,
        providers=core.providers,
        functions=core.functions,
        file_store=core._file_store,
        platform=core.platform,
    )
    assert not (tmp_path / "nowhere").exists()
    assert (other.store, other.sessions, other.functions) == (core.store, core.sessions, core.functions)
    assert other.platform is core.platform


def test_webhook_keys_load_in_from_config_not_in_the_constructor(tmp_path: Path) -> None:
    """A webhook's key file is read by ``from_config`` (a bad one stops the start, its key
    named); the constructor only builds the events' runner over the store it is given."""
    bad = tmp_path / "alipay_public.pem"
    bad.write_text("not a PEM key")
    module = write_module(tmp_path, WEBHOOK_MODULE)
    raw = base_raw(
        functions={"module": module},
        webhooks={"alipay": {"app_id": "2021000000000000", "alipay_public_key_file": str(bad)}},
    )
    config = parse_config(raw, data_dir=tmp_path / "data", base_dir=tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"webhooks\.alipay"):
        Minibase.from_config(config)

    good = Minibase.from_config(fn_config(tmp_path, module))  # no [webhooks.alipay]: a warning only
    assert good.events is not None and not good.background
    core = Minibase(
        config,
        store=good.store,
        minter=good.minter,
        sessions=good.sessions,
        limiter=good.limiter,
        providers=good.providers,
        functions=good.functions,
        file_store=good._file_store,
        platform=good.platform,
        event_store=good.events.store,
        background=True,
    )
    assert core.events is not None and core.events.store is good.events.store and core.background
    with pytest.raises(ValueError, match="event_store"):
        Minibase(
            config,
            store=good.store,
            minter=good.minter,
            sessions=good.sessions,
            limiter=good.limiter,
            providers=good.providers,
            functions=good.functions,
            file_store=good._file_store,
            platform=good.platform,
        )


def test_builtins_are_registry_entries(make_config: Callable[..., Config]) -> None:
    core = Minibase.from_config(make_config())
    builtins = {name for name, spec in core.functions.specs.items() if spec.builtin}
    assert builtins == BUILTIN_FUNCTIONS and core.functions.developer() == []
    assert all(core.has_function(name) for name in BUILTIN_FUNCTIONS)
    assert [n for n, s in core.functions.specs.items() if s.sessionless] == ["session"]
    # The login function got the rate limiter and the platform store (identity linking) at
    # construction, not patched in afterwards.
    login = core.functions.specs["session"].fn.login
    assert login.limiter is core.limiter
    assert login.platform_store is core.platform.store and login.platform_store is not None


def test_one_invoke_path_for_builtins_and_developer_functions(tmp_path: Path) -> None:
    """Swapping the registry's ``db`` entry changes what ``invoke("db")`` and a developer
    function's ``ctx.db`` run: nothing is dispatched by name beside the registry. The caller
    checks run before any entry, built-in or not."""
    config = fn_config(tmp_path, write_module(tmp_path, MODULE))

    async def main() -> None:
        core = Minibase.from_config(config)
        await core.start()
        try:
            seen: list[tuple[Any, str | None, str]] = []

            async def db(event: dict[str, Any], caller: Caller | None, rid: str, base_url: str | None) -> Any:
                seen.append((event.get("op"), caller.uid if caller else None, rid))
                return {"swapped": event.get("id")}

            core.functions.add_builtin(FunctionSpec("db", db, True, None, True, builtin=True))
            login = await core.invoke("session", {"authCode": "dev:alice"}, None, "r1")
            sid, uid = login.value["sessionId"], login.value["user"]["uid"]
            assert await core.invoke("db", {"op": "get", "id": "a", "sid": sid}, None, "r2") == {
                "swapped": "a"
            }
            got = await core.invoke("readThrough", {"id": "b", "sid": sid}, None, "r3")
            assert got == {"swapped": "b"}
            assert seen == [("get", uid, "r2"), ("get", uid, "r3")]

            caller = await core.caller_from_session_id(sid)
            other = (await core.invoke("session", {"authCode": "dev:bob"}, None)).value["sessionId"]
            for name in ("db", "readThrough"):
                with pytest.raises(PermissionDenied):
                    await core.invoke(name, {"id": "a", "sid": other}, caller)
                with pytest.raises(Unauthenticated):
                    await core.invoke(name, {"id": "a", "sid": 5}, None)
            with pytest.raises(Unauthenticated, match="log in to call readThrough"):
                await core.invoke("readThrough", {"id": "a"}, None)
            with pytest.raises(NotFound):
                await core.invoke("nothing", {}, caller)
            assert len(seen) == 2
        finally:
            await core.stop()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("max_document", "inline"), [(None, True), (1024 * 1024, True), (1024 * 1024 + 1, False)]
)
def test_sqlite_queries_try_the_loop_only_while_documents_are_at_most_1_mib(
    make_config: Callable[..., Config], max_document: int | None, inline: bool
) -> None:
    raw = base_raw()
    if max_document is not None:
        raw.setdefault("limits", {})["max_document"] = max_document
    store = Minibase.from_config(make_config(raw)).store
    assert store.inline_queries is inline  # type: ignore[attr-defined]
