"""The events' tables on PostgreSQL, through a small pool of their own, and a listening
connection: the outbox trigger NOTIFYs ``minibase_outbox`` at commit, so every instance's
dispatcher (and watch) wakes at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from ..errors import Unavailable
from ..util.waits import wait_event
from .events import Change, Delivery, Route, change_from_row
from .postgres import UNAVAILABLE

__all__ = ["PostgresEvents"]

log = logging.getLogger(__name__)

_MIGRATION_LOCK = int.from_bytes(b"minibase", "big")  # the store's: one migrator at a time
CHANNEL = "minibase_outbox"

MIGRATIONS: list[tuple[int, str]] = [
    (
        1001,
        """
        CREATE TABLE webhook_notifications (
            source TEXT NOT NULL,
            nid TEXT NOT NULL,
            done BOOLEAN NOT NULL,
            until DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (source, nid)
        );
        CREATE INDEX webhook_notifications_until ON webhook_notifications(until);
        CREATE TABLE schedule_runs (
            name TEXT NOT NULL,
            slot DOUBLE PRECISION NOT NULL,
            owner TEXT NOT NULL,
            started DOUBLE PRECISION NOT NULL,
            finished DOUBLE PRECISION,
            ok BOOLEAN,
            error TEXT,
            PRIMARY KEY (name, slot)
        );
        CREATE TABLE outbox (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            -- the writing transaction: a reader that must not pass a transaction still in
            -- flight (seq is taken before commit) compares with pg_snapshot_xmin
            txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            at DOUBLE PRECISION NOT NULL,
            op TEXT NOT NULL,
            collection TEXT COLLATE "C" NOT NULL,
            uid TEXT COLLATE "C" NOT NULL,
            doc_id TEXT COLLATE "C" NOT NULL,
            old JSONB,
            new JSONB
        );
        CREATE INDEX outbox_at ON outbox(at);
        CREATE TABLE outbox_routes (
            target TEXT NOT NULL,
            collection TEXT NOT NULL,
            ops TEXT NOT NULL,
            queued BOOLEAN NOT NULL,
            PRIMARY KEY (target, collection)
        );
        CREATE TABLE outbox_pending (
            target TEXT NOT NULL,
            seq BIGINT NOT NULL,
            collection TEXT COLLATE "C" NOT NULL,
            uid TEXT COLLATE "C" NOT NULL,
            doc_id TEXT COLLATE "C" NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at DOUBLE PRECISION NOT NULL DEFAULT 0,
            owner TEXT,
            lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (target, seq)
        );
        CREATE INDEX outbox_pending_doc ON outbox_pending(target, collection, uid, doc_id, seq);
        CREATE INDEX outbox_pending_seq ON outbox_pending(seq);
        CREATE FUNCTION minibase_outbox() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            d documents;
            kind TEXT;
            s BIGINT;
        BEGIN
            IF TG_OP = 'DELETE' THEN d := OLD; kind := 'remove'; ELSE d := NEW; kind := lower(TG_OP); END IF;
            IF NOT EXISTS (SELECT 1 FROM outbox_routes WHERE collection IN (d.collection, '*')) THEN
                RETURN NULL;
            END IF;
            INSERT INTO outbox (at, op, collection, uid, doc_id, old, new)
            VALUES (extract(epoch FROM clock_timestamp()), kind, d.collection, d.uid, d.id,
                    CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.body END,
                    CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.body END)
            RETURNING seq INTO s;
            INSERT INTO outbox_pending (target, seq, collection, uid, doc_id)
            SELECT r.target, s, d.collection, d.uid, d.id FROM outbox_routes r
            WHERE r.collection IN (d.collection, '*') AND r.queued AND position(kind IN r.ops) > 0;
            PERFORM pg_notify('minibase_outbox', '');
            RETURN NULL;
        END
        $fn$;
        CREATE TRIGGER minibase_outbox AFTER INSERT OR UPDATE OR DELETE ON documents
            FOR EACH ROW EXECUTE FUNCTION minibase_outbox();
        """,
    ),
    # realtime watch follows the outbox by (transaction, seq)
    (1002, "CREATE INDEX outbox_txid ON outbox(txid, seq)"),
]

_SELECT_CHANGE = "SELECT seq, at, op, collection, uid, doc_id, old::text, new::text FROM outbox"


class PostgresEvents:
    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4, command_timeout=30)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as e:
            raise Unavailable("the database is unavailable") from e
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version not in done:
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, time.time())
        await self._listen()

    async def _listen(self) -> None:
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncio.TimeoutError):
            self._listener = await asyncpg.connect(self.url)
            await self._listener.add_listener(CHANNEL, self._notified)

    def _notified(self, *args: Any) -> None:
        self._wake.set()
        for callback in self._listeners:
            callback()

    def on_wake(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        assert self._pool is not None
        try:
            rows: list[Any] = await self._pool.fetch(sql, *args)
        except UNAVAILABLE as e:  # a server starting up or shutting down (57P0x) too
            raise Unavailable("the database is unavailable") from e
        return rows

    async def _execute(self, sql: str, *args: Any) -> str:
        assert self._pool is not None
        try:
            status: str = await self._pool.execute(sql, *args)
        except UNAVAILABLE as e:  # a server starting up or shutting down (57P0x) too
            raise Unavailable("the database is unavailable") from e
        return status

    async def _bookkeeping(self, sql: str, *args: Any, many: list[Any] | None = None) -> list[Any]:
        """The dispatcher's own statements, committed without waiting for the WAL flush: a
        claim or deletion lost to a crash only means a delivery again (at least once)."""
        assert self._pool is not None
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit = off")
                if many is not None:
                    await conn.executemany(sql, many)
                    return []
                rows: list[Any] = await conn.fetch(sql, *args)
                return rows
        except UNAVAILABLE as e:  # a server starting up or shutting down (57P0x) too
            raise Unavailable("the database is unavailable") from e

    # ------------------------------------------------------------- notifications

    async def claim_notification(self, source: str, nid: str, now: float, lease: float) -> str:
        # One statement: insert the claim, or take over an expired one; else report why not.
        rows = await self._fetch(
            "INSERT INTO webhook_notifications AS w VALUES ($1, $2, false, $4)"
            " ON CONFLICT (source, nid) DO UPDATE SET until = $4"
            " WHERE NOT w.done AND w.until <= $3 RETURNING true",
            source,
            nid,
            now,
            now + lease,
        )
        if rows:
            return "new"
        row = await self._fetch(
            "SELECT done FROM webhook_notifications WHERE source = $1 AND nid = $2", source, nid
        )
        if row and row[0][0]:
            return "done"
        return "busy"

    async def finish_notification(self, source: str, nid: str, ok: bool, now: float) -> None:
        if ok:
            await self._execute(
                "UPDATE webhook_notifications SET done = true, until = $3 WHERE source = $1 AND nid = $2",
                source,
                nid,
                now,
            )
            await self._execute(
                "DELETE FROM webhook_notifications WHERE (source, nid) IN (SELECT source, nid FROM"
                " webhook_notifications WHERE done AND until < $1 LIMIT 100)",
                now - 30 * 86400,
            )
        else:
            await self._execute(
                "DELETE FROM webhook_notifications WHERE source = $1 AND nid = $2 AND NOT done", source, nid
            )

    # ----------------------------------------------------------------- schedules

    async def claim_run(self, name: str, slot: float, owner: str, now: float) -> bool:
        rows = await self._fetch(
            "INSERT INTO schedule_runs (name, slot, owner, started) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING RETURNING true",
            name,
            slot,
            owner,
            now,
        )
        if rows:
            await self._execute(
                "DELETE FROM schedule_runs WHERE name = $1 AND slot < (SELECT min(slot) FROM"
                " (SELECT slot FROM schedule_runs WHERE name = $1 ORDER BY slot DESC LIMIT 100) k)",
                name,
            )
        return bool(rows)

    async def finish_run(self, name: str, slot: float, ok: bool, error: str | None, now: float) -> None:
        await self._execute(
            "UPDATE schedule_runs SET finished = $3, ok = $4, error = $5 WHERE name = $1 AND slot = $2",
            name,
            slot,
            now,
            ok,
            error,
        )

    # -------------------------------------------------------------------- outbox

    async def set_routes(self, routes: Sequence[Route], prefix: str) -> None:
        assert self._pool is not None
        like = prefix.replace("%", r"\%").replace("_", r"\_") + "%"
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM outbox_routes WHERE target LIKE $1", like)
            await conn.executemany(
                "INSERT INTO outbox_routes VALUES ($1, $2, $3, $4) ON CONFLICT (target, collection)"
                " DO UPDATE SET ops = excluded.ops, queued = excluded.queued",
                [(r.target, r.collection, ",".join(r.ops), r.queued) for r in routes],
            )
            await conn.execute(
                "DELETE FROM outbox_pending WHERE target LIKE $1"
                " AND target NOT IN (SELECT target FROM outbox_routes)",
                like,
            )

    async def claim_deliveries(
        self, targets: Sequence[str], owner: str, now: float, lease: float, limit: int
    ) -> list[Delivery]:
        if not targets:
            return []
        # SKIP LOCKED: instances claim disjoint rows; the lease condition is re-checked on
        # the locked row, so a row another instance just leased is passed over.
        rows = await self._bookkeeping(
            "WITH c AS (SELECT p.target, p.seq FROM outbox_pending p"
            " WHERE p.target = ANY($1::text[]) AND p.next_at <= $2 AND p.lease_until <= $2"
            " AND NOT EXISTS (SELECT 1 FROM outbox_pending q WHERE q.target = p.target"
            " AND q.collection = p.collection AND q.uid = p.uid AND q.doc_id = p.doc_id AND q.seq < p.seq)"
            " ORDER BY p.seq LIMIT $5 FOR UPDATE SKIP LOCKED),"
            " u AS (UPDATE outbox_pending p SET owner = $3, lease_until = $4 FROM c"
            " WHERE p.target = c.target AND p.seq = c.seq RETURNING p.target, p.seq, p.attempts)"
            " SELECT u.target, u.attempts, o.seq, o.at, o.op, o.collection, o.uid, o.doc_id, o.old::text,"
            " o.new::text FROM u JOIN outbox o ON o.seq = u.seq ORDER BY o.seq",
            list(targets),
            now,
            owner,
            now + lease,
            limit,
        )
        return [Delivery(r[0], r[1], change_from_row(r[2:])) for r in rows]

    async def delivered(self, done: Sequence[tuple[str, int]]) -> None:
        await self._bookkeeping("DELETE FROM outbox_pending WHERE target = $1 AND seq = $2", many=list(done))

    async def retry_later(self, target: str, seq: int, owner: str, attempts: int, next_at: float) -> None:
        await self._bookkeeping(
            "UPDATE outbox_pending SET attempts = $4, next_at = $5, owner = NULL, lease_until = 0"
            " WHERE target = $1 AND seq = $2 AND owner = $3",
            target,
            seq,
            owner,
            attempts,
            next_at,
        )

    async def prune(self, before: float, limit: int) -> int:
        status = await self._execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox o WHERE o.at < $1"
            " AND NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.seq = o.seq) ORDER BY seq LIMIT $2)",
            before,
            limit,
        )
        tail = status.rpartition(" ")[2]
        return int(tail) if tail.isdigit() else 0

    async def changes_after(self, seq: int, limit: int) -> list[Change]:
        # Only transactions that have finished: a lower seq may still be in flight.
        rows = await self._fetch(
            f"{_SELECT_CHANGE} WHERE seq > $1 AND txid < pg_snapshot_xmin(pg_current_snapshot())"
            " ORDER BY seq LIMIT $2",
            seq,
            limit,
        )
        return [change_from_row(r) for r in rows]

    async def head(self) -> tuple[int, int]:
        # Every transaction below xmin has finished: its rows are the past. One at or above
        # it may still commit, so the position is just before xmin.
        rows = await self._fetch("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return (int(rows[0][0]), 0)

    async def follow(self, after: tuple[int, int], limit: int) -> tuple[list[Change], tuple[int, int]]:
        """By (txid, seq), up to xmin: a transaction below xmin has finished, so no row can
        appear later below a position already returned. A document's changes are ordered by
        its row lock, not by txid: readers order them by ``_version``."""
        if self._listener is None or self._listener.is_closed():
            self._listener = None
            await self._listen()  # the server came back: listen again
        rows = await self._fetch(
            "SELECT seq, at, op, collection, uid, doc_id, old::text, new::text, txid::text::bigint"
            " FROM outbox WHERE (txid, seq) >= ($1::text::xid8, $2)"
            " AND txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid, seq LIMIT $3",
            str(after[0]),
            after[1] + 1,
            limit,
        )
        if not rows:
            return [], after
        return [change_from_row(r) for r in rows], (int(rows[-1][8]), int(rows[-1][0]))

    async def pending_count(self) -> int:
        rows = await self._fetch("SELECT count(*) FROM outbox_pending")
        n: int = rows[0][0]
        return n

    async def wait_changes(self, timeout: float) -> None:
        if self._listener is None or self._listener.is_closed():
            self._listener = None
            await self._listen()  # the server came back: listen again
        await wait_event(self._wake, timeout)  # not wait_for: a cancel must end the dispatcher
        self._wake.clear()
