"""TableStore's document writes: the requests of :func:`~.writes.steps` answered on
TableStore's primitives.

One op on its own is optimistic: read, decide, then a conditional write (the version it
read, or "must not exist"); a lost condition retries the op from the start. A batch is one
local transaction on the caller's partition: reads see the batch's own writes, which go
out in one ``BatchWriteRow`` at the end. Rules are evaluated in Python
(:mod:`.tablestore_eval`), with the same results as the SQL compilers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..data.filters import TRUE, Filter
from ..errors import Conflict, Internal, InvalidArgument, MinibaseError, PayloadTooLarge, Unavailable
from .records import Key
from .tablestore_eval import matches, partition
from .writes import Get, Load, Request, Save, Saved, Stored, WriteOp, numbered, run_async, steps

if TYPE_CHECKING:
    from ..data.aggregate import Group, GroupRow
    from .tablestore import TableStoreStore

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_MAX_ROWS",
    "MAX_CELL_BYTES",
    "ATTEMPTS",
    "Lost",
    "StoredDoc",
    "backoff",
    "write",
]

log = logging.getLogger("minibase.store.tablestore")

MAX_CELL_BYTES = 2 * 1024 * 1024  # TableStore's limit on one attribute column
BATCH_MAX_ROWS = 200  # BatchWriteRow's limit on rows in one request
BATCH_MAX_BYTES = 4 * 1024 * 1024  # BatchWriteRow's limit on one request's size

ATTEMPTS = 40  # optimistic read-then-conditional-write rounds before giving up
_BACKOFF = 0.002  # seconds; doubled per lost round (capped at 64x), with jitter


class Lost(Exception):
    """A conditional write lost a race: read again and retry."""


@dataclass(slots=True)
class StoredDoc:
    version: int
    doc: dict[str, Any]


def _readable(doc: dict[str, Any], rule: Filter) -> bool:
    return rule == TRUE or matches(doc, rule)


def _stored(cur: StoredDoc, req: Load) -> Stored:
    doc = cur.doc
    return Stored(
        cur.version,
        doc["_created"],
        _readable(doc, req.rule),
        lambda: doc,
        lambda: orjson.dumps(doc),
        lambda: _readable(doc, req.read_rule),
    )


def _encode(doc: dict[str, Any]) -> str:
    body = orjson.dumps(doc)
    if len(body) > MAX_CELL_BYTES:
        raise PayloadTooLarge("TableStore holds at most 2 MB in one document")
    return body.decode()


class _Direct:
    """One op outside a batch: conditional writes, each at once."""

    def __init__(self, store: TableStoreStore) -> None:
        self.store = store

    async def answer(self, request: Request) -> Any:
        s = self.store
        if isinstance(request, Load):
            cur = await s.read_doc(request.key)
            return None if cur is None else _stored(cur, request)
        if isinstance(request, Save):
            body = _encode(request.doc)
            allowed = _readable(request.doc, request.rule)
            if allowed:  # nothing to undo a write with: write only what may stand
                try:
                    await s.store_doc(request.key, body, request.doc["_version"], request.expect)
                except Lost:
                    if request.expect is not None:
                        raise  # changed since it was read: the op starts again
                    return None  # created meanwhile
            return Saved(body.encode(), allowed, allowed and _readable(request.doc, request.read_rule))
        cur = await s.read_doc(request.key)
        if cur is None or not _readable(cur.doc, request.rule):
            return False
        await s.delete_doc(request.key, cur.version)  # Lost: changed since read, start again
        return True


class _Batch:
    """A batch's ops in one local transaction: writes collect and go out at the end."""

    def __init__(self, store: TableStoreStore, txn: str) -> None:
        self.store = store
        self.txn = txn
        self.state: dict[tuple[str, str], StoredDoc | None] = {}
        self.writes: dict[tuple[str, str], tuple[Key, str | None, int]] = {}

    async def _current(self, key: Key) -> StoredDoc | None:
        k = (key.collection, key.id)
        if k not in self.state:
            self.state[k] = await self.store.read_doc(key, self.txn)
        return self.state[k]

    async def answer(self, request: Request) -> Any:
        key = request.key
        k = (key.collection, key.id)
        cur = await self._current(key)
        if isinstance(request, Load):
            return None if cur is None else _stored(cur, request)
        if isinstance(request, Save):
            if request.expect is None and cur is not None:
                return None
            body, version = _encode(request.doc), request.doc["_version"]
            allowed = _readable(request.doc, request.rule)
            if allowed:
                self.state[k] = StoredDoc(version, request.doc)
                self.writes[k] = (key, body, version)
            return Saved(body.encode(), allowed, allowed and _readable(request.doc, request.read_rule))
        if cur is None or not _readable(cur.doc, request.rule):
            return False
        self.state[k] = None
        self.writes[k] = (key, None, cur.version)
        return True


async def aggregate(
    store: TableStoreStore, collection: str, where: Filter, group: Group, max_groups: int
) -> list[GroupRow]:
    """In memory, over the owner's matching documents (at most ``max_sort`` scanned)."""
    uid = partition(collection, where)
    if uid is None:
        return []
    end = time.monotonic() + store.query_time
    bodies: list[bytes] = []
    scanned = 0
    async for page in store._pages(collection, uid, True, None, end):
        scanned += len(page)
        if scanned > store.max_sort:
            raise InvalidArgument(
                f"TableStore cannot serve this aggregate efficiently: it groups in memory, and the"
                f" owner has more than {store.max_sort} documents in {collection!r}. Use the SQLite"
                " or PostgreSQL backend."
            )
        bodies += [body for _, body in await store._select(page, where, (), None, end)]
    docs = [orjson.loads(b) for b in bodies]
    from ..data.aggregate import group_documents

    return await asyncio.to_thread(group_documents, docs, group, max_groups + 1)


async def write(store: TableStoreStore, ops: Sequence[WriteOp], now_iso: str) -> list[Any]:
    if len(ops) == 1:
        return [await _write_one(store, ops[0], now_iso)]
    return await _write_batch(store, ops, now_iso)


async def _write_one(store: TableStoreStore, op: WriteOp, now_iso: str) -> Any:
    if isinstance(op, Get):
        return await store.get_document(op.key, op.rule)
    direct = _Direct(store)
    for attempt in range(ATTEMPTS):
        try:
            return await run_async(steps(op, now_iso), direct.answer)
        except Lost:
            await backoff(attempt)
    raise Conflict("the document kept changing concurrently: try again")


async def _write_batch(store: TableStoreStore, ops: Sequence[WriteOp], now_iso: str) -> list[Any]:
    uid = ops[0].key.uid
    for i, op in enumerate(ops):
        if op.key.uid != uid:
            raise InvalidArgument(
                "TableStore applies a batch atomically only within one owner's documents:"
                " this batch touches documents of more than one user",
                index=i,
            )
    try:
        txn = await store.begin(uid)
    except Lost:  # pragma: no cover - StartLocalTransaction has no condition
        raise Internal("could not start a transaction") from None
    committed = False
    try:
        batch = _Batch(store, txn)
        results: list[Any] = []
        for i, op in enumerate(ops):
            try:
                results.append(await run_async(steps(op, now_iso), batch.answer))
            except MinibaseError as e:
                numbered(e, i, len(ops))
                raise
        if batch.writes:
            _check_batch_limits(batch.writes.values())
            await store.write_rows(txn, list(batch.writes.values()))
        await store.commit(txn)
        committed = True
        return results
    finally:
        if not committed:
            try:
                await store.abort(txn)
            except (Internal, Unavailable, Lost):
                # It expires on its own (60 s); the partition stays locked until then.
                log.warning("could not abort TableStore transaction %s", txn)


def _check_batch_limits(writes: Any) -> None:
    rows = list(writes)
    if len(rows) > BATCH_MAX_ROWS:
        raise InvalidArgument(f"TableStore writes at most {BATCH_MAX_ROWS} documents in one batch")
    size = sum(len(body.encode()) + 64 for _, body, _ in rows if body is not None)
    if size > BATCH_MAX_BYTES:
        raise PayloadTooLarge("TableStore writes at most 4 MB in one batch")


async def backoff(attempt: int) -> None:
    """Wait before retrying a lost optimistic write, so contending writers spread out."""
    await asyncio.sleep(_BACKOFF * (1 << min(attempt, 6)) * (0.5 + random.random()))  # noqa: S311
