"""The watch engine at the core, on SQLite and PostgreSQL: a client's copy built only from the
frames is always the result a ``query`` by the same caller gives, through random writes by
several users (windows that fill, overflow and drain, documents that enter and leave the
rule), and a resume continues a list exactly."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from minibase.config import Config
from minibase.core import Minibase
from tests.realtime.conftest import Client, keys, login, plain, quiet, realtime_config, started

BACKENDS = ["sqlite", "postgres"]

WATCHES: list[dict[str, Any]] = [
    {"collection": "items", "orderBy": [["n", "asc"]]},
    {"collection": "items", "where": {"tag": "x"}, "orderBy": [["n", "desc"]], "limit": 3},
    {"collection": "items", "orderBy": ["title"], "limit": 2},
    {"collection": "items", "where": {"n": {"$gte": 5}}, "limit": 4},
    {"collection": "notes", "orderBy": [["n", "asc"], ["title", "desc"]], "limit": 5},
]


@pytest.fixture(params=BACKENDS)
def config(request: pytest.FixtureRequest, make_config: Callable[..., Config]) -> Config:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return realtime_config(make_config, request.param, url)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def expected(core: Minibase, caller: Any, watch: dict[str, Any]) -> list[tuple[str, str, int]]:
    page = await core.invoke("db", {"op": "query", **watch, "limit": watch.get("limit", 1000)}, caller)
    return keys(plain(page.data))


async def random_writes(core: Minibase, callers: list[Any], rng: random.Random, n: int) -> None:
    for _ in range(n):
        caller = rng.choice(callers)
        collection = rng.choice(["items", "items", "notes"])
        doc_id = f"d{rng.randrange(8)}"
        roll = rng.random()
        fields = {
            "n": rng.randrange(10),
            "tag": rng.choice(["x", "y"]),
            "shared": rng.random() < 0.5,
            "title": rng.choice(["a", "b", "c"]),
        }
        if roll < 0.55:
            event = {"op": "put", "collection": collection, "obj": {"id": doc_id, **fields}}
        elif roll < 0.8:
            event = {
                "op": "update",
                "collection": collection,
                "id": doc_id,
                "set": {"n": fields["n"], "shared": fields["shared"]},
            }
        else:
            event = {"op": "remove", "collection": collection, "id": doc_id}
        try:
            await core.invoke("db", event, caller)
        except Exception as e:  # an update or remove of a document that is not there
            assert getattr(e, "code", None) == "NotFound", e


def test_frames_rebuild_the_query_result_through_random_writes(config: Config) -> None:
    async def main() -> None:
        core = await started(config)
        try:
            users = [await login(core, name) for name in ("alice", "bob", "carol")]
            callers = [c for _, c in users]
            clients = [Client(core, c) for c in callers[:2]]
            for client in clients:
                for i, w in enumerate(WATCHES):
                    await client.send(type="subscribe", id=f"w{i}", **w)
            rng = random.Random(14)
            for _ in range(8):
                await random_writes(core, callers, rng, 25)
                await quiet(clients)
                for client, caller in zip(clients, callers, strict=False):
                    assert client.errors == {}
                    for i, w in enumerate(WATCHES):
                        got = keys(client.docs[f"w{i}"])
                        assert got == await expected(core, caller, w), (caller.uid, w)
            for client in clients:
                await client.close()
        finally:
            await core.stop()

    run(main())


def test_a_resume_continues_the_list_with_only_what_changed(config: Config) -> None:
    async def main() -> None:
        core = await started(config)
        try:
            _, alice = await login(core, "alice")
            for i in range(6):
                await core.invoke(
                    "db", {"op": "put", "collection": "items", "obj": {"id": f"d{i}", "n": i}}, alice
                )
            watch = {"collection": "items", "orderBy": [["n", "asc"]], "limit": 4}
            first = Client(core, alice)
            await first.send(type="subscribe", id="w", **watch)
            await quiet([first])
            held, token = list(first.docs["w"]), first.token
            await first.close()  # the connection drops
            # While away: one changes, one leaves the window, one is new, one stays.
            await core.invoke(
                "db", {"op": "update", "collection": "items", "id": "d1", "set": {"t": 1}}, alice
            )
            await core.invoke("db", {"op": "remove", "collection": "items", "id": "d0"}, alice)
            await core.invoke("db", {"op": "put", "collection": "items", "obj": {"id": "e", "n": -1}}, alice)
            second = Client(core, alice)
            resume = {
                "token": token,
                "docs": [[d["uid"], d["id"], d["_created"], d["_version"]] for d in held],
            }
            await second.send(type="subscribe", id="w", resume=resume, **watch)
            await quiet([second])
            [frame] = [f for f in second.frames if f["type"] == "changes"]
            assert frame["init"] is False
            kinds = sorted((c["dataType"], c["id"]) for c in frame["docChanges"])
            # d2 and d3 are unchanged: not sent again; e takes the place d0 left.
            assert kinds == [("add", "e"), ("remove", "d0"), ("update", "d1")]
            second.docs["w"] = held
            from tests.realtime.conftest import apply_frame

            apply_frame(second.docs["w"], frame)
            assert keys(second.docs["w"]) == await expected(core, alice, watch)
            # A token past the replay window gets a fresh init.
            third = Client(core, alice)
            stale = {"token": "t1000", "docs": resume["docs"]}
            await third.send(type="subscribe", id="w", resume=stale, **watch)
            await quiet([third])
            [frame] = [f for f in third.frames if f["type"] == "changes"]
            assert frame["init"] is True and {c["dataType"] for c in frame["docChanges"]} == {"init"}
            assert keys(third.docs["w"]) == await expected(core, alice, watch)
            await second.close()
            await third.close()
        finally:
            await core.stop()

    run(main())
