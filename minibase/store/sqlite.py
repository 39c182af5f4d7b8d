"""The embedded default backend: one SQLite file in WAL mode.

Writes go through :class:`SQLiteWriter` (one connection, group commit, durable). Reads
run on per-thread read-only connections (:mod:`.sqlite_reader`; on the event loop, the
reads of one loop step share one read transaction). A read of one key (a document, a
session, a user) runs directly on the event loop: it takes microseconds, far less than a
hop to a thread would. A query or count reads a range whose cost no limit bounds (rows scanned,
``$contains`` over large arrays), so it runs on a reader thread and never holds the loop.
A key read under a rule (bounded by one document, but a large one may take milliseconds)
starts on the loop and moves to a reader thread if it runs past
:data:`~.sqlite_writer.INLINE_BUDGET`. Every read stops after ``limits.query_time`` with
DeadlineExceeded (a progress handler), and so do the rule checks of writes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..data.filters import FALSE, TRUE, Filter, OrderKey
from ..data.filters import Path as FieldPath
from ..data.sql import (
    SQLITE,
    Params,
    compile_count,
    compile_filter,
    compile_query,
    index_ddl,
    index_name,
)
from ..errors import MinibaseError
from ..util.bucket import take
from .platform import SQLITE_DDL as PLATFORM_SQLITE_DDL
from .records import Identity, Key, SessionRecord, UserRecord
from .sqlite_checkpoint import Checkpointer
from .sqlite_reader import ReadConnection, step_snapshot
from .sqlite_txn import Txn, checked
from .sqlite_writer import (
    INLINE_BUDGET,
    THREAD_STEPS,
    BudgetedConnection,
    SQLiteWriter,
    outage,
)
from .writes import (
    WriteOp,
    deadline_exceeded,
    numbered,
    run_sync,
    steps,
)

__all__ = ["SQLiteStore"]

if TYPE_CHECKING:  # data.aggregate (and its decimal arithmetic) loads on first use
    from ..data.aggregate import Group, GroupRow


def _exact_sum() -> Any:
    """SQLite's ``mb_sum`` aggregate: exact sums (data/aggregate.py), imported on first use."""
    from ..data.aggregate import ExactSum

    return ExactSum()


T = TypeVar("T")

_READ_THREADS = 4
# Query shapes (SQL texts) remembered as too slow for the loop; when full, it starts over.
_SLOW_SHAPES = 1024
# Seconds a shape stays remembered: a shape slow once (a cold cache, a burst of writes)
# tries the loop again later, and is remembered again if it is still slow.
SLOW_SHAPE_TTL = 300.0

# Versioned schema changes, applied in order and recorded in schema_migrations.
# A migration is a script of statements split at ";", or a tuple of statements (triggers
# have ";" inside them).
MIGRATIONS: list[tuple[int, str | tuple[str, ...]]] = [
    (
        1,
        """
        CREATE TABLE users (
            uid TEXT PRIMARY KEY,
            created REAL NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE TABLE identities (
            provider TEXT NOT NULL,
            app_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            uid TEXT NOT NULL REFERENCES users(uid),
            unionid TEXT,
            created REAL NOT NULL,
            PRIMARY KEY (provider, app_id, subject)
        ) WITHOUT ROWID;
        CREATE INDEX identities_uid ON identities(uid);
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            token_hash BLOB NOT NULL UNIQUE,
            uid TEXT NOT NULL,
            provider TEXT NOT NULL,
            created REAL NOT NULL,
            last_used REAL NOT NULL,
            expires_max REAL NOT NULL,
            revoked REAL
        );
        CREATE INDEX sessions_uid ON sessions(uid);
        CREATE TABLE documents (
            collection TEXT NOT NULL,
            uid TEXT NOT NULL,
            id TEXT NOT NULL,
            version INTEGER NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (collection, uid, id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        2,
        """
        CREATE TABLE rate_buckets (
            key TEXT PRIMARY KEY,
            tokens REAL NOT NULL,
            updated REAL NOT NULL,
            full_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX rate_buckets_full_at ON rate_buckets(full_at);
        """,
    ),
    (3, PLATFORM_SQLITE_DDL),  # platform tokens, phones, identities by unionid (store/platform.py)
    (
        4,
        # The auth epoch: a counter every change that can end a session bumps (revocation,
        # deletion, a user disabled or deleted), written by triggers so that every writer
        # bumps it (any process, the CLI, the console). A cached session stays valid only
        # while the epoch read before it is unchanged (auth/sessions.py).
        (
            "CREATE TABLE auth_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)",
            "INSERT INTO auth_epoch VALUES (1, 0)",
            "CREATE TRIGGER auth_epoch_session_update AFTER UPDATE OF id, token_hash, uid, provider,"
            " created, expires_max, revoked ON sessions BEGIN UPDATE auth_epoch SET n = n + 1; END",
            "CREATE TRIGGER auth_epoch_session_delete AFTER DELETE ON sessions"
            " BEGIN UPDATE auth_epoch SET n = n + 1; END",
            "CREATE TRIGGER auth_epoch_user_update AFTER UPDATE OF uid, disabled ON users"
            " BEGIN UPDATE auth_epoch SET n = n + 1; END",
            "CREATE TRIGGER auth_epoch_user_delete AFTER DELETE ON users BEGIN UPDATE auth_epoch SET n = n + 1; END",
        ),
    ),
]

# Every this many bucket writes, rows of buckets that have refilled are deleted.
_SWEEP_EVERY = 1000

_SESSION_SELECT = (
    "SELECT s.id, s.token_hash, s.uid, s.provider, s.created, s.last_used, s.expires_max,"
    " s.revoked IS NOT NULL, coalesce(u.disabled, 1)"
    " FROM sessions s LEFT JOIN users u ON u.uid = s.uid"
)
_SESSION_BY_ID = _SESSION_SELECT + " WHERE s.id = ?"
_SESSION_BY_HASH = _SESSION_SELECT + " WHERE s.token_hash = ?"
_AUTH_EPOCH = "SELECT n FROM auth_epoch WHERE id = 1"


def _session(row: tuple[Any, ...] | None) -> SessionRecord | None:
    if row is None:
        return None
    return SessionRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]), bool(row[8]))


def _switch_to_wal(conn: sqlite3.Connection, wait: float = 10.0) -> None:
    """``journal_mode=WAL``, tried again while another connection holds the write lock.

    Two processes switching one fresh file at once: the second, already reading, would
    deadlock waiting for the first's lock, so SQLite answers it "database is locked" at
    once without calling the busy handler (no busy timeout helps). Processes of this store
    take turns at start (:meth:`SQLiteStore.open`); this covers any other writer.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if not str(e).startswith("database is locked") or time.monotonic() > deadline:
                raise
            time.sleep(0.005)  # at start only: once the file is in WAL, this never waits


class SQLiteStore:
    def __init__(self, path: str | Path, *, query_time: float = 3.0, inline_queries: bool = True) -> None:
        self.path = Path(path)
        self.query_time = query_time  # seconds a statement may run (limits.query_time)
        self.inline_queries = inline_queries  # try queries on the loop first (see query())
        self._slow_shapes: dict[str, float] = {}  # shape -> when it was found slow (monotonic)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        memory = str(path) == ":memory:" or str(path).startswith("file:")
        lock_path = None if memory else f"{self.path}-wlock"
        self._checkpointer = None if memory else Checkpointer(str(self.path), lock_path)
        self._writer = SQLiteWriter(self._connect_writer, lock_path, query_time, self._checkpointer)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._takes = 0  # bucket writes, to sweep refilled buckets now and then
        # Called after each document write commits (the events' dispatcher wakes on it; the
        # outbox rows themselves are written by triggers in the write's transaction).
        self._write_listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ connections

    def _connect_writer(self) -> BudgetedConnection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, factory=BudgetedConnection
        )
        conn.execute("PRAGMA busy_timeout=10000")  # before anything that may wait for a lock
        _switch_to_wal(conn)
        # FULL: a commit is on disk before it is acknowledged (NORMAL may lose the last
        # transactions on power loss in WAL mode).
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def _reader(self) -> ReadConnection:
        """This thread's read connection; on the loop, inside the step's read transaction."""
        conn: ReadConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, factory=ReadConnection
                )
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("PRAGMA query_only=ON")
                # Sums exact as PostgreSQL's numeric (data/aggregate.py), not double addition.
                conn.create_aggregate("mb_sum", 1, _exact_sum)
            except sqlite3.Error as e:
                raise outage(e) from e
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return step_snapshot(conn)

    def _private_files(self) -> None:
        """The database holds every user's data: owner-only, like the secret key. SQLite
        gives its -wal and -shm files the database's mode, so the file is created 0600
        before SQLite opens it; files an older version created 0644 are narrowed."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        os.close(fd)
        for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            with contextlib.suppress(FileNotFoundError):
                if p.stat().st_mode & 0o077:
                    os.chmod(p, 0o600)

    async def _read(
        self, fn: Callable[[sqlite3.Connection], T], *, inline: bool, shape: str | None = None
    ) -> T:
        """``fn`` on a reader thread within ``query_time``; if ``inline``, first on the
        loop, and on a thread only past INLINE_BUDGET (then ``shape`` goes to the thread)."""
        start = time.monotonic()
        if inline:
            conn = self._reader()
            conn.fired = False
            conn.deadline = start + INLINE_BUDGET
            try:
                return fn(conn)
            except sqlite3.OperationalError:
                if not conn.fired:
                    raise
                if shape is not None:  # remembered; the bounded set starts over when full
                    if len(self._slow_shapes) >= _SLOW_SHAPES:
                        self._slow_shapes = {}
                    self._slow_shapes[shape] = start
            finally:
                conn.deadline = math.inf
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                _READ_THREADS, thread_name_prefix="minibase-sqlite-read"
            )
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._read_on_thread, fn, start + self.query_time
        )

    def _read_on_thread(self, fn: Callable[[sqlite3.Connection], T], deadline: float) -> T:
        conn = self._reader()
        if not getattr(self._local, "threaded", False):
            conn.steps(THREAD_STEPS)  # a look at the clock takes the GIL: not too often
            self._local.threaded = True
        conn.fired = False
        conn.deadline = deadline
        try:
            return fn(conn)
        except sqlite3.OperationalError:
            if conn.fired:
                raise deadline_exceeded(self.query_time) from None
            raise
        finally:
            conn.deadline = math.inf

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._private_files()
        # Migrate on a connection of our own, before the writer thread exists. Processes
        # starting at once (serve --workers) take turns through the writers' lock file for
        # the WAL switch and the migrations, and BEGIN IMMEDIATE serializes them as well.
        async with self._writer.exclusive():
            self._migrate()

    def _migrate(self) -> None:
        conn = self._connect_writer()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied REAL)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version in done:
                    continue
                for statement in sql if isinstance(sql, tuple) else sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        finally:
            conn.close()

    async def close(self) -> None:
        await self._writer.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()

    # ------------------------------------------------------- for tables of features
    # A feature's own tables (docs/architecture.md#storage) use this store's connections.

    async def run_write(self, job: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """``job`` on the writer's connection, inside a transaction (group commit, in its
        own savepoint): its error undoes its own statements only."""
        return await self._writer.run(job, durable=durable)

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on a read-only connection of a reader thread, within ``query_time``."""
        return await self._read(fn, inline=False)

    # ------------------------------------------------------------ users, identities

    async def upsert_identity(self, identity: Identity, new_uid: str, now: float) -> tuple[str, bool]:
        key = (identity.provider, identity.app_id, identity.subject)
        row = (
            self._reader()
            .execute("SELECT uid FROM identities WHERE provider = ? AND app_id = ? AND subject = ?", key)
            .fetchone()
        )
        if row is not None:
            return row[0], False

        def job(conn: sqlite3.Connection) -> tuple[str, bool]:
            # Re-check inside the write transaction: two first logins may race.
            r = conn.execute(
                "SELECT uid FROM identities WHERE provider = ? AND app_id = ? AND subject = ?", key
            ).fetchone()
            if r is not None:
                return r[0], False
            conn.execute("INSERT INTO users (uid, created) VALUES (?, ?)", (new_uid, now))
            conn.execute(
                "INSERT INTO identities VALUES (?, ?, ?, ?, ?, ?)", (*key, new_uid, identity.unionid, now)
            )
            return new_uid, True

        return await self._writer.run(job)

    async def get_user(self, uid: str) -> UserRecord | None:
        row = (
            self._reader()
            .execute("SELECT uid, created, disabled FROM users WHERE uid = ?", (uid,))
            .fetchone()
        )
        return UserRecord(row[0], row[1], bool(row[2])) if row else None

    async def set_user_disabled(self, uid: str, disabled: bool) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("UPDATE users SET disabled = ? WHERE uid = ?", (int(disabled), uid))
            return cur.rowcount > 0

        return await self._writer.run(job)

    # --------------------------------------------------------------------- sessions

    async def create_session(self, record: SessionRecord) -> None:
        r = record

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (r.id, r.token_hash, r.uid, r.provider, r.created, r.last_used, r.expires_max),
            )

        await self._writer.run(job)

    async def session_by_id(self, session_ref: str) -> SessionRecord | None:
        return _session(self._reader().execute(_SESSION_BY_ID, (session_ref,)).fetchone())

    async def session_by_hash(self, token_hash: bytes) -> SessionRecord | None:
        return _session(self._reader().execute(_SESSION_BY_HASH, (token_hash,)).fetchone())

    async def auth_epoch(self) -> int | None:
        row = self._reader().execute(_AUTH_EPOCH).fetchone()
        return int(row[0]) if row is not None else None

    async def touch_session(self, session_ref: str, now: float) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE sessions SET last_used = max(last_used, ?) WHERE id = ?", (now, session_ref))

        await self._writer.run(job)

    async def revoke_session(self, session_ref: str, now: float) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE sessions SET revoked = ? WHERE id = ? AND revoked IS NULL", (now, session_ref)
            )
            return cur.rowcount > 0

        return await self._writer.run(job)

    async def revoke_user_sessions(self, uid: str, now: float) -> int:
        def job(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE sessions SET revoked = ? WHERE uid = ? AND revoked IS NULL", (now, uid)
            )
            return cur.rowcount

        return await self._writer.run(job)

    async def purge_sessions(self, idle_before: float, max_before: float, limit: int) -> int:
        def job(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "DELETE FROM sessions WHERE id IN"
                " (SELECT id FROM sessions WHERE last_used < ? OR expires_max < ? LIMIT ?)",
                (idle_before, max_before, limit),
            )
            return cur.rowcount

        return await self._writer.run(job)

    # ------------------------------------------------------------------ rate limits

    async def take_tokens(
        self, key: str, rate: float, burst: float, want: int, now: float
    ) -> tuple[int, float]:
        self._takes += 1
        sweep = self._takes % _SWEEP_EVERY == 0

        def job(conn: sqlite3.Connection) -> tuple[int, float]:
            row = conn.execute("SELECT tokens, updated FROM rate_buckets WHERE key = ?", (key,)).fetchone()
            granted, left, full_at, wait = take(
                row[0] if row else None, row[1] if row else now, now, rate, burst, want
            )
            conn.execute(
                "INSERT INTO rate_buckets VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE"
                " SET tokens = excluded.tokens, updated = excluded.updated, full_at = excluded.full_at",
                (key, left, max(now, row[1]) if row else now, full_at),
            )
            if sweep:
                conn.execute("DELETE FROM rate_buckets WHERE full_at < ?", (now,))
            return granted, wait

        # Not durable: a bucket lost to a power cut only forgets some spent tokens.
        return await self._writer.run(job, durable=False)

    # -------------------------------------------------------------------- documents

    async def get_document(self, key: Key, rule: Filter = TRUE) -> bytes | None:
        if rule == FALSE:
            return None
        if rule == TRUE:
            row = self._reader().execute(_GET_DOC, (key.collection, key.uid, key.id)).fetchone()
        else:
            params = Params(SQLITE)
            cond = compile_filter(rule, SQLITE, params)
            sql = f"{_GET_DOC} AND ({cond})"
            args = checked((key.collection, key.uid, key.id, *params.values))
            row = await self._read(lambda conn: conn.execute(sql, args).fetchone(), inline=True)
        return row[0].encode() if row else None

    async def query(
        self,
        collection: str,
        where: Filter,
        order: Sequence[OrderKey],
        limit: int,
        after: Sequence[Any] | None,
    ) -> list[tuple[list[Any], bytes]]:
        sql, params = compile_query(SQLITE, collection, where, order, limit, after)
        args = checked(params)
        # On the loop first: on a thread each row's step waits for the busy loop to hand
        # back the GIL (a list of 20 at half the rate). A costly shape holds the loop for
        # the budget plus at most one JSON call on one document (SQLite cannot stop amid
        # it: ~4 ms for 1 MB) once, then is remembered and goes to a thread.
        found = self._slow_shapes.get(sql)
        inline = self.inline_queries and (found is None or time.monotonic() - found > SLOW_SHAPE_TTL)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall(), inline=inline, shape=sql)
        return [(list(r[:-1]), r[-1].encode()) for r in rows]

    async def count(self, collection: str, where: Filter) -> int:
        sql, params = compile_count(SQLITE, collection, where)
        args = checked(params)
        n: int = await self._read(lambda conn: conn.execute(sql, args).fetchone()[0], inline=False)
        return n

    async def aggregate(
        self, collection: str, where: Filter, group: Group, max_groups: int
    ) -> list[GroupRow]:
        from ..data.aggregate import decode_rows
        from ..data.sql_aggregate import compile_aggregate

        accs = [(a.op, a.path) for a in group.accumulators]
        sql, params = compile_aggregate(SQLITE, collection, where, group.keys, accs, max_groups + 1)
        args = checked(params)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall(), inline=False)
        return decode_rows(rows, group)

    async def ensure_search(self, declared: Mapping[str, Sequence[FieldPath]]) -> None:
        from . import sqlite_search

        await self._writer.run(lambda conn: sqlite_search.sync(conn, declared))

    async def write(self, ops: Sequence[WriteOp], now_iso: str) -> list[Any]:
        def job(conn: sqlite3.Connection) -> list[Any]:
            txn = Txn(conn, now_iso)
            results = []
            for i, op in enumerate(ops):
                try:
                    results.append(run_sync(steps(op, now_iso), txn.answer))
                except MinibaseError as e:
                    numbered(e, i, len(ops))
                    raise
            return results

        results = await self._writer.run(job)
        for listener in self._write_listeners:
            listener()
        return results

    def add_write_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each committed document write through this store."""
        self._write_listeners.append(listener)

    def remove_write_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._write_listeners:
            self._write_listeners.remove(listener)

    async def ensure_indexes(
        self, collection: str, indexes: Sequence[Sequence[tuple[str, ...]]], owner_first: bool
    ) -> None:
        def job(conn: sqlite3.Connection) -> None:
            for paths in indexes:
                for owner in {owner_first, True}:
                    name = index_name(paths, owner_first=owner)
                    conn.execute(index_ddl(SQLITE, collection, name, paths, owner_first=owner))
            # Without statistics the planner may prefer the primary key over a new index;
            # analysis_limit bounds the cost on a large database.
            conn.execute("PRAGMA analysis_limit=1000")
            conn.execute("PRAGMA optimize")

        await self._writer.run(job)


_GET_DOC = "SELECT body FROM documents WHERE collection = ? AND uid = ? AND id = ?"
