"""The SQLite store keeps the event loop free and bounds every statement's time.

Issue 18: a count with many ``$contains`` over a large array held the loop for seconds
(every other request waited), and a batch of updates of a 1 MB document for 1.7 s. Each
test here runs the costly work while a ticker task measures how often the loop gets to
run; without the fix the ticker does not run at all until the work is done.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from minibase.data.filters import TRUE, Contains, In, Or, OrderKey
from minibase.data.patch import parse_patch
from minibase.data.query import parse_where
from minibase.errors import DeadlineExceeded, InvalidArgument
from minibase.store import sqlite as sqlite_mod
from minibase.store.records import Key
from minibase.store.sqlite import SQLiteStore
from minibase.store.sqlite_txn import MAX_VARIABLES
from minibase.store.writes import Get, Put, Update
from tests.support.ticker import Ticker

BIG = [0] * 500_000  # about 1 MB of JSON, as in the report
ABSENT = Or(tuple(Contains(("arr",), v) for v in range(1, 11)))  # 10 full scans a document


def run(
    path: Path,
    body: Callable[[SQLiteStore], Awaitable[Any]],
    *,
    query_time: float = 3.0,
    inline_queries: bool = True,
) -> Any:
    async def main() -> Any:
        store = SQLiteStore(path, query_time=query_time, inline_queries=inline_queries)
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def _store_big(store: SQLiteStore, n: int) -> None:
    for i in range(n):
        await store.write([Put(Key("c", "u", f"d{i}"), {"arr": BIG, "n": 0})], "t")


def test_a_costly_count_runs_off_the_loop_and_stops_at_the_budget(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        await _store_big(store, 6)
        async with Ticker() as ticker:
            with pytest.raises(DeadlineExceeded) as info:
                await store.count("c", ABSENT)
        assert info.value.details == {"limit": "limits.query_time", "max": 0.5}
        assert 0.5 <= ticker.elapsed < 3, ticker.elapsed  # stopped near the budget
        ticker.assert_free()
        # The reader that was stopped is fine for the next query.
        assert await store.count("c", TRUE) == 6

    run(tmp_path / "db", body, query_time=0.5)


def test_a_costly_query_within_the_budget_answers_without_holding_the_loop(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        await _store_big(store, 2)
        hit = Or((Contains(("arr",), 5), Contains(("arr",), 0)))
        async with Ticker() as ticker:
            rows = await store.query("c", hit, (), 10, None)
            n = await store.count("c", ABSENT)
        assert len(rows) == 2 and n == 0
        ticker.assert_free()

    run(tmp_path / "db", body, query_time=60)


def test_point_reads_stay_on_the_loop(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", "a"), {"x": 1})], "t")
        assert await store.get_document(Key("c", "u", "a")) is not None
        assert await store.get_document(Key("c", "u", "a"), Contains(("x",), 1)) is None
        assert await store.session_by_id("nope") is None
        assert store._pool is None  # no reader thread was needed

    run(tmp_path / "db", body)


def test_batches_of_updates_of_large_documents_run_off_the_loop(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        await _store_big(store, 4)
        patch = parse_patch({"inc": {"n": 1}})
        # Four users' batches of 10 updates of a 1 MB document each (the report's batch
        # held the loop 1.7 s), and a small write queued with them.
        batches = [[Update(Key("c", "u", f"d{i}"), patch.apply) for _ in range(10)] for i in range(4)]
        async with Ticker() as ticker:
            results = await asyncio.gather(
                *(store.write(ops, "t2") for ops in batches), store.write([Put(Key("c", "u", "s"), {})], "t2")
            )
        assert results[-1] == [None]
        for i in range(4):
            [doc] = await store.write([Get(Key("c", "u", f"d{i}"))], "t3")
            assert b'"n":10' in doc and b'"_version":11' in doc
        ticker.assert_free()

    run(tmp_path / "db", body)


def test_a_slow_rule_check_in_a_write_stops_at_the_budget_and_spares_its_group(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        await _store_big(store, 1)
        key = Key("c", "u", "d0")
        # A rule with 10 array scans of a 1 MB document: longer than the 20 ms budget.
        slow = Update(key, parse_patch({"inc": {"n": 1}}).apply, rule=Or((*ABSENT.items, In(("n",), (0,)))))
        others = [store.write([Put(Key("c", "u", f"o{i}"), {"i": i})], "t") for i in range(20)]
        results = await asyncio.gather(store.write([slow], "t"), *others, return_exceptions=True)
        assert isinstance(results[0], DeadlineExceeded), results[0]
        assert results[1:] == [[None]] * 20  # the rest of the group committed
        assert await store.count("c", TRUE) == 21
        [doc] = await store.write([Get(key)], "t")
        assert b'"n":0' in doc  # the stopped update changed nothing

    run(tmp_path / "db", body, query_time=0.02)


def test_a_query_with_more_values_than_sqlite_binds_is_invalid_argument(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        huge = In(("n",), tuple(range(MAX_VARIABLES + 1)))
        for call in (
            store.query("c", huge, (), 10, None),
            store.count("c", huge),
            store.get_document(Key("c", "u", "a"), huge),
            store.write([Get(Key("c", "u", "a"), huge)], "t"),
        ):
            with pytest.raises(InvalidArgument) as info:
                await call
            assert info.value.details["max"] == MAX_VARIABLES
        # Just within the limit: answered.
        assert await store.count("c", In(("n",), tuple(range(MAX_VARIABLES - 1)))) == 0

    run(tmp_path / "db", body)


def test_the_largest_where_the_parser_allows_fits_sqlite_with_any_cursor(tmp_path: Path) -> None:
    # A cursor over 5 order keys repeats the where once per sort column (17 branches):
    # the parser's bounds keep that within SQLite's default variable limit.
    where = parse_where({f"f{i}": {"$in": list(range(100))} for i in range(10)})
    order = tuple(OrderKey((f"k{i}",)) for i in range(5))

    async def body(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", f"d{i}"), {"f0": 1}) for i in range(3)], "t")
        [first, *_] = await store.query("c", TRUE, order, 1, None)
        assert await store.query("c", where, order, 10, first[0]) == []

    run(tmp_path / "db", body)


def test_a_cheap_list_page_stays_on_the_loop(tmp_path: Path) -> None:
    """A list page is tried on the loop first, like a point read: no reader thread."""

    async def body(store: SQLiteStore) -> None:
        for i in range(30):
            await store.write([Put(Key("c", "u", f"d{i}"), {"n": i})], "t")
        rows = await store.query("c", parse_where({"n": {"$gte": 5}}), (OrderKey(("n",), True),), 20, None)
        assert len(rows) == 20
        assert store._pool is None and not store._slow_shapes

    run(tmp_path / "db", body)


def test_a_costly_query_shape_moves_to_a_thread_and_stays_there(tmp_path: Path) -> None:
    """Past INLINE_BUDGET on the loop, a query runs again on a reader thread, and its
    shape goes there at once from then on: the loop pays the budget once per shape."""

    async def body(store: SQLiteStore) -> None:
        await _store_big(store, 2)
        hit = Or((Contains(("arr",), 5), Contains(("arr",), 0)))
        on_loop: list[int] = []
        real = store._reader

        def reader() -> Any:
            if threading.current_thread() is threading.main_thread():
                on_loop.append(1)
            return real()

        store._reader = reader  # type: ignore[method-assign]
        assert len(await store.query("c", hit, (), 10, None)) == 2
        assert len(on_loop) == 1 and store._pool is not None and len(store._slow_shapes) == 1
        assert len(await store.query("c", hit, (), 10, None)) == 2
        assert len(on_loop) == 1  # the second run did not try the loop
        # Another filter is another shape (SQL text): it tries the loop again.
        assert await store.query("c", parse_where({"n": 0}), (), 10, None)
        assert len(on_loop) == 2
        # Remembered for SLOW_SHAPE_TTL only: then it tries the loop again (and, still
        # slow, is remembered anew).
        [(shape, found)] = store._slow_shapes.items()
        store._slow_shapes[shape] = found - sqlite_mod.SLOW_SHAPE_TTL - 1
        assert len(await store.query("c", hit, (), 10, None)) == 2
        assert len(on_loop) == 3
        assert store._slow_shapes[shape] > found

    run(tmp_path / "db", body, query_time=60)


def test_queries_go_to_a_thread_when_documents_may_be_huge(tmp_path: Path) -> None:
    """With ``inline_queries`` off (limits.max_document over 1 MiB) a query never runs on
    the loop: one JSON function on one such document could hold it for tens of ms."""

    async def body(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", "a"), {"n": 1})], "t")
        assert len(await store.query("c", TRUE, (), 10, None)) == 1
        assert store._pool is not None

    run(tmp_path / "db", body, inline_queries=False)
