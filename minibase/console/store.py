"""The console's tables (admins, their sessions, the persisted audit trail) and the
read-only views of the app's tables it shows (user search, identities, sessions, counts).

One protocol, :class:`ConsoleStore`, with a SQLite and a PostgreSQL implementation that
share their SQL. Admin traffic is a few requests a minute, so each call opens its own
connection (no pool to keep or close: stateless, as on Function Compute); the app's hot
path never touches these tables except for the audit trail's batched inserts.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError, MinibaseError, Unavailable
from ..util.record import record

__all__ = [
    "AdminRecord",
    "AdminSessionRecord",
    "AuditRecord",
    "ConsoleStore",
    "PostgresConsoleStore",
    "SQLiteConsoleStore",
    "build_console_store",
]


@record
class AdminRecord:
    email: str
    password_hash: str
    created: float
    updated: float


@record
class AdminSessionRecord:
    id: str  # SHA-256 (hex) of the cookie's token: the token itself is never stored
    email: str
    csrf: str
    created: float
    last_used: float


@record
class AuditRecord:
    at: float
    event: str
    uid: str | None
    admin: str | None
    request_id: str
    data: str  # the whole audit line, JSON
    id: int = 0


class ConsoleStore(Protocol):
    async def ensure(self) -> None:
        """Create the console's tables if missing (idempotent; safe with several instances)."""
        ...

    # admins
    async def add_admin(self, email: str, password_hash: str, now: float) -> bool: ...
    async def admin(self, email: str) -> AdminRecord | None: ...
    async def admins(self) -> list[AdminRecord]: ...
    async def set_admin_password(self, email: str, password_hash: str, now: float) -> bool: ...
    async def remove_admin(self, email: str) -> bool: ...

    # admin sessions
    async def add_admin_session(self, record: AdminSessionRecord) -> None: ...
    async def admin_session(self, session_id: str) -> AdminSessionRecord | None: ...
    async def touch_admin_session(self, session_id: str, now: float) -> None: ...
    async def remove_admin_session(self, session_id: str) -> None: ...
    async def purge_admin_sessions(self, idle_before: float) -> None: ...

    # audit trail
    async def add_audit(self, records: Sequence[AuditRecord]) -> None: ...
    async def audit(
        self,
        kind: str | None,
        uid: str | None,
        since: float | None,
        until: float | None,
        before: int | None,
        limit: int,
    ) -> list[AuditRecord]: ...

    # views of the app's tables
    async def find_users(self, text: str, provider: str | None, limit: int) -> list[dict[str, Any]]: ...
    async def identities(self, uid: str) -> list[dict[str, Any]]: ...
    async def phone(self, uid: str) -> str | None: ...
    async def sessions(self, uid: str, limit: int) -> list[dict[str, Any]]: ...
    async def counts(self) -> dict[str, Any]: ...

    # export, import
    async def export_batch(
        self, kind: str, after: Sequence[Any] | None, limit: int
    ) -> list[tuple[Any, ...]]: ...
    async def import_batch(self, kind: str, rows: Sequence[Sequence[Any]]) -> None: ...


_TABLES_SQLITE = """
CREATE TABLE IF NOT EXISTS console_admins (
    email TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, csrf TEXT NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_email ON console_sessions(email);
CREATE TABLE IF NOT EXISTS console_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, event TEXT NOT NULL, uid TEXT,
    admin TEXT, request_id TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_audit_at ON console_audit(at);
CREATE INDEX IF NOT EXISTS console_audit_uid ON console_audit(uid, id);
"""

_TABLES_POSTGRES = """
CREATE TABLE IF NOT EXISTS console_admins (
    email TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, csrf TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, last_used DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_email ON console_sessions(email);
CREATE TABLE IF NOT EXISTS console_audit (
    id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, event TEXT NOT NULL, uid TEXT,
    admin TEXT, request_id TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_audit_at ON console_audit(at);
CREATE INDEX IF NOT EXISTS console_audit_uid ON console_audit(uid, id);
"""

_ADMIN = "SELECT email, password_hash, created, updated FROM console_admins"
_USER_COLUMNS = "u.uid, u.created, u.disabled"


def _like(text: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", text) + "%"


class _SQLStore:
    """The SQL both backends run; ``?`` placeholders (rewritten for PostgreSQL)."""

    tables = ""

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    async def script(self, sql: str) -> None:
        raise NotImplementedError

    async def ensure(self) -> None:
        await self.script(self.tables)

    async def add_admin(self, email: str, password_hash: str, now: float) -> bool:
        n = await self.execute(
            "INSERT INTO console_admins VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            email,
            password_hash,
            now,
            now,
        )
        return n == 1

    async def admin(self, email: str) -> AdminRecord | None:
        rows = await self.fetch(_ADMIN + " WHERE email = ?", email)
        return AdminRecord(*rows[0]) if rows else None

    async def admins(self) -> list[AdminRecord]:
        return [AdminRecord(*r) for r in await self.fetch(_ADMIN + " ORDER BY email")]

    async def set_admin_password(self, email: str, password_hash: str, now: float) -> bool:
        n = await self.execute(
            "UPDATE console_admins SET password_hash = ?, updated = ? WHERE email = ?",
            password_hash,
            now,
            email,
        )
        # A new password ends every session of the old one.
        await self.execute("DELETE FROM console_sessions WHERE email = ?", email)
        return n == 1

    async def remove_admin(self, email: str) -> bool:
        await self.execute("DELETE FROM console_sessions WHERE email = ?", email)
        return await self.execute("DELETE FROM console_admins WHERE email = ?", email) == 1

    async def add_admin_session(self, record: AdminSessionRecord) -> None:
        await self.execute(
            "INSERT INTO console_sessions VALUES (?, ?, ?, ?, ?)",
            record.id,
            record.email,
            record.csrf,
            record.created,
            record.last_used,
        )

    async def admin_session(self, session_id: str) -> AdminSessionRecord | None:
        # Joined with the admins: a removed admin's session is gone at once.
        rows = await self.fetch(
            "SELECT s.id, s.email, s.csrf, s.created, s.last_used FROM console_sessions s"
            " JOIN console_admins a ON a.email = s.email WHERE s.id = ?",
            session_id,
        )
        return AdminSessionRecord(*rows[0]) if rows else None

    async def touch_admin_session(self, session_id: str, now: float) -> None:
        await self.execute("UPDATE console_sessions SET last_used = ? WHERE id = ?", now, session_id)

    async def remove_admin_session(self, session_id: str) -> None:
        await self.execute("DELETE FROM console_sessions WHERE id = ?", session_id)

    async def purge_admin_sessions(self, idle_before: float) -> None:
        await self.execute("DELETE FROM console_sessions WHERE last_used < ?", idle_before)

    async def add_audit(self, records: Sequence[AuditRecord]) -> None:
        if records:
            await self.execute_many(
                "INSERT INTO console_audit (at, event, uid, admin, request_id, data) VALUES (?, ?, ?, ?, ?, ?)",
                [(r.at, r.event, r.uid, r.admin, r.request_id, r.data) for r in records],
            )

    async def audit(
        self,
        kind: str | None,
        uid: str | None,
        since: float | None,
        until: float | None,
        before: int | None,
        limit: int,
    ) -> list[AuditRecord]:
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if kind:
            where.append("event LIKE ? ESCAPE '\\'")
            args.append(_like(kind))
        if uid:
            where.append("uid = ?")
            args.append(uid)
        for column, op, value in (("at", ">=", since), ("at", "<", until), ("id", "<", before)):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        rows = await self.fetch(
            "SELECT at, event, uid, admin, request_id, data, id FROM console_audit"  # noqa: S608
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            *args,
            limit,
        )
        return [AuditRecord(*r) for r in rows]

    async def _optional(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a table that may not exist yet (``user_phones``: made by the platform
        store at the server's start): none then."""
        try:
            return await self.fetch(sql, *args)
        except MinibaseError:
            raise
        except Exception:  # the backend's "no such table"
            return []

    async def phone(self, uid: str) -> str | None:
        rows = await self._optional("SELECT phone FROM user_phones WHERE uid = ?", uid)
        return str(rows[0][0]) if rows else None

    async def find_users(self, text: str, provider: str | None, limit: int) -> list[dict[str, Any]]:
        args: list[Any] = []
        where = ["1 = 1"]
        if text:
            # An exact uid, openid/subject, unionid or phone, or a subject's beginning (a dev name).
            phones = [
                r[0]
                for r in await self._optional("SELECT uid FROM user_phones WHERE phone = ? LIMIT 100", text)
            ]
            marks = "".join(", ?" for _ in phones)
            where.append(
                f"(u.uid IN (?{marks}) OR EXISTS (SELECT 1 FROM identities i WHERE i.uid = u.uid"  # noqa: S608
                " AND (i.subject = ? OR i.unionid = ? OR i.subject LIKE ? ESCAPE '\\')))"
            )
            args += [text, *phones, text, text, _like(text)]
        if provider:
            where.append("EXISTS (SELECT 1 FROM identities p WHERE p.uid = u.uid AND p.provider = ?)")
            args.append(provider)
        rows = await self.fetch(
            f"SELECT {_USER_COLUMNS} FROM users u WHERE {' AND '.join(where)}"  # noqa: S608
            " ORDER BY u.created DESC, u.uid LIMIT ?",
            *args,
            limit,
        )
        users = [{"uid": r[0], "created": r[1], "disabled": bool(r[2])} for r in rows]
        if users:
            marks = ", ".join("?" for _ in users)
            idents = await self.fetch(
                f"SELECT uid, provider, subject FROM identities WHERE uid IN ({marks}) ORDER BY created",  # noqa: S608
                *[u["uid"] for u in users],
            )
            by_uid: dict[str, list[dict[str, str]]] = {}
            for uid, prov, subject in idents:
                by_uid.setdefault(uid, []).append({"provider": prov, "subject": subject})
            for u in users:
                u["identities"] = by_uid.get(u["uid"], [])
        return users

    async def identities(self, uid: str) -> list[dict[str, Any]]:
        rows = await self.fetch(
            "SELECT provider, app_id, subject, unionid, created FROM identities WHERE uid = ? ORDER BY created",
            uid,
        )
        return [
            {"provider": r[0], "appId": r[1], "subject": r[2], "unionid": r[3], "created": r[4]} for r in rows
        ]

    async def sessions(self, uid: str, limit: int) -> list[dict[str, Any]]:
        rows = await self.fetch(
            "SELECT id, provider, created, last_used, expires_max, revoked FROM sessions WHERE uid = ?"
            " ORDER BY last_used DESC LIMIT ?",
            uid,
            limit,
        )
        return [
            {
                "ref": r[0],
                "provider": r[1],
                "created": r[2],
                "lastUsed": r[3],
                "expiresMax": r[4],
                "revoked": r[5],
            }
            for r in rows
        ]

    async def counts(self) -> dict[str, Any]:
        users = await self.fetch(
            "SELECT count(*), coalesce(sum(CASE WHEN disabled THEN 1 ELSE 0 END), 0) FROM users"
        )
        docs = await self.fetch(
            "SELECT collection, count(*) FROM documents GROUP BY collection ORDER BY collection"
        )
        return {
            "users": int(users[0][0]),
            "disabledUsers": int(users[0][1]),
            "documents": {c: int(n) for c, n in docs},
        }

    # ------------------------------------------------------------ export, import
    # Rows in key order, a batch at a time (keyset pagination: millions of rows stream).

    body_out = "body"
    body_in = "?"

    def _export_sql(self, kind: str) -> tuple[str, int]:
        """(the SELECT of one batch after a key, the key's width) for ``kind``."""
        if kind == "user":
            return "SELECT uid, created, disabled FROM users WHERE uid > ? ORDER BY uid LIMIT ?", 1
        if kind == "identity":
            return (
                "SELECT provider, app_id, subject, uid, unionid, created FROM identities"
                " WHERE (provider, app_id, subject) > (?, ?, ?) ORDER BY provider, app_id, subject LIMIT ?",
                3,
            )
        return (
            f"SELECT collection, uid, id, version, created, updated, {self.body_out} FROM documents"  # noqa: S608
            " WHERE (collection, uid, id) > (?, ?, ?) ORDER BY collection, uid, id LIMIT ?",
            3,
        )

    async def export_batch(self, kind: str, after: Sequence[Any] | None, limit: int) -> list[tuple[Any, ...]]:
        sql, width = self._export_sql(kind)
        return await self.fetch(sql, *(after if after is not None else [""] * width), limit)

    async def import_batch(self, kind: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows (existing keys are left as they are)."""
        if kind == "user":
            sql = "INSERT INTO users (uid, created, disabled) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
        elif kind == "identity":
            sql = (
                "INSERT INTO identities (provider, app_id, subject, uid, unionid, created)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            )
        else:
            sql = (
                "INSERT INTO documents (collection, uid, id, version, created, updated, body)"  # noqa: S608
                f" VALUES (?, ?, ?, ?, ?, ?, {self.body_in}) ON CONFLICT DO NOTHING"
            )
        await self.execute_many(sql, rows)


class SQLiteConsoleStore(_SQLStore):
    tables = _TABLES_SQLITE

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _run(self, work: Any) -> Any:
        try:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as e:
            raise Unavailable("the database is unavailable") from e
        try:
            return work(conn)
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "unable to open" in str(e):
                raise Unavailable("the database is unavailable") from e
            raise
        finally:
            conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._run, lambda c: c.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: Any) -> int:
        return await asyncio.to_thread(self._run, lambda c: c.execute(sql, args).rowcount)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        def work(c: sqlite3.Connection) -> None:
            with c:
                c.execute("BEGIN")
                c.executemany(sql, rows)

        await asyncio.to_thread(self._run, work)

    async def script(self, sql: str) -> None:
        await asyncio.to_thread(self._run, lambda c: c.executescript(sql))


def _pg_sql(sql: str) -> str:
    n = 0

    def mark(_: re.Match[str]) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return re.sub(r"\?", mark, sql)


class PostgresConsoleStore(_SQLStore):
    tables = _TABLES_POSTGRES
    body_out = "body::text"
    body_in = "?::text::jsonb"

    def __init__(self, url: str) -> None:
        self.url = url

    async def _conn(self) -> Any:
        import asyncpg

        try:
            return await asyncpg.connect(self.url, timeout=10)
        except (OSError, asyncpg.PostgresError) as e:
            raise Unavailable("the database is unavailable") from e

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = await self._conn()
        try:
            return [tuple(r) for r in await conn.fetch(_pg_sql(sql), *args)]
        finally:
            await conn.close()

    async def execute(self, sql: str, *args: Any) -> int:
        conn = await self._conn()
        try:
            status = await conn.execute(_pg_sql(sql), *args)
        finally:
            await conn.close()
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn = await self._conn()
        try:
            await conn.executemany(_pg_sql(sql), rows)
        finally:
            await conn.close()

    async def script(self, sql: str) -> None:
        conn = await self._conn()
        try:
            # Two instances creating the tables at once: serialize on an advisory lock.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(7304120815)")
                await conn.execute(sql)
        finally:
            await conn.close()


def build_console_store(url: str, sqlite_path: Path | None) -> ConsoleStore:
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresConsoleStore(url)
    if sqlite_path is not None:
        return SQLiteConsoleStore(sqlite_path)
    raise ConfigError("database.url", "the admin console needs SQLite or PostgreSQL (not TableStore)")
