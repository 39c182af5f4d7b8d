"""A watch never shows what a query would not: the authorization matrix's rules and callers
(tests/data/test_auth_matrix.py), on SQLite and PostgreSQL. Documents are written by the
server itself (no rules) while the watches are open; after each phase every watcher's copy,
built from the frames alone, is exactly the documents the rule lets it read (the matrix's
own table) and what a ``query`` by the same caller returns. A document that stops passing
the rule (unshared, a member dropped) is a ``remove`` for that watcher. Dead sessions cannot
open a watch at all."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from minibase.config import Config
from minibase.core import Minibase
from minibase.errors import MinibaseError
from minibase.store.records import Key
from minibase.store.writes import Put, Remove
from tests.data.test_auth_matrix import RULES, denied_outright, may
from tests.realtime.conftest import Client, login, plain, quiet, realtime_config, started

COLLECTIONS = {f"m_{name}": {"read": text, "write": text} for name, text in RULES.items()}


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, make_config: Callable[..., Config]) -> Config:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return realtime_config(make_config, request.param, url, collections=COLLECTIONS)


async def write(core: Minibase, ops: list[Any]) -> None:
    await core.store.write(ops, "2026-01-01T00:00:00.000Z")


def test_every_watcher_sees_exactly_what_its_rule_allows(config: Config) -> None:
    async def main() -> None:
        core = await started(config)
        try:
            (_, alice), (_, bob) = await login(core, "alice"), await login(core, "bob")
            callers = {"owner": alice, "other": bob, "anon": None}
            clients = {who: Client(core, caller) for who, caller in callers.items()}
            for client in clients.values():
                for name in RULES:
                    await client.send(type="subscribe", id=name, collection=f"m_{name}", orderBy=["id"])
            await quiet(list(clients.values()))
            for who, client in clients.items():
                uid = callers[who].uid if callers[who] is not None else None
                for name in RULES:
                    refused = denied_outright(name, uid)
                    got = client.errors.get(name, {}).get("code")
                    assert got == refused, (who, name)

            docs: dict[tuple[str, str, str], dict[str, Any]] = {}  # (collection, uid, id) -> fields

            async def put(col: str, owner: Any, doc_id: str, **fields: Any) -> None:
                docs[(col, owner.uid, doc_id)] = {"id": doc_id, "uid": owner.uid, **fields}
                await write(core, [Put(Key(col, owner.uid, doc_id), fields)])

            async def check(phase: str) -> None:
                await quiet(list(clients.values()))
                for who, client in clients.items():
                    caller = callers[who]
                    uid = caller.uid if caller is not None else None
                    for name in RULES:
                        if denied_outright(name, uid):
                            assert name not in client.docs
                            continue
                        col = f"m_{name}"
                        allowed = sorted(
                            (d["uid"], d["id"])
                            for (c, _, _), d in docs.items()
                            if c == col and may(name, d, uid)
                        )
                        seen = sorted((d["uid"], d["id"]) for d in client.docs[name])
                        assert seen == allowed, (phase, who, name)
                        page = await core.invoke("db", {"op": "query", "collection": col}, caller)
                        assert seen == sorted((d["uid"], d["id"]) for d in plain(page.data)), (
                            phase,
                            who,
                            name,
                        )

            for name in RULES:
                col = f"m_{name}"
                for owner, other in ((alice, bob), (bob, alice)):
                    await put(col, owner, "private")
                    await put(col, owner, "shared", shared=True)
                    await put(col, owner, "member", members=[other.uid])
            await check("created")
            for name in RULES:  # what was visible stops being so, and the other way round
                col = f"m_{name}"
                for owner in (alice, bob):
                    await put(col, owner, "private", shared=True)
                    await put(col, owner, "shared", shared=False)
                    await put(col, owner, "member", members=[])
            await check("flipped")
            removes = {
                (c["uid"], c["id"])
                for f in clients["other"].frames
                if f["type"] == "changes" and f["id"] == "shared"
                for c in f["docChanges"]
                if c["dataType"] == "remove"
            }
            assert (alice.uid, "shared") in removes  # unshared: gone for bob, by a remove
            for name in RULES:
                col = f"m_{name}"
                for owner in (alice, bob):
                    docs.pop((col, owner.uid, "private"))
                    await write(core, [Remove(Key(col, owner.uid, "private"))])
            await check("removed")
            for client in clients.values():
                await client.close()
        finally:
            await core.stop()

    asyncio.run(main())


def test_dead_sessions_cannot_watch(config: Config) -> None:
    async def main() -> None:
        core = await started(config)
        try:
            sid, _ = await login(core, "dora")
            await core.invoke("session", {"op": "logout", "sessionId": sid}, None)
            sid2, caller2 = await login(core, "dave")
            assert await core.store.set_user_disabled(caller2.uid, True)
            for dead in (sid, sid2):
                client = Client(core)
                await client.send(type="auth", sessionId=dead)
                assert isinstance(client.conn.error, MinibaseError)
                assert client.conn.error.code == "Unauthenticated" and client.conn.close_code == 4401
                await client.close()
        finally:
            await core.stop()

    asyncio.run(main())
