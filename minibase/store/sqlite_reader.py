"""The store's read connections, and the read transaction the reads of one loop step share.

A read on its own is a transaction of its own: SQLite then takes and drops the database's
shared lock and a WAL read mark around every statement, four ``fcntl`` calls, which cost
more than the lookup itself (measured: 3.3 µs for a key read alone, 1.0 µs inside a
transaction). On an event loop the reads of one loop step therefore share one read
transaction (:func:`step_snapshot`): the first read of the step begins it, a callback
queued then ends it at the start of the next step.

Why this reads nothing stale: a read sees the database as of the step's first read, and
that is after the request it serves arrived (a request's code runs in a later step than
its arrival) and after every write it has been told of: a write's caller resumes through
a callback queued when the write committed; if that commit came after the snapshot began,
the callback was queued after the one that ends the snapshot, so the caller's next read
begins a fresh one. Threads (the reader pool) read in autocommit as before, and so does
code with no running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

from .sqlite_writer import BudgetedConnection, outage

__all__ = ["ReadConnection", "step_snapshot"]

log = logging.getLogger("minibase.sqlite")


class ReadConnection(BudgetedConnection):
    """A reader whose statements fail with Unavailable when SQLite cannot serve them now
    (locked past the busy timeout, disk failing): the reads' one place for that."""

    # The loop whose step this connection's open read transaction belongs to (None: none
    # open), and that snapshot's number (the callback ending it checks it is still its own).
    snapshot_loop: asyncio.AbstractEventLoop | None = None
    snapshot_number = 0

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as e:
            err = outage(e)
            if err is e:
                raise
            raise err from e


def step_snapshot(conn: ReadConnection) -> ReadConnection:
    """``conn``, inside the read transaction of the running loop's current step; with no
    running loop (a reader thread), in autocommit."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    current = conn.snapshot_loop
    if current is loop:
        return conn
    if current is not None:
        # Begun on a loop that stopped before its next step (or another loop now runs on
        # this thread): that snapshot is as old as the pause, end it.
        end_snapshot(conn, conn.snapshot_number)
    if loop is not None:
        conn.execute("BEGIN")  # deferred: the snapshot is taken by the first read
        conn.snapshot_loop = loop
        conn.snapshot_number = number = conn.snapshot_number + 1
        loop.call_soon(end_snapshot, conn, number)
    return conn


def end_snapshot(conn: ReadConnection, number: int) -> None:
    """End the step snapshot ``number`` of ``conn``, if it is still the open one."""
    if conn.snapshot_number != number or conn.snapshot_loop is None:
        return
    conn.snapshot_loop = None
    # sqlite3's own execute: a failure here has no request to answer with Unavailable.
    try:
        if conn.in_transaction:
            sqlite3.Connection.execute(conn, "COMMIT")
    except sqlite3.ProgrammingError:
        pass  # closed with the store: nothing left to end
    except sqlite3.Error as e:  # pragma: no cover - a read transaction's COMMIT does not fail
        log.warning("ending a read transaction failed: %s", e)
        with contextlib.suppress(sqlite3.Error):
            sqlite3.Connection.execute(conn, "ROLLBACK")
