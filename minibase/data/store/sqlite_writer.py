"""One SQLite writer thread with group commit.

Every write goes through one connection (``BEGIN IMMEDIATE``), so writes are serialized
and never hit ``SQLITE_BUSY`` among themselves. Jobs that queue up while a transaction
commits are run together in the next transaction, each inside its own SAVEPOINT (one
job's failure rolls back only that job), then committed with one fsync. A job's future
resolves only after COMMIT returned, so every acknowledged write is durable
(``synchronous=FULL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

log = logging.getLogger("minibase.sqlite")

_MAX_GROUP = 256  # jobs in one transaction; bounds the latency of the first one


class SQLiteWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._queue: queue.SimpleQueue[tuple[Job, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    t = threading.Thread(target=self._run, name="minibase-sqlite-writer", daemon=True)
                    t.start()
                    self._thread = t

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._ensure_started()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((job, fut))
        return await fut

    def close(self) -> None:
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    # ---------------------------------------------------------------- writer thread

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < _MAX_GROUP:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                self._commit_group(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _commit_group(self, conn: sqlite3.Connection, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _ in batch:
                conn.execute("SAVEPOINT job")
                try:
                    result = job(conn)
                except BaseException as e:  # the job's own error goes to its caller
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, e))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            log.error("sqlite commit failed: %s", e)
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            outcomes = [(False, e)] * len(batch)
        for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
            loop = fut.get_loop()
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody waits
                loop.call_soon_threadsafe(_settle, fut, ok, value)


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
