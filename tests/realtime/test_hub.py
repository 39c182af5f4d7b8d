"""Across instances: two servers (two cores, each with its own store, connections and hub) on
one database. On PostgreSQL the writer's commit NOTIFYs the other instance; on SQLite the
other instance finds the write by polling the outbox (as `serve --workers N` processes
sharing one file do). Either way a write through one reaches the other's watchers, once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from minibase.config import Config
from minibase.realtime.hub import POLL
from tests.realtime.conftest import Client, keys, login, plain, quiet, realtime_config, started


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_write_on_one_instance_reaches_the_watchers_of_another(
    backend: str, make_config: Callable[..., Config], request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    config = realtime_config(make_config, backend, url)

    async def main() -> None:
        one = await started(config)
        two = await started(config)
        try:
            _, alice_one = await login(one, "alice")
            alice_two = await two.caller_from_session_id((await login(two, "alice"))[0])
            watcher = Client(one, alice_one)
            await watcher.send(type="subscribe", id="w", collection="items", orderBy=[["n", "asc"]])
            await quiet([watcher])
            latencies = []
            for i in range(5):
                start = time.monotonic()
                await two.invoke(
                    "db", {"op": "put", "collection": "items", "obj": {"id": f"d{i}", "n": i}}, alice_two
                )
                while len(watcher.docs["w"]) < i + 1:
                    assert time.monotonic() - start < 5, "the other instance's write never arrived"
                    await asyncio.sleep(0.005)
                latencies.append(time.monotonic() - start)
            await two.invoke("db", {"op": "remove", "collection": "items", "id": "d0"}, alice_two)
            await quiet([watcher])
            page = await one.invoke(
                "db", {"op": "query", "collection": "items", "orderBy": [["n", "asc"]]}, alice_one
            )
            assert keys(watcher.docs["w"]) == keys(plain(page.data))
            changes = [c for f in watcher.frames if f["type"] == "changes" for c in f["docChanges"]]
            assert [c["dataType"] for c in changes] == ["add"] * 5 + ["remove"]  # each once
            # NOTIFY wakes at once; polling finds it within a poll (and the machine's load).
            assert max(latencies) < (1.0 if backend == "postgres" else POLL + 1.0), latencies
            await watcher.close()
        finally:
            await one.stop()
            await two.stop()

    asyncio.run(main())
