"""A connection's outgoing frames are bounded: a client that stops reading is dropped with a
clear error (its frames freed), and the watches of others go on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest

from minibase.config import Config
from minibase.realtime import connection
from minibase.realtime.connection import Connection
from tests.realtime.conftest import Client, login, quiet, realtime_config, started


def test_a_client_that_stops_reading_is_dropped_not_buffered(
    make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "MAX_FRAMES", 20)
    config = realtime_config(make_config, "sqlite", None)

    async def main() -> None:
        core = await started(config)
        assert core.realtime is not None
        try:
            _, alice = await login(core, "alice")
            slow = Connection(core.realtime, None)  # nobody reads its frames
            core.realtime.connect(slow)
            slow.adopt(alice, None)
            await slow.receive(b'{"type": "subscribe", "id": "w", "collection": "items"}')
            reader = Client(core, alice)
            await reader.send(type="subscribe", id="w", collection="items")
            for i in range(40):
                await core.invoke("db", {"op": "put", "collection": "items", "obj": {"id": f"d{i}"}}, alice)
            await quiet([reader])
            assert slow.error is not None and slow.error.code == "Unavailable"
            assert "fell behind" in slow.error.message and slow.close_code == 4503
            assert slow not in core.realtime.connections and slow.watches == {}
            frames = [orjson.loads(f) async for f in slow.frames()]
            assert [f["type"] for f in frames] == ["error"]  # what waited was dropped
            assert len(reader.docs["w"]) == 40  # the others' watches went on
            await reader.close()
        finally:
            await core.stop()

    asyncio.run(main())
