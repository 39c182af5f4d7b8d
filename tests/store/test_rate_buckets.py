"""Rate-limit buckets in each store: atomic across concurrent callers and across instances
(two store objects on one database stand for two processes), refilled by time, swept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from minibase.store.protocols import Store

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    if request.param == "sqlite":
        from minibase.store.sqlite import SQLiteStore

        return lambda: SQLiteStore(tmp_path / "db")
    url = str(request.getfixturevalue("pg_url"))
    from minibase.store.postgres import PostgresStore

    return lambda: PostgresStore(url)


def run(make: Callable[[], Store], n: int, body: Callable[..., Awaitable[Any]]) -> Any:
    async def main() -> Any:
        stores = [make() for _ in range(n)]
        for s in stores:
            await s.open()
        try:
            return await body(*stores)
        finally:
            for s in stores:
                await s.close()

    return asyncio.run(main())


def test_concurrent_takes_never_exceed_the_burst(make_store: Callable[[], Store]) -> None:
    async def body(a: Store, b: Store) -> None:
        now = 1000.0
        results = await asyncio.gather(
            *(s.take_tokens("k", 0.001, 10, 1, now) for _ in range(15) for s in (a, b))
        )
        assert sum(g for g, _ in results) == 10
        refused = [w for g, w in results if g == 0]
        assert len(refused) == 20 and all(w > 900 for w in refused)  # ~1000 s for a token at 0.001/s

    run(make_store, 2, body)


def test_buckets_refill_and_are_separate(make_store: Callable[[], Store]) -> None:
    async def body(a: Store, b: Store) -> None:
        assert await a.take_tokens("x", 2.0, 4, 4, 0.0) == (4, 0.0)
        assert (await b.take_tokens("x", 2.0, 4, 1, 0.0))[0] == 0  # the other instance sees it empty
        assert (await b.take_tokens("y", 2.0, 4, 1, 0.0))[0] == 1  # another key is its own bucket
        assert (await b.take_tokens("x", 2.0, 4, 4, 1.0))[0] == 2  # 1 s at 2/s
        granted, wait = await a.take_tokens("x", 2.0, 4, 1, 1.0)
        assert granted == 0 and wait == pytest.approx(0.5)

    run(make_store, 2, body)


def test_lease_takes_up_to_want(make_store: Callable[[], Store]) -> None:
    async def body(a: Store) -> None:
        assert (await a.take_tokens("z", 1.0, 25, 10, 0.0))[0] == 10
        assert (await a.take_tokens("z", 1.0, 25, 10, 0.0))[0] == 10
        assert (await a.take_tokens("z", 1.0, 25, 10, 0.0))[0] == 5

    run(make_store, 1, body)


def test_refilled_buckets_are_swept(make_store: Callable[[], Store], monkeypatch: pytest.MonkeyPatch) -> None:
    import minibase.store.postgres as pg_mod
    import minibase.store.sqlite as sqlite_mod

    monkeypatch.setattr(sqlite_mod, "_SWEEP_EVERY", 3)
    monkeypatch.setattr(pg_mod, "_SWEEP_EVERY", 3)

    async def body(a: Store) -> None:
        await a.take_tokens("old", 1.0, 2, 1, 0.0)  # full again at t=1
        await a.take_tokens("new", 1.0, 2, 1, 100.0)
        assert await _rows(a) == {"old", "new"}
        await a.take_tokens("new", 1.0, 2, 1, 100.0)  # third write sweeps rows full before t=100
        assert await _rows(a) == {"new"}
        # "old" starts over as a new, full bucket; "new" kept its state (empty).
        assert (await a.take_tokens("old", 1.0, 2, 2, 100.0))[0] == 2
        assert (await a.take_tokens("new", 1.0, 2, 2, 100.0))[0] == 0

    run(make_store, 1, body)


async def _rows(store: Store) -> set[str]:
    from minibase.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        return {r[0] for r in store._reader().execute("SELECT key FROM rate_buckets")}
    async with store._conn() as conn:  # type: ignore[attr-defined]
        return {r[0] for r in await conn.fetch("SELECT key FROM rate_buckets")}
