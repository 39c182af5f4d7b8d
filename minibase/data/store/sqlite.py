"""The embedded default backend: one SQLite file in WAL mode.

Writes go through :class:`SQLiteWriter` (one connection, group commit, durable). Reads
run on per-thread read-only connections directly on the caller's thread: a point read
takes microseconds, far less than a hop to a thread pool would.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ...auth.providers.base import Identity
from .base import SessionRecord, UserRecord
from .sqlite_writer import SQLiteWriter

__all__ = ["SQLiteStore"]

# Versioned schema changes, applied in order and recorded in schema_migrations.
MIGRATIONS: list[tuple[int, str]] = [
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
]

_SESSION_SELECT = (
    "SELECT s.id, s.token_hash, s.uid, s.provider, s.created, s.last_used, s.expires_max,"
    " s.revoked IS NOT NULL, coalesce(u.disabled, 1)"
    " FROM sessions s LEFT JOIN users u ON u.uid = s.uid"
)
_SESSION_BY_ID = _SESSION_SELECT + " WHERE s.id = ?"
_SESSION_BY_HASH = _SESSION_SELECT + " WHERE s.token_hash = ?"


def _session(row: tuple[Any, ...] | None) -> SessionRecord | None:
    if row is None:
        return None
    return SessionRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]), bool(row[8]))


class SQLiteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = SQLiteWriter(self._connect_writer)

    # ------------------------------------------------------------------ connections

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it is acknowledged (NORMAL may lose the last
        # transactions on power loss in WAL mode).
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Migrate on a connection of our own, before the writer thread exists, so that
        # several processes starting at once serialize on BEGIN IMMEDIATE.
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
                for statement in sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        finally:
            conn.close()

    async def close(self) -> None:
        await self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()

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

    # -------------------------------------------------------------------- documents

    async def put_document(
        self, collection: str, uid: str, doc_id: str, obj: Mapping[str, Any], now_iso: str
    ) -> None:
        def job(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT version, created FROM documents WHERE collection = ? AND uid = ? AND id = ?",
                (collection, uid, doc_id),
            ).fetchone()
            version, created = (row[0] + 1, row[1]) if row else (1, now_iso)
            doc = {
                "id": doc_id,
                **obj,
                "uid": uid,
                "_version": version,
                "_created": created,
                "_updated": now_iso,
            }
            body = orjson.dumps(doc).decode()
            conn.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (collection, uid, doc_id, version, created, now_iso, body),
            )

        await self._writer.run(job)

    async def get_document(self, collection: str, uid: str, doc_id: str) -> bytes | None:
        row = (
            self._reader()
            .execute(
                "SELECT body FROM documents WHERE collection = ? AND uid = ? AND id = ?",
                (collection, uid, doc_id),
            )
            .fetchone()
        )
        return row[0].encode() if row else None

    async def list_documents(
        self, collection: str, uid: str, after_id: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        rows = (
            self._reader()
            .execute(
                "SELECT id, body FROM documents WHERE collection = ? AND uid = ? AND id > ? ORDER BY id LIMIT ?",
                (collection, uid, after_id or "", limit),
            )
            .fetchall()
        )
        return [(r[0], r[1].encode()) for r in rows]

    async def remove_document(self, collection: str, uid: str, doc_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM documents WHERE collection = ? AND uid = ? AND id = ?", (collection, uid, doc_id)
            )
            return cur.rowcount > 0

        return await self._writer.run(job)
