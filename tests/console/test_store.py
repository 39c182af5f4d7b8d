"""The console's store and export/import on both SQL backends (real SQLite, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import functools
import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from minibase.auth.providers.base import Identity
from minibase.config import Config
from minibase.console.api import Console
from minibase.console.transfer import export_stream, import_stream
from minibase.core import Minibase
from minibase.errors import InvalidArgument
from minibase.store.records import Key
from minibase.store.writes import Insert
from tests.support.config import base_raw


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return "sqlite:///minibase.db"


@pytest.fixture
def configure(tmp_path: Path, database_url: str) -> Callable[[str], Config]:
    from minibase.config import parse_config

    def make(data: str) -> Config:
        return parse_config(
            base_raw(database={"url": database_url}), data_dir=tmp_path / data, base_dir=tmp_path, environ={}
        )

    return make


async def _seed(core: Minibase) -> dict[str, str]:
    uids = {}
    for name, unionid in (("alice", "union-a"), ("bob", None), ("alfred", None)):
        uid, _ = await core.store.upsert_identity(Identity("dev", "dev", name, unionid), f"u_{name}", 1000.0)
        uids[name] = uid
    uids["wx"], _ = await core.store.upsert_identity(
        Identity("wechat", "wx1", "openid-w", "union-w"), "u_wx", 1001.0
    )
    ops = [
        Insert(Key("todo_list", uids["alice"], f"t{i}"), {"title": f"todo {i}", "n": i, "tags": ["a", "é"]})
        for i in range(5)
    ]
    ops.append(Insert(Key("notes", uids["bob"], "n1"), {"text": "hello", "nested": {"x": 1.5, "y": None}}))
    await core.store.write(ops, "2026-01-01T00:00:00.000Z")
    await core.store.set_user_disabled(uids["bob"], True)
    return uids


async def _export(console: Console) -> bytes:
    return b"".join([c async for c in export_stream(console.store, gzip=True)])


async def _chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):  # small chunks: lines and gzip members split anywhere
        yield data[i : i + size]


async def _start(config: Config) -> Minibase:
    core = Minibase.from_config(config)
    await core.start()
    return core


def sync(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async test in its own event loop (the suite has no async plugin)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return run


@sync
async def test_find_users_by_uid_subject_prefix_unionid_phone_and_provider(
    configure: Callable[[str], Config],
) -> None:
    core = await _start(configure("data"))
    try:
        uids = await _seed(core)
        assert core.platform.store is not None  # from_config gives the platform the store's tables
        await core.platform.store.set_phone(uids["alfred"], "+8613800000000", 1.0)
        console = Console(core)
        await console.ready()

        def found(users: list[dict[str, Any]]) -> list[str]:
            return sorted(u["uid"] for u in users)

        assert found(await console.find_users(uids["bob"], None)) == [uids["bob"]]
        assert found(await console.find_users("alice", None)) == [uids["alice"]]
        assert found(await console.find_users("al", None)) == sorted([uids["alice"], uids["alfred"]])
        assert found(await console.find_users("union-w", None)) == [uids["wx"]]
        assert found(await console.find_users("union-a", None)) == [uids["alice"]]
        assert found(await console.find_users("openid-w", None)) == [uids["wx"]]
        assert found(await console.find_users("+8613800000000", None)) == [uids["alfred"]]
        assert found(await console.find_users("", "wechat")) == [uids["wx"]]
        assert found(await console.find_users("alice", "wechat")) == []
        assert found(await console.find_users("%", None)) == []  # LIKE's wildcards are literal
        assert found(await console.find_users("_", None)) == []
        [bob] = await console.find_users("bob", None)
        assert bob["disabled"] is True and bob["identities"] == [{"provider": "dev", "subject": "bob"}]
        user = await console.user(uids["alfred"])
        assert user["phone"] == "+8613800000000"
        counts = await console.store.counts()
        assert counts == {"users": 4, "disabledUsers": 1, "documents": {"notes": 1, "todo_list": 5}}
    finally:
        await core.stop()


@sync
async def test_admins_and_their_sessions(configure: Callable[[str], Config]) -> None:
    core = await _start(configure("data"))
    try:
        console = Console(core)
        await console.create_admin("Ops@Example.com", "a long enough password")
        with pytest.raises(InvalidArgument, match="exists already"):
            await console.create_admin("ops@example.com", "another long password")
        with pytest.raises(InvalidArgument, match="at least 10"):
            await console.create_admin("x@example.com", "short")
        with pytest.raises(InvalidArgument, match="email"):
            await console.create_admin("not-an-email", "a long enough password")
        assert [a["email"] for a in await console.admins()] == ["ops@example.com"]
        token, _ = await console.login("ops@example.com", "a long enough password", "127.0.0.1", "r1")
        assert (await console.authenticate(token)).email == "ops@example.com"
        await console.set_password("ops@example.com", "a brand new password")
        from minibase.errors import Unauthenticated

        with pytest.raises(Unauthenticated):  # a new password ends the old sessions
            await console.authenticate(token)
        token, _ = await console.login("ops@example.com", "a brand new password", "127.0.0.1", "r2")
        await console.remove_admin("ops@example.com")
        with pytest.raises(Unauthenticated):
            await console.authenticate(token)
    finally:
        await core.stop()


@sync
async def test_export_import_round_trip_is_byte_identical(configure: Callable[[str], Config]) -> None:
    source = await _start(configure("a"))
    target = await _start(configure("b")) if "sqlite" in source.config.database.url else None
    try:
        await _seed(source)
        first = await _export(Console(source))
        lines = gzip.decompress(first).splitlines()
        assert len(lines) == 1 + 4 + 4 + 6
        if target is None:  # PostgreSQL: one database per test; import into it after emptying it
            console = Console(source)
            await console.ready()
            for table in ("documents", "sessions", "identities", "users"):
                await console.store.execute(f"DELETE FROM {table}")  # type: ignore[attr-defined]  # noqa: S608
            target = source
        counts = await import_stream(Console(target).store, _chunks(first))
        assert counts == {"users": 4, "identities": 4, "documents": 6}
        second = await _export(Console(target))
        assert second == first
        # Importing again keeps what is there.
        await import_stream(Console(target).store, _chunks(gzip.decompress(first)))
        assert await _export(Console(target)) == first
        doc = await target.store.get_document(Key("notes", "u_bob", "n1"))
        assert doc is not None and b'"x":1.5' in doc.replace(b" ", b"")
    finally:
        await source.stop()
        if target is not None and target is not source:
            await target.stop()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b'{"minibase": "other"}\n', "line 1"),
        (b'{"minibase": "export", "version": 1}\n{"type": "user"}\n', "line 2"),
        (b'{"minibase": "export", "version": 1}\nnot json\n', "line 2: not JSON"),
        (b'{"minibase": "export", "version": 1}\n{"type": "spaceship"}\n', "unknown type"),
        (
            b'{"minibase": "export", "version": 1}\n{"type": "document", "collection": "c", "uid": "u",'
            b' "id": "i", "version": 0, "created": "x", "updated": "y", "body": {}}\n',
            "version",
        ),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
    ],
)
@sync
async def test_bad_imports_are_refused_with_the_line(tmp_path: Path, data: bytes, message: str) -> None:
    from minibase.console.store import SQLiteConsoleStore

    store = SQLiteConsoleStore(tmp_path / "x.db")
    with pytest.raises(InvalidArgument, match=message):
        await import_stream(store, _chunks(data))
