"""The shared-database backend: PostgreSQL through an asyncpg connection pool.

The same logical tables as the SQLite store; documents keep their JSON in a ``jsonb``
column and are returned as the bytes of its text form (``jsonb`` normalizes key order
and whitespace). Filters, rules, queries and indexes are compiled by
:mod:`minibase.data.sql`, so a rule is part of the one query it restricts.

Schema changes are versioned in ``schema_migrations`` and applied under a transaction-
scoped advisory lock, so several instances may start at once. A lost database (refused or
dropped connections, the server shutting down, too many connections, no free pooled
connection in time) answers requests with ``Unavailable("the database is unavailable")``
(503 and ``Retry-After``); the pool reconnects on its own once the server is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from ..data.filters import FALSE, TRUE, Filter, OrderKey
from ..data.filters import Path as FieldPath
from ..data.sql import (
    POSTGRES,
    compile_count,
    compile_query,
    index_ddl,
    index_name,
    search_index_ddl,
    search_index_name,
)
from ..errors import (
    ConfigError,
    Conflict,
    Internal,
    InvalidArgument,
    MinibaseError,
    Unavailable,
)
from ..util.bucket import take
from . import postgres_docs as docs
from .platform import POSTGRES_DDL as PLATFORM_POSTGRES_DDL
from .records import Identity, Key, SessionRecord, UserRecord
from .writes import WriteOp, deadline_exceeded, numbered, run_async, steps

__all__ = ["UNAVAILABLE", "PostgresStore"]

if TYPE_CHECKING:  # data.aggregate (and its decimal arithmetic) loads on first use
    from ..data.aggregate import Group, GroupRow

log = logging.getLogger(__name__)

# pg_advisory_(xact_)lock keys: "minibase" / "minibasi" in ASCII, as signed 64-bit ints.
_MIGRATION_LOCK = int.from_bytes(b"minibase", "big")
_INDEX_LOCK = int.from_bytes(b"minibasi", "big")

# Versioned schema changes, applied in order and recorded in schema_migrations.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE users (
            uid TEXT PRIMARY KEY,
            created DOUBLE PRECISION NOT NULL,
            disabled BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE identities (
            provider TEXT NOT NULL,
            app_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            uid TEXT NOT NULL REFERENCES users(uid),
            unionid TEXT,
            created DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (provider, app_id, subject)
        );
        CREATE INDEX identities_uid ON identities(uid);
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            token_hash BYTEA NOT NULL UNIQUE,
            uid TEXT NOT NULL,
            provider TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            last_used DOUBLE PRECISION NOT NULL,
            expires_max DOUBLE PRECISION NOT NULL,
            revoked DOUBLE PRECISION
        );
        CREATE INDEX sessions_uid ON sessions(uid);
        CREATE TABLE documents (
            -- "C": byte order, as the query compiler sorts keys, so the primary key
            -- serves ORDER BY uid, id and cursors without a sort.
            collection TEXT COLLATE "C" NOT NULL,
            uid TEXT COLLATE "C" NOT NULL,
            id TEXT COLLATE "C" NOT NULL,
            version INTEGER NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            body JSONB NOT NULL,
            PRIMARY KEY (collection, uid, id)
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE rate_buckets (
            key TEXT PRIMARY KEY,
            tokens DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL,
            full_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX rate_buckets_full_at ON rate_buckets(full_at);
        """,
    ),
    (3, PLATFORM_POSTGRES_DDL),  # platform tokens, phones, identities by unionid (store/platform.py)
]

# Every this many bucket writes (per instance), rows of refilled buckets are deleted.
_SWEEP_EVERY = 1000

# Errors that mean "no usable connection to the server", as opposed to a refused statement.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError is an OSError)
    asyncio.TimeoutError,  # connect timeout, acquire timeout
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, ConnectionDoesNotExistError
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up / shutting down
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
)
# "invalid byte sequence for encoding UTF8: 0x00" (text), "unsupported Unicode escape
# sequence" (jsonb): what PostgreSQL answers for a bound string holding U+0000.
_NUL_REFUSED = (
    asyncpg.exceptions.CharacterNotInRepertoireError,
    asyncpg.exceptions.UntranslatableCharacterError,
)
# Whole-transaction failures that a retry of the batch may get past.
_RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
_WRITE_ATTEMPTS = 3

_CONNECT_TIMEOUT = 5.0  # seconds to establish one connection
_ACQUIRE_TIMEOUT = 10.0  # seconds to wait for a free pooled connection

_KEY = "collection = $1 AND uid = $2 AND id = $3"

_SESSION_SELECT = (
    "SELECT s.id, s.token_hash, s.uid, s.provider, s.created, s.last_used, s.expires_max,"
    " s.revoked IS NOT NULL, coalesce(u.disabled, true)"
    " FROM sessions s LEFT JOIN users u ON u.uid = s.uid"
)
_SESSION_BY_ID = _SESSION_SELECT + " WHERE s.id = $1"
_SESSION_BY_HASH = _SESSION_SELECT + " WHERE s.token_hash = $1"


def _session(row: asyncpg.Record | None) -> SessionRecord | None:
    if row is None:
        return None
    return SessionRecord(
        row[0], bytes(row[1]), row[2], row[3], row[4], row[5], row[6], bool(row[7]), bool(row[8])
    )


def _rowcount(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3`` or ``DELETE 0``."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


class _Unavailable(Unavailable):
    """Unavailable("the database is unavailable"): what a client sees when the server is gone."""

    def __init__(self, retry: bool) -> None:
        super().__init__("the database is unavailable")
        # Whether the request may be retried on a fresh connection: false when the pool
        # could not even connect (retrying at once would only fail again).
        self.retry = retry


class _Progress:
    """How far a request got: past ``began`` the server may have applied something."""

    __slots__ = ("began",)

    def __init__(self) -> None:
        self.began = False


T = TypeVar("T")


def _is_lost(conn: asyncpg.Connection) -> bool:
    """Whether an acquired connection has closed (the pool detaches a closed one at once,
    and then even asking raises)."""
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True


class PostgresStore:
    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float | None = 30.0,
        query_time: float = 3.0,
    ) -> None:
        self.url = url
        # The server cancels a statement after this many seconds (statement_timeout):
        # DeadlineExceeded, and the connection stays usable (limits.query_time).
        self.query_time = query_time
        self.min_size = min_size
        self.max_size = max_size
        # A statement (or a server that stopped answering without closing the connection)
        # fails after this many seconds instead of holding a request forever.
        self.command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._takes = 0  # bucket writes, to sweep refilled buckets now and then

    # ------------------------------------------------------------------ connections

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            await self._migrate()
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                timeout=_CONNECT_TIMEOUT,
                command_timeout=self.command_timeout,
                init=docs.init_connection,
                server_settings={"statement_timeout": str(max(1, round(self.query_time * 1000)))},
            )
        except UNAVAILABLE as e:
            log.warning("cannot reach the database: %s", e)
            raise Unavailable("the database is unavailable") from e

    async def _migrate(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.url, timeout=_CONNECT_TIMEOUT)
        try:
            async with conn.transaction():
                # Held until commit: concurrent instances migrate one after the other.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
                )
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, sql in MIGRATIONS:
                    if version in done:
                        continue
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, time.time())
        finally:
            await conn.close()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; losing the server raises :class:`_Unavailable` (an
        ``Unavailable`` without a traceback for clients). A broken connection is closed, and
        the pool opens a new one on next use."""
        pool = self._pool
        if pool is None:
            raise RuntimeError("the store is not open")
        acquired = False
        try:
            async with pool.acquire(timeout=_ACQUIRE_TIMEOUT) as conn:
                acquired = True
                try:
                    yield conn
                except asyncpg.exceptions.QueryCanceledError as e:  # statement_timeout
                    raise deadline_exceeded(self.query_time) from e
                except asyncpg.InterfaceError as e:
                    # "connection is closed": lost mid-request (checked while still ours).
                    if not _is_lost(conn):
                        raise
                    log.warning("the database connection was lost: %s", e)
                    raise _Unavailable(retry=True) from e
                except _NUL_REFUSED as e:
                    # A client string holding U+0000 (a where value, a session id), which
                    # PostgreSQL text cannot hold: nothing stored can equal it.
                    raise InvalidArgument("strings may not contain the character \\u0000") from e
                except asyncpg.exceptions.InternalClientError as e:
                    # asyncpg's protocol state machine broke: seen when the server ends the
                    # session (shutdown, pg_terminate_backend) just as a statement starts.
                    # The connection is unusable: close it so the pool opens a new one.
                    log.warning("the database connection broke: %s", e)
                    conn.terminate()
                    raise _Unavailable(retry=True) from e
        except MinibaseError:
            raise
        except UNAVAILABLE as e:
            log.warning("the database is unavailable: %s", e)
            # A pooled connection that turns out dead is typically one left over from before
            # a server restart, closed by the server while idle: worth one retry. A failed
            # connect, a timeout: not.
            raise _Unavailable(
                retry=acquired and not isinstance(e, (TimeoutError, asyncio.TimeoutError))
            ) from e

    async def _run(
        self, fn: Callable[[asyncpg.Connection, _Progress], Awaitable[T]], *, idempotent: bool
    ) -> T:
        """``fn`` on a pooled connection, retried once on a fresh connection if the first
        one turns out dead, provided that cannot apply anything twice: ``idempotent`` work
        (reads, and writes whose repetition changes nothing), or work whose transaction
        had not begun (``fn`` marks ``progress.began`` once it has)."""
        progress = _Progress()
        try:
            async with self._conn() as conn:
                return await fn(conn, progress)
        except _Unavailable as e:
            if not e.retry or (progress.began and not idempotent):
                raise
        async with self._conn() as conn:
            return await fn(conn, _Progress())

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async def fn(conn: asyncpg.Connection, _: _Progress) -> asyncpg.Record | None:
            return await conn.fetchrow(sql, *args)

        return await self._run(fn, idempotent=True)

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        async def fn(conn: asyncpg.Connection, _: _Progress) -> Any:
            return await conn.fetchval(sql, *args)

        return await self._run(fn, idempotent=True)

    async def _execute(self, sql: str, *args: Any) -> str:
        """An idempotent statement (doing it twice leaves what doing it once does)."""

        async def fn(conn: asyncpg.Connection, _: _Progress) -> str:
            return await conn.execute(sql, *args)  # type: ignore[no-any-return]

        return await self._run(fn, idempotent=True)

    async def run(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], *, idempotent: bool) -> T:
        """``fn`` on a pooled connection (a feature's own tables: docs/architecture.md#storage);
        ``async with conn.transaction()`` in it for several statements. Retried once on a
        fresh connection if the first was dead, when ``idempotent``."""
        return await self._run(lambda conn, _: fn(conn), idempotent=idempotent)

    # ------------------------------------------------------------ users, identities

    async def upsert_identity(self, identity: Identity, new_uid: str, now: float) -> tuple[str, bool]:
        key = (identity.provider, identity.app_id, identity.subject)
        select = "SELECT uid FROM identities WHERE provider = $1 AND app_id = $2 AND subject = $3"

        async def fn(conn: asyncpg.Connection, progress: _Progress) -> tuple[str, bool]:
            uid: str | None = await conn.fetchval(select, *key)
            if uid is not None:
                return uid, False
            async with conn.transaction():
                progress.began = True
                await conn.execute("INSERT INTO users (uid, created) VALUES ($1, $2)", new_uid, now)
                got = await conn.fetchval(
                    "INSERT INTO identities (provider, app_id, subject, uid, unionid, created)"
                    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING uid",
                    *key,
                    new_uid,
                    identity.unionid,
                    now,
                )
                if got is None:
                    # A concurrent first login won (ON CONFLICT waited for it to commit):
                    # drop our user again and answer with theirs.
                    await conn.execute("DELETE FROM users WHERE uid = $1", new_uid)
            if got is not None:
                return new_uid, True
            uid = await conn.fetchval(select, *key)
            if uid is None:  # pragma: no cover - the winning row cannot vanish
                raise Internal("identity lookup failed")
            return uid, False

        return await self._run(fn, idempotent=False)

    async def get_user(self, uid: str) -> UserRecord | None:
        row = await self._fetchrow("SELECT uid, created, disabled FROM users WHERE uid = $1", uid)
        return UserRecord(row[0], row[1], bool(row[2])) if row else None

    async def set_user_disabled(self, uid: str, disabled: bool) -> bool:
        status = await self._execute("UPDATE users SET disabled = $1 WHERE uid = $2", disabled, uid)
        return _rowcount(status) > 0

    # --------------------------------------------------------------------- sessions

    async def create_session(self, record: SessionRecord) -> None:
        r = record

        async def fn(conn: asyncpg.Connection, progress: _Progress) -> None:
            # In a transaction of its own only so that a dead pooled connection is found
            # out at BEGIN, where a retry cannot insert the session twice.
            async with conn.transaction():
                progress.began = True
                await conn.execute(
                    "INSERT INTO sessions (id, token_hash, uid, provider, created, last_used, expires_max)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    r.id,
                    r.token_hash,
                    r.uid,
                    r.provider,
                    r.created,
                    r.last_used,
                    r.expires_max,
                )

        await self._run(fn, idempotent=False)

    async def session_by_id(self, session_ref: str) -> SessionRecord | None:
        return _session(await self._fetchrow(_SESSION_BY_ID, session_ref))

    async def session_by_hash(self, token_hash: bytes) -> SessionRecord | None:
        return _session(await self._fetchrow(_SESSION_BY_HASH, token_hash))

    async def auth_epoch(self) -> int | None:
        return None  # an epoch read would cost the same round trip as the session read

    async def touch_session(self, session_ref: str, now: float) -> None:
        await self._execute(
            "UPDATE sessions SET last_used = greatest(last_used, $1) WHERE id = $2", now, session_ref
        )

    async def revoke_session(self, session_ref: str, now: float) -> bool:
        status = await self._execute(
            "UPDATE sessions SET revoked = $1 WHERE id = $2 AND revoked IS NULL", now, session_ref
        )
        return _rowcount(status) > 0

    async def revoke_user_sessions(self, uid: str, now: float) -> int:
        status = await self._execute(
            "UPDATE sessions SET revoked = $1 WHERE uid = $2 AND revoked IS NULL", now, uid
        )
        return _rowcount(status)

    async def purge_sessions(self, idle_before: float, max_before: float, limit: int) -> int:
        status = await self._execute(
            "DELETE FROM sessions WHERE id IN"
            " (SELECT id FROM sessions WHERE last_used < $1 OR expires_max < $2 LIMIT $3)",
            idle_before,
            max_before,
            limit,
        )
        return _rowcount(status)

    # ------------------------------------------------------------------ rate limits

    async def take_tokens(
        self, key: str, rate: float, burst: float, want: int, now: float
    ) -> tuple[int, float]:
        self._takes += 1
        sweep = self._takes % _SWEEP_EVERY == 0

        async def fn(conn: asyncpg.Connection, progress: _Progress) -> tuple[int, float]:
            async with conn.transaction():
                progress.began = True
                # The no-op DO UPDATE locks an existing row (and returns it) so concurrent
                # instances take from one bucket in turn; a new key starts full.
                row = await conn.fetchrow(
                    "INSERT INTO rate_buckets AS b VALUES ($1, $2, $3, $3) ON CONFLICT (key)"
                    " DO UPDATE SET key = b.key RETURNING tokens, updated",
                    key,
                    burst,
                    now,
                )
                granted, left, full_at, wait = take(row[0], row[1], now, rate, burst, want)
                await conn.execute(
                    "UPDATE rate_buckets SET tokens = $2, updated = $3, full_at = $4 WHERE key = $1",
                    key,
                    left,
                    max(now, row[1]),
                    full_at,
                )
                if sweep:
                    await conn.execute("DELETE FROM rate_buckets WHERE full_at < $1", now)
            return granted, wait

        return await self._run(fn, idempotent=False)

    # -------------------------------------------------------------------- documents

    async def get_document(self, key: Key, rule: Filter = TRUE) -> bytes | None:
        if rule == FALSE:
            return None

        async def fn(conn: asyncpg.Connection, _: _Progress) -> bytes | None:
            return await docs.get_document(conn, (key.collection, key.uid, key.id), rule)

        return await self._run(fn, idempotent=True)

    async def query(
        self,
        collection: str,
        where: Filter,
        order: Sequence[OrderKey],
        limit: int,
        after: Sequence[Any] | None,
    ) -> list[tuple[list[Any], bytes]]:
        sql, args = compile_query(POSTGRES, collection, where, order, limit, after)

        async def fn(conn: asyncpg.Connection, _: _Progress) -> list[asyncpg.Record]:
            return await conn.fetch(sql, *args)  # type: ignore[no-any-return]

        rows = await self._run(fn, idempotent=True)
        out: list[tuple[list[Any], bytes]] = []
        for row in rows:
            *position, body = row
            out.append(([docs.position_value(v) for v in position], docs.text_bytes(body)))
        return out

    async def count(self, collection: str, where: Filter) -> int:
        sql, args = compile_count(POSTGRES, collection, where)
        return int(await self._fetchval(sql, *args))

    async def aggregate(
        self, collection: str, where: Filter, group: Group, max_groups: int
    ) -> list[GroupRow]:
        from ..data.aggregate import decode_rows
        from ..data.sql_aggregate import compile_aggregate

        accs = [(a.op, a.path) for a in group.accumulators]
        sql, args = compile_aggregate(POSTGRES, collection, where, group.keys, accs, max_groups + 1)

        async def fn(conn: asyncpg.Connection, _: _Progress) -> list[asyncpg.Record]:
            return await conn.fetch(sql, *args)  # type: ignore[no-any-return]

        return decode_rows(await self._run(fn, idempotent=True), group)

    async def ensure_search(self, declared: Mapping[str, Sequence[FieldPath]]) -> None:
        paths = sorted({p for ps in declared.values() for p in ps})
        if not paths:
            return
        first = min(declared)

        async def fn(conn: asyncpg.Connection, _: _Progress) -> None:
            await conn.execute("SELECT pg_advisory_lock($1)", _INDEX_LOCK)  # as ensure_indexes
            try:
                try:
                    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                except asyncpg.PostgresError as e:
                    raise ConfigError(
                        f"collections.{first}.search",
                        f"needs PostgreSQL's pg_trgm extension, which this role cannot create: {e}."
                        " Create it once as a superuser (CREATE EXTENSION pg_trgm), or drop the declaration.",
                    ) from None
                for path in paths:
                    # Builds over the stored documents; then PostgreSQL keeps it in step.
                    await conn.execute(search_index_ddl(search_index_name(path), path))
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _INDEX_LOCK)

        await self._run(fn, idempotent=True)  # IF NOT EXISTS

    async def write(self, ops: Sequence[WriteOp], now_iso: str) -> list[Any]:
        async def fn(conn: asyncpg.Connection, progress: _Progress) -> list[Any]:
            async with conn.transaction():
                progress.began = True
                txn = docs.Txn(conn)
                results: list[Any] = []
                for i, op in enumerate(ops):
                    try:
                        results.append(await run_async(steps(op, now_iso), txn.answer))
                    except MinibaseError as e:
                        numbered(e, i, len(ops))
                        raise
                    except asyncpg.exceptions.UntranslatableCharacterError as e:
                        # jsonb cannot hold \u0000 in strings.
                        err = InvalidArgument("strings may not contain the character \\u0000")
                        raise numbered(err, i, len(ops)) from e
                return results

        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return await self._run(fn, idempotent=False)
            except _RETRYABLE:
                # Deadlock or serialization failure: the transaction was rolled back whole.
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise Conflict("the write collided with concurrent writes: try again") from None
                await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def ensure_indexes(
        self, collection: str, indexes: Sequence[Sequence[tuple[str, ...]]], owner_first: bool
    ) -> None:
        if not indexes:
            return

        async def fn(conn: asyncpg.Connection, _: _Progress) -> None:
            # A session-level lock (released on unlock or disconnect): instances creating
            # the same indexes take turns, so IF NOT EXISTS never races in the catalog.
            await conn.execute("SELECT pg_advisory_lock($1)", _INDEX_LOCK)
            try:
                for paths in indexes:
                    # As the SQLite store: the declared shape, plus the owner-first one that
                    # owner-scoped reads use.
                    for owner in {owner_first, True}:
                        name = index_name(paths, owner_first=owner)
                        await conn.execute(index_ddl(POSTGRES, collection, name, paths, owner_first=owner))
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _INDEX_LOCK)

        await self._run(fn, idempotent=True)  # IF NOT EXISTS
