"""PostgreSQL's documents table: its SQL, how values travel, and the write requests.

:class:`Txn` answers the requests of :func:`~.writes.steps` (the write semantics every
backend shares) inside a batch's transaction, testing a rule in the very statement that
reads or writes the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from ..data.filters import FALSE, TRUE, Filter
from ..data.sql import POSTGRES, Params, compile_filter
from .writes import Delete, Load, Request, Save, Saved, Stored

__all__ = ["Txn", "encode", "get_document", "init_connection", "position_value", "text_bytes"]

KEY = "collection = $1 AND uid = $2 AND id = $3"
_GET = f"SELECT body::text FROM documents WHERE {KEY}"  # noqa: S608
_INSERT = (
    "INSERT INTO documents (collection, uid, id, version, created, updated, body)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb) ON CONFLICT DO NOTHING RETURNING body::text"
)
_UPDATE = f"UPDATE documents SET version = $4, updated = $5, body = $6::text::jsonb WHERE {KEY} RETURNING body::text"  # noqa: S608
_DELETE = f"DELETE FROM documents WHERE {KEY}"  # noqa: S608


# ``numeric`` travels as text, as int or float, never Decimal. Every number in a body was
# written by orjson (an int, or a float in its shortest round-trip form), so the text
# PostgreSQL returns parses back to the very same Python number and a bound float is sent
# as that same text: filters on floats match exactly and cursor positions continue exactly.
# (asyncpg's default codec would bind 0.1 as 0.1000000000000000055511151231257827…)


def _encode_numeric(value: Any) -> str:
    if isinstance(value, bool):  # not a number here; the compiler binds int(b) anyway
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form; 'nan'/'inf' are refused by the server
    return str(value)  # int, Decimal, str


def _decode_numeric(text: str) -> int | float:
    if text.lstrip("-").isdigit():
        return int(text)
    return float(text)


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "numeric", schema="pg_catalog", encoder=_encode_numeric, decoder=_decode_numeric, format="text"
    )


_INT64 = (-(2**63), 2**63 - 1)


def position_value(v: Any) -> Any:
    """A sort-column value as the compiler accepts it back in a cursor position: an int
    within 64 bits (larger ones become float: orjson and the compiler stop at 64 bits)."""
    if isinstance(v, int) and not _INT64[0] <= v <= _INT64[1]:
        return float(v)
    return v


def encode(doc: dict[str, Any]) -> str:
    body = orjson.dumps(doc)
    if b"e+" in body:  # maybe a float written with an exponent (orjson: |x| >= 1e16)
        body = orjson.dumps(_widen(doc))
    return body.decode()


def _widen(value: Any) -> Any:
    """``value`` with every float of magnitude >= 1e16 written out as digits and ``.0``.

    jsonb keeps a number's digits and scale, not its spelling: ``1e+19`` would come back
    as the integer ``10000000000000000000``. ``10000000000000000000.0`` comes back as
    written, and parses to the very same double (it is that double's exact value).
    """
    if type(value) is float and not -1e16 < value < 1e16:
        return orjson.Fragment(b"%d.0" % int(value))
    if type(value) is dict:
        return {k: _widen(v) for k, v in value.items()}
    if type(value) is list:
        return [_widen(v) for v in value]
    return value


class _Rule:
    """A compiled rule whose placeholders continue after the statement's own ``$1..$n``;
    ``also`` are more rules compiled after it (``also_sql``), for one statement to test
    several."""

    __slots__ = ("also_sql", "args", "sql")

    def __init__(self, rule: Filter, *args: Any, also: Sequence[Filter] = ()) -> None:
        params = Params(POSTGRES)
        for a in args:
            params.add(a)
        self.sql = f"({compile_filter(rule, POSTGRES, params)})"  # never NULL
        self.also_sql = [f"({compile_filter(f, POSTGRES, params)})" for f in also]
        self.args: list[Any] = list(params.values)


def text_bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


async def get_document(conn: asyncpg.Connection, k: tuple[str, str, str], rule: Filter) -> bytes | None:
    if rule == FALSE:
        return None
    if rule == TRUE:
        body = await conn.fetchval(_GET, *k)
    else:
        r = _Rule(rule, *k)
        body = await conn.fetchval(f"{_GET} AND {r.sql}", *r.args)
    return None if body is None else text_bytes(body)


class Txn:
    """Answers the write requests of one batch on ``conn``, inside its transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def answer(self, request: Request) -> Any:
        if isinstance(request, Load):
            return await self._load(request)
        if isinstance(request, Save):
            return await self._save(request)
        return await self._delete(request)

    async def _load(self, req: Load) -> Stored | None:
        k = (req.key.collection, req.key.uid, req.key.id)
        r = _Rule(req.rule, *k, also=[req.read_rule])
        body = "body::text" if req.content else "NULL"
        lock = " FOR UPDATE" if req.lock else ""
        row = await self.conn.fetchrow(
            f"SELECT version, created, {body}, {r.sql}, {r.also_sql[0]} FROM documents"  # noqa: S608
            f" WHERE {KEY}{lock}",
            *r.args,
        )
        if row is None:
            return None
        text, readable = row[2], bool(row[4])
        return Stored(
            row[0],
            row[1],
            bool(row[3]),
            lambda: orjson.loads(text),
            lambda: text_bytes(text),
            lambda: readable,
        )

    async def _save(self, req: Save) -> Saved | None:
        key, doc = req.key, req.doc
        k = (key.collection, key.uid, key.id)
        if req.expect is None:
            values: tuple[Any, ...] = (*k, doc["_version"], doc["_created"], doc["_updated"], encode(doc))
            sql = _INSERT
        else:
            values = (*k, doc["_version"], doc["_updated"], encode(doc))
            sql = _UPDATE
        if req.rule == TRUE and req.read_rule == TRUE:
            body = await self.conn.fetchval(sql, *values)
            return None if body is None else Saved(text_bytes(body), True, True)
        r = _Rule(req.rule, *values, also=[req.read_rule])
        row = await self.conn.fetchrow(f"{sql}, {r.sql}, {r.also_sql[0]}", *r.args)
        if row is None:
            return None
        return Saved(text_bytes(row[0]), bool(row[1]), bool(row[1]) and bool(row[2]))

    async def _delete(self, req: Delete) -> bool:
        k = (req.key.collection, req.key.uid, req.key.id)
        if req.rule == TRUE:
            status = await self.conn.execute(_DELETE, *k)
        else:
            r = _Rule(req.rule, *k)
            status = await self.conn.execute(f"{_DELETE} AND {r.sql}", *r.args)
        tail = status.rpartition(" ")[2]
        return tail.isdigit() and int(tail) > 0
