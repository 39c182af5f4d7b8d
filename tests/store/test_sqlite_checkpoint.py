"""WAL checkpoints off the write path: commits never checkpoint, a thread does, the WAL stays
bounded, and a failing checkpoint loses nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from minibase.store.records import Key
from minibase.store.sqlite import SQLiteStore
from minibase.store.sqlite_checkpoint import wal_frames
from minibase.store.writes import Put

from .test_sqlite import run as run_store
from .test_sqlite_reader import busy_reader

PAGES = 16  # the checkpoint mark in these tests (SQLite's is 1,000)


def run(path: Path, body: Callable[[SQLiteStore], Awaitable[Any]]) -> Any:
    """``body`` on an open store whose checkpoint mark is :data:`PAGES`."""

    async def marked(store: SQLiteStore) -> Any:
        assert store._checkpointer is not None
        store._checkpointer.pages = PAGES
        return await body(store)

    return run_store(path, marked)


async def settle(store: SQLiteStore, runs: int) -> None:
    """Until the checkpointer has run ``runs`` times and is idle (5 s at most)."""
    cp = store._checkpointer
    assert cp is not None
    deadline = time.monotonic() + 5
    while cp.runs < runs or not cp.wait(0):
        assert time.monotonic() < deadline, f"{cp.runs} checkpoints, wanted {runs}"
        await asyncio.sleep(0.01)


def frames_by_sqlite(path: Path) -> int:
    """The WAL's frames as SQLite counts them (a PASSIVE checkpoint's second column)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def test_commits_leave_the_wal_and_the_checkpointer_copies_it(tmp_path: Path) -> None:
    path = tmp_path / "db"
    marker = b"checkpointed-marker-7f3a"

    async def body(store: SQLiteStore) -> None:
        auto: list[int] = []
        await store._writer.run(lambda c: auto.append(c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]))
        assert auto == [0]  # COMMIT never checkpoints
        await store.write([Put(Key("c", "u", "m"), {"text": marker.decode()})], "t")
        assert marker not in path.read_bytes()  # in the WAL only
        assert store._checkpointer is not None and store._checkpointer.runs == 0
        n = 0
        while store._checkpointer.runs == 0:
            await store.write([Put(Key("c", "u", f"d{n}"), {"text": "x" * 2000})], "t")
            n += 1
            await asyncio.sleep(0)
            assert n < 500, "no checkpoint started"
        await settle(store, 1)
        assert marker in path.read_bytes()  # copied into the database file

    run(path, body)


async def longest_wal(store: SQLiteStore, path: Path) -> tuple[int, int]:
    """300 commits of about 2 frames each: the longest WAL seen (frames), and how many
    checkpoints ran."""
    assert store._checkpointer is not None
    longest = 0
    shm: int | None = None
    try:
        for n in range(300):
            await store.write([Put(Key("c", "u", f"d{n % 50}"), {"text": "x" * 2000, "n": n})], "t")
            if shm is None:
                shm = os.open(f"{path}-shm", os.O_RDONLY)
            longest = max(longest, wal_frames(shm))
    finally:
        if shm is not None:
            os.close(shm)
    await settle(store, 1)
    return longest, store._checkpointer.runs


def test_the_wal_stays_bounded(tmp_path: Path) -> None:
    """Under steady writes: without the second pass under the lock the WAL never started
    over (the next transaction had always begun before a pass ended) and grew past 1,000
    frames in these 300 commits."""
    path = tmp_path / "db"
    longest, runs = run(path, lambda store: longest_wal(store, path))
    assert runs >= 5
    assert longest < 300, longest


def test_the_wal_stays_bounded_under_loop_reads(tmp_path: Path) -> None:
    """The same with a task reading in every loop step: its step snapshots (read
    transactions: store/sqlite_reader.py) hold a WAL read mark almost all the time, and
    the WAL must still start over."""
    path = tmp_path / "db"

    async def body(store: SQLiteStore) -> tuple[int, int, int]:
        async with busy_reader(store, Key("c", "u", "d0")) as reads:
            longest, runs = await longest_wal(store, path)
        return longest, runs, reads[0]

    longest, runs, reads = run(path, body)
    assert reads > 300
    assert runs >= 5
    assert longest < 300, longest


def test_wal_frames_reads_what_sqlite_counts(tmp_path: Path) -> None:
    path = tmp_path / "db"

    async def body(store: SQLiteStore) -> None:
        assert store._checkpointer is not None
        store._checkpointer.pages = 10**9  # no checkpoint here
        for n in range(5):
            await store.write([Put(Key("c", "u", f"d{n}"), {"n": n})], "t")
        shm = os.open(f"{path}-shm", os.O_RDONLY)
        try:
            ours = wal_frames(shm)
        finally:
            os.close(shm)
        assert ours > 0
        assert ours == frames_by_sqlite(path)

    run(path, body)


def test_a_failing_checkpoint_is_logged_and_writes_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(store: SQLiteStore) -> int:
        cp = store._checkpointer
        assert cp is not None
        broken = sqlite3.connect(":memory:")
        broken.close()
        cp._conn = broken  # every checkpoint fails: "Cannot operate on a closed database"
        for n in range(60):
            await store.write([Put(Key("c", "u", f"d{n}"), {"text": "x" * 2000})], "t")
        assert cp.wait(5)
        assert cp.runs == 0
        rows = await store.run_read(lambda c: c.execute("SELECT count(*) FROM documents").fetchone()[0])
        return int(rows)

    with caplog.at_level(logging.WARNING, logger="minibase.sqlite"):
        assert run(tmp_path / "db", body) == 60
    assert any("WAL checkpoint" in r.getMessage() for r in caplog.records)


def test_a_checkpoint_stuck_on_the_lock_does_not_hold_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process hung amid a write keeps the lock: the second pass waits for it, in a
    thread that neither close nor the process's exit waits for past CLOSE_WAIT."""
    import fcntl

    from minibase.store import sqlite_checkpoint
    from minibase.store.sqlite_checkpoint import Checkpointer

    monkeypatch.setattr(sqlite_checkpoint, "CLOSE_WAIT", 0.2)
    path = tmp_path / "db"
    fd = os.open(f"{path}-wlock", os.O_RDWR | os.O_CREAT, 0o600)
    held: list[Checkpointer] = []

    async def body(store: SQLiteStore) -> None:
        cp = store._checkpointer
        assert cp is not None
        cp.pages = 10**9
        for n in range(5):
            await store.write([Put(Key("c", "u", f"d{n}"), {"n": n})], "t")
        fcntl.flock(fd, fcntl.LOCK_EX)  # the hung process
        cp.pages = 1
        cp.after_commit()
        assert not cp.wait(0.3)  # the second pass waits for the lock
        held.append(cp)

    try:
        with caplog.at_level(logging.WARNING, logger="minibase.sqlite"):
            start = time.monotonic()
            run(path, body)  # closes the store
            assert time.monotonic() - start < 5
        assert any("still waiting for the write lock" in r.getMessage() for r in caplog.records)
        assert held[0]._running is not None and held[0]._running.daemon
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert held[0].wait(5)  # the lock free, it finishes
    held[0].close()  # and now closes what it kept
    assert held[0]._conn is None
