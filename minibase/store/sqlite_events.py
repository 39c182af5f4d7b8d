"""The events' tables on the SQLite store: its one writer connection serializes them with
every other write of this process (and BEGIN IMMEDIATE with other processes)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..util.waits import wait_event
from .events import Change, Delivery, Route, change_from_row
from .sqlite import SQLiteStore

__all__ = ["SQLiteEvents"]

# Versions in schema_migrations, beside the store's own (1, 2, ...).
MIGRATIONS: list[tuple[int, str]] = [
    (
        1001,
        """
        CREATE TABLE webhook_notifications (
            source TEXT NOT NULL,
            nid TEXT NOT NULL,
            done INTEGER NOT NULL,
            until REAL NOT NULL,
            PRIMARY KEY (source, nid)
        ) WITHOUT ROWID;
        CREATE INDEX webhook_notifications_until ON webhook_notifications(until);
        CREATE TABLE schedule_runs (
            name TEXT NOT NULL,
            slot REAL NOT NULL,
            owner TEXT NOT NULL,
            started REAL NOT NULL,
            finished REAL,
            ok INTEGER,
            error TEXT,
            PRIMARY KEY (name, slot)
        ) WITHOUT ROWID;
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            op TEXT NOT NULL,
            collection TEXT NOT NULL,
            uid TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            old TEXT,
            new TEXT
        );
        CREATE INDEX outbox_at ON outbox(at);
        CREATE TABLE outbox_routes (
            target TEXT NOT NULL,
            collection TEXT NOT NULL,
            ops TEXT NOT NULL,
            queued INTEGER NOT NULL,
            PRIMARY KEY (target, collection)
        ) WITHOUT ROWID;
        CREATE TABLE outbox_pending (
            target TEXT NOT NULL,
            seq INTEGER NOT NULL,
            collection TEXT NOT NULL,
            uid TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL DEFAULT 0,
            owner TEXT,
            lease_until REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (target, seq)
        ) WITHOUT ROWID;
        CREATE INDEX outbox_pending_doc ON outbox_pending(target, collection, uid, doc_id, seq);
        CREATE INDEX outbox_pending_seq ON outbox_pending(seq);
        CREATE TRIGGER outbox_on_put BEFORE INSERT ON documents
        WHEN EXISTS (SELECT 1 FROM outbox_routes WHERE collection IN (NEW.collection, '*'))
        BEGIN
            INSERT INTO outbox (at, op, collection, uid, doc_id, old, new)
            SELECT (julianday('now') - 2440587.5) * 86400.0,
                   CASE WHEN d.body IS NULL THEN 'insert' ELSE 'update' END,
                   NEW.collection, NEW.uid, NEW.id, d.body, NEW.body
            FROM (SELECT (SELECT body FROM documents
                          WHERE collection = NEW.collection AND uid = NEW.uid AND id = NEW.id) AS body) d;
            INSERT INTO outbox_pending (target, seq, collection, uid, doc_id)
            SELECT r.target, o.seq, o.collection, o.uid, o.doc_id
            FROM outbox o JOIN outbox_routes r
              ON r.collection IN (o.collection, '*') AND r.queued AND instr(r.ops, o.op) > 0
            WHERE o.seq = last_insert_rowid();
        END;
        CREATE TRIGGER outbox_on_remove AFTER DELETE ON documents
        WHEN EXISTS (SELECT 1 FROM outbox_routes WHERE collection IN (OLD.collection, '*'))
        BEGIN
            INSERT INTO outbox (at, op, collection, uid, doc_id, old, new)
            VALUES ((julianday('now') - 2440587.5) * 86400.0, 'remove',
                    OLD.collection, OLD.uid, OLD.id, OLD.body, NULL);
            INSERT INTO outbox_pending (target, seq, collection, uid, doc_id)
            SELECT r.target, o.seq, o.collection, o.uid, o.doc_id
            FROM outbox o JOIN outbox_routes r
              ON r.collection IN (o.collection, '*') AND r.queued AND instr(r.ops, o.op) > 0
            WHERE o.seq = last_insert_rowid();
        END
        """,
    ),
]

_SELECT_CHANGE = "SELECT seq, at, op, collection, uid, doc_id, old, new FROM outbox"


class SQLiteEvents:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._wake = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    def _run(self, job: Any, durable: bool = True) -> Any:
        # The store's own writer: one connection serializes every write of this process.
        # Not durable: the dispatcher's bookkeeping (a lost claim or deletion only means a
        # delivery again), committed without its own fsync.
        return self.store._writer.run(job, durable=durable)

    def _read(self) -> sqlite3.Connection:
        return self.store._reader()

    async def open(self) -> None:
        # A trigger needs its tables in place before the writer starts: migrate on a
        # connection of our own, like the store (BEGIN IMMEDIATE serializes processes).
        conn = self.store._connect_writer()
        try:
            conn.execute("BEGIN IMMEDIATE")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version in done:
                    continue
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        finally:
            conn.close()
        # Writes through this process's store wake the dispatcher at once.
        self.store.add_write_listener(self._wake.set)

    def on_wake(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)
        self.store.add_write_listener(callback)

    async def close(self) -> None:
        self.store.remove_write_listener(self._wake.set)
        for callback in self._listeners:
            self.store.remove_write_listener(callback)
        self._listeners.clear()

    # ------------------------------------------------------------- notifications

    async def claim_notification(self, source: str, nid: str, now: float, lease: float) -> str:
        def job(conn: sqlite3.Connection) -> str:
            row = conn.execute(
                "SELECT done, until FROM webhook_notifications WHERE source = ? AND nid = ?", (source, nid)
            ).fetchone()
            if row is not None and row[0]:
                return "done"
            if row is not None and row[1] > now:
                return "busy"
            conn.execute(
                "INSERT OR REPLACE INTO webhook_notifications VALUES (?, ?, 0, ?)", (source, nid, now + lease)
            )
            return "new"

        result: str = await self._run(job)
        return result

    async def finish_notification(self, source: str, nid: str, ok: bool, now: float) -> None:
        def job(conn: sqlite3.Connection) -> None:
            if ok:
                conn.execute(
                    "UPDATE webhook_notifications SET done = 1, until = ? WHERE source = ? AND nid = ?",
                    (now, source, nid),
                )
                # Platforms stop retrying within days: forget ids handled 30 days ago.
                conn.execute(
                    "DELETE FROM webhook_notifications WHERE (source, nid) IN (SELECT source, nid FROM"
                    " webhook_notifications WHERE done = 1 AND until < ? LIMIT 100)",
                    (now - 30 * 86400,),
                )
            else:
                conn.execute(
                    "DELETE FROM webhook_notifications WHERE source = ? AND nid = ? AND done = 0",
                    (source, nid),
                )

        await self._run(job)

    # ----------------------------------------------------------------- schedules

    async def claim_run(self, name: str, slot: float, owner: str, now: float) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO schedule_runs (name, slot, owner, started) VALUES (?, ?, ?, ?)",
                (name, slot, owner, now),
            )
            if cur.rowcount > 0:
                # Keep the last 100 runs of each job.
                conn.execute(
                    "DELETE FROM schedule_runs WHERE name = ? AND slot < (SELECT min(slot) FROM"
                    " (SELECT slot FROM schedule_runs WHERE name = ? ORDER BY slot DESC LIMIT 100))",
                    (name, name),
                )
            return cur.rowcount > 0

        ok: bool = await self._run(job)
        return ok

    async def finish_run(self, name: str, slot: float, ok: bool, error: str | None, now: float) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE schedule_runs SET finished = ?, ok = ?, error = ? WHERE name = ? AND slot = ?",
                (now, int(ok), error, name, slot),
            )

        await self._run(job)

    # -------------------------------------------------------------------- outbox

    async def set_routes(self, routes: Sequence[Route], prefix: str) -> None:
        def job(conn: sqlite3.Connection) -> None:
            like = prefix.replace("%", r"\%").replace("_", r"\_") + "%"
            conn.execute(r"DELETE FROM outbox_routes WHERE target LIKE ? ESCAPE '\'", (like,))
            conn.executemany(
                "INSERT OR REPLACE INTO outbox_routes VALUES (?, ?, ?, ?)",
                [(r.target, r.collection, ",".join(r.ops), int(r.queued)) for r in routes],
            )
            conn.execute(
                r"DELETE FROM outbox_pending WHERE target LIKE ? ESCAPE '\'"
                " AND target NOT IN (SELECT target FROM outbox_routes)",
                (like,),
            )

        await self._run(job)

    async def claim_deliveries(
        self, targets: Sequence[str], owner: str, now: float, lease: float, limit: int
    ) -> list[Delivery]:
        if not targets:
            return []
        marks = ",".join("?" * len(targets))

        def job(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                "SELECT p.target, p.seq, p.attempts FROM outbox_pending p"  # noqa: S608 (placeholders)
                f" WHERE p.target IN ({marks}) AND p.next_at <= ? AND p.lease_until <= ?"
                " AND NOT EXISTS (SELECT 1 FROM outbox_pending q WHERE q.target = p.target"
                " AND q.collection = p.collection AND q.uid = p.uid AND q.doc_id = p.doc_id AND q.seq < p.seq)"
                " ORDER BY p.seq LIMIT ?",
                (*targets, now, now, limit),
            ).fetchall()
            out = []
            for target, seq, attempts in rows:
                conn.execute(
                    "UPDATE outbox_pending SET owner = ?, lease_until = ? WHERE target = ? AND seq = ?",
                    (owner, now + lease, target, seq),
                )
                row = conn.execute(f"{_SELECT_CHANGE} WHERE seq = ?", (seq,)).fetchone()
                if row is not None:
                    out.append(Delivery(target, attempts, change_from_row(row)))
            return out

        result: list[Delivery] = await self._run(job, durable=False)
        return result

    async def delivered(self, done: Sequence[tuple[str, int]]) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM outbox_pending WHERE target = ? AND seq = ?", done)

        await self._run(job, durable=False)

    async def retry_later(self, target: str, seq: int, owner: str, attempts: int, next_at: float) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE outbox_pending SET attempts = ?, next_at = ?, owner = NULL, lease_until = 0"
                " WHERE target = ? AND seq = ? AND owner = ?",
                (attempts, next_at, target, seq, owner),
            )

        await self._run(job, durable=False)

    async def prune(self, before: float, limit: int) -> int:
        def job(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox o WHERE o.at < ?"
                " AND NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.seq = o.seq) ORDER BY seq LIMIT ?)",
                (before, limit),
            )
            return cur.rowcount

        n: int = await self._run(job, durable=False)
        return n

    async def changes_after(self, seq: int, limit: int) -> list[Change]:
        rows = self._read().execute(f"{_SELECT_CHANGE} WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [change_from_row(r) for r in rows.fetchall()]

    async def head(self) -> tuple[int, int]:
        # Writes are serialized (one writer, BEGIN IMMEDIATE across processes): seq is
        # commit order, and a new row's seq is above every committed one (AUTOINCREMENT).
        row = await self.store._read(
            lambda conn: conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone(),
            inline=True,
        )
        return (0, int(row[0]) if row is not None else 0)

    async def follow(self, after: tuple[int, int], limit: int) -> tuple[list[Change], tuple[int, int]]:
        rows = await self.store._read(
            lambda conn: conn.execute(
                f"{_SELECT_CHANGE} WHERE seq > ? ORDER BY seq LIMIT ?", (after[1], limit)
            ).fetchall(),
            inline=True,  # an indexed range read; off the loop only if it runs long
        )
        changes = [change_from_row(r) for r in rows]
        return changes, ((0, changes[-1].seq) if changes else after)

    async def pending_count(self) -> int:
        n: int = self._read().execute("SELECT count(*) FROM outbox_pending").fetchone()[0]
        return n

    async def wait_changes(self, timeout: float) -> None:
        # In-process writes set the event; other processes' writes are seen on the next poll.
        await wait_event(self._wake, timeout)  # not wait_for: a cancel must end the dispatcher
        self._wake.clear()


def _statements(sql: str) -> list[str]:
    """The statements of ``sql``, a CREATE TRIGGER's body (BEGIN ... END) kept whole."""
    out: list[str] = []
    buf = ""
    for part in sql.split(";"):
        buf = f"{buf};{part}" if buf else part
        if sqlite3.complete_statement(buf + ";"):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    return out
