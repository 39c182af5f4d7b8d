"""The document writes of one SQLite job: :class:`Txn` answers :func:`~.writes.steps`'
requests (load, save, delete) on the writer's connection, inside the job's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from ..data.filters import FALSE, TRUE, Filter
from ..data.sql import SQLITE, Params, compile_filter
from ..errors import InvalidArgument
from .records import Key
from .sqlite_writer import BudgetedConnection, RunOffLoop
from .writes import Delete, Load, Request, Save, Saved, Stored

__all__ = ["INLINE_DOCUMENT", "MAX_VARIABLES", "Txn", "checked"]

# SQLite's default SQLITE_MAX_VARIABLE_NUMBER since 3.32; builds may allow more, but a
# query refused on one build and run on another would be a portability trap.
MAX_VARIABLES = 32766
# A stored document this large (bytes of JSON) is updated off the event loop: decoding,
# patching and encoding it takes milliseconds.
INLINE_DOCUMENT = 64 * 1024


def checked(params: Sequence[object]) -> Sequence[object]:
    """``params``, if SQLite can bind that many (else a clear 400, not a driver error)."""
    if len(params) > MAX_VARIABLES:
        raise InvalidArgument(
            f"the query is too large: it needs {len(params)} values, more than the database"
            f" takes ({MAX_VARIABLES}); use fewer conditions or $in values",
            max=MAX_VARIABLES,
            path="where",
        )
    return params


_ROW = "SELECT version, created, body FROM documents WHERE collection = ? AND uid = ? AND id = ?"
_INSERT_NEW = "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
_REPLACE = "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)"
_DELETE = "DELETE FROM documents WHERE collection = ? AND uid = ? AND id = ?"


def _matches(conn: sqlite3.Connection, key: Key, rule: Filter) -> bool:
    """Whether the stored document ``key`` matches ``rule`` (the one SQL compiler decides)."""
    if rule == TRUE:
        return True
    if rule == FALSE:
        return False
    params = Params(SQLITE)
    cond = compile_filter(rule, SQLITE, params)
    sql = f"SELECT 1 FROM documents WHERE collection = ? AND uid = ? AND id = ? AND ({cond})"  # noqa: S608 (compiled: values are bound)
    args = checked((key.collection, key.uid, key.id, *params.values))
    assert isinstance(conn, BudgetedConnection)
    with conn.guarded():  # a rule over a large document may take a while: a SELECT, so stoppable
        return conn.execute(sql, args).fetchone() is not None


class Txn:
    """Answers the requests of :func:`~.writes.steps` on the writer's connection, inside
    the job's transaction. A batch updating one document many times decodes it once
    (decoding a large one takes milliseconds, holding the GIL): later ops start from the
    copy the last one stored."""

    def __init__(self, conn: sqlite3.Connection, now_iso: str) -> None:
        assert isinstance(conn, BudgetedConnection)
        self.conn = conn
        self.now_iso = now_iso
        self.docs: dict[Key, dict[str, Any]] = {}

    def answer(self, request: Request) -> Any:
        if isinstance(request, Load):
            return self._load(request)
        if isinstance(request, Save):
            return self._save(request)
        return self._delete(request)

    def _load(self, req: Load) -> Stored | None:
        conn, key = self.conn, req.key
        row = conn.execute(_ROW, (key.collection, key.uid, key.id)).fetchone()
        if row is not None and req.content and req.lock and conn.on_loop and len(row[2]) > INLINE_DOCUMENT:
            # An update of a large document: its rule checks, decoding and patching take
            # milliseconds, so the job moves to the writer's thread before any of them.
            raise RunOffLoop()
        allowed = _matches(conn, key, req.rule)  # also when absent: a rule SQLite cannot take fails alike
        if row is None:
            return None
        version, body = row[0], row[2]

        def doc() -> dict[str, Any]:
            cached = self.docs.get(key)
            return cached if cached is not None and cached["_version"] == version else orjson.loads(body)

        readable: list[bool] = []

        def is_readable() -> bool:
            if not readable:
                readable.append(_matches(conn, key, req.read_rule))
            return readable[0]

        return Stored(version, row[1], allowed, doc, body.encode, is_readable)

    def _save(self, req: Save) -> Saved | None:
        conn, key, doc = self.conn, req.key, req.doc
        k = (key.collection, key.uid, key.id)
        body = orjson.dumps(doc).decode()
        row = (*k, doc["_version"], doc["_created"], doc["_updated"], body)
        if req.expect is None:
            # Only if absent: one statement, no look first (the primary key is the table's
            # one unique constraint, so "no change" means the document exists).
            if conn.execute(_INSERT_NEW, row).rowcount == 0:
                return None
        else:
            conn.execute(_REPLACE, row)
        self.docs[key] = doc
        allowed = _matches(conn, key, req.rule)
        return Saved(body.encode(), allowed, allowed and _matches(conn, key, req.read_rule))

    def _delete(self, req: Delete) -> bool:
        key = req.key
        if not _matches(self.conn, key, req.rule):
            return False
        cur = self.conn.execute(_DELETE, (key.collection, key.uid, key.id))
        self.docs.pop(key, None)
        return cur.rowcount > 0
