"""The reads of one loop step share one read transaction, and nothing reads stale for it:
a caller's next read sees its own write, another instance's write it was told of, and a
snapshot left by a loop that stopped is not reused."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from minibase.store.records import Key
from minibase.store.sqlite import SQLiteStore
from minibase.store.sqlite_reader import ReadConnection, step_snapshot
from minibase.store.writes import Put, Update

from .test_sqlite import run

KEY = Key("c", "u", "d")


async def version(store: SQLiteStore, key: Key = KEY) -> int | None:
    body = await store.get_document(key)
    return None if body is None else int(orjson.loads(body)["_version"])


def external_update(path: Path, key: Key = KEY) -> None:
    """Another process's write (as ``minibase`` commands or a second worker make them)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "UPDATE documents SET version = version + 1,"
            " body = json_set(body, '$._version', version + 1) WHERE collection = ? AND uid = ? AND id = ?",
            (key.collection, key.uid, key.id),
        )
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def busy_reader(store: SQLiteStore, key: Key = KEY) -> AsyncIterator[list[int]]:
    """A task reading in every loop step, so that a step snapshot is nearly always open
    (begun before whatever commits next); yields the list of its reads' count."""
    count = [0]

    async def spin() -> None:
        while True:
            await store.get_document(key)
            count[0] += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(spin())
    try:
        yield count
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_the_reads_of_one_loop_step_share_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "db"

    async def body(store: SQLiteStore) -> None:
        await store.write([Put(KEY, {"n": 1})], "t")
        await asyncio.sleep(0)
        assert await version(store) == 1
        conn = store._reader()
        assert conn.in_transaction  # the step's read transaction, begun by the first read
        external_update(path)
        # The same step: the same snapshot (the update came after the step's first read).
        assert await version(store) == 1
        await asyncio.sleep(0)  # the next step: a new snapshot
        assert not conn.in_transaction or conn.snapshot_number > 1
        assert await version(store) == 2

    run(path, body)


def test_a_caller_reads_its_own_write_while_snapshots_are_open(tmp_path: Path) -> None:
    """The write commits while another task's step snapshot is open (begun before the
    commit); the writer's caller resumes after that snapshot ended, and reads its write."""

    async def body(store: SQLiteStore) -> int:
        await store.write([Put(KEY, {"n": 0})], "t")
        async with busy_reader(store) as reads:
            for n in range(1, 101):
                await store.write([Update(KEY, lambda old: {"n": old["n"] + 1})], "t")
                assert await version(store) == n + 1
        return reads[0]

    assert run(tmp_path / "db", body) > 100  # the reader did read in between


def test_another_instances_write_is_seen_once_it_is_acknowledged(tmp_path: Path) -> None:
    """Two stores on one file (two workers): B's reads never miss what A acknowledged,
    though B keeps a step snapshot open almost all the time."""
    path = tmp_path / "db"

    async def body(a: SQLiteStore) -> None:
        b = SQLiteStore(path)
        await b.open()
        try:
            await a.write([Put(KEY, {"n": 0})], "t")
            async with busy_reader(b):
                for n in range(1, 101):
                    await a.write([Update(KEY, lambda old: {"n": old["n"] + 1})], "t")
                    assert await version(b) == n + 1
        finally:
            await b.close()

    run(path, body)


def test_a_snapshot_left_by_a_stopped_loop_is_not_reused(tmp_path: Path) -> None:
    path = tmp_path / "db"

    async def setup(store: SQLiteStore) -> None:
        await store.write([Put(KEY, {"n": 1})], "t")

    run(path, setup)
    conn = sqlite3.connect(path, isolation_level=None, factory=ReadConnection)
    select = "SELECT version FROM documents"
    seen: list[int] = []
    first = asyncio.new_event_loop()

    async def read_then_stop() -> None:
        seen.append(step_snapshot(conn).execute(select).fetchone()[0])
        first.stop()  # the loop stops before the step that would end the snapshot

    try:
        task = first.create_task(read_then_stop())
        first.run_forever()
        assert task.done()
        assert conn.in_transaction  # left open by the stopped loop
        external_update(path)
        # No running loop: autocommit, and the leftover snapshot is ended first.
        seen.append(step_snapshot(conn).execute(select).fetchone()[0])
        assert not conn.in_transaction
        external_update(path)

        async def read() -> int:
            return int(step_snapshot(conn).execute(select).fetchone()[0])

        seen.append(asyncio.run(read()))  # another loop on this thread
        assert seen == [1, 2, 3]
    finally:
        # The stopped loop's pending callback must not end a later snapshot.
        first.run_until_complete(asyncio.sleep(0))
        first.close()
        conn.close()


def test_ending_a_snapshot_of_a_closed_connection_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "db"
    run(path, lambda store: store.write([Put(KEY, {"n": 1})], "t"))
    errors: list[Any] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        conn = sqlite3.connect(path, isolation_level=None, factory=ReadConnection)
        step_snapshot(conn).execute("SELECT 1 FROM documents").fetchone()
        conn.close()  # as the store's close does, before the step ends
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert errors == []


def test_reads_on_a_thread_are_in_autocommit(tmp_path: Path) -> None:
    path = tmp_path / "db"

    async def body(store: SQLiteStore) -> list[bool]:
        await store.write([Put(KEY, {"n": 1})], "t")
        return await store.run_read(lambda conn: [conn.in_transaction])

    assert run(path, body) == [False]
