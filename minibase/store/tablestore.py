"""Alibaba Cloud TableStore (OTS) backend, through the official ``tablestore`` SDK.

``database.url = "tablestore://INSTANCE?endpoint=https://INSTANCE.REGION.ots.aliyuncs.com"``;
credentials come from the Function Compute runtime (``ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/
SECURITY_TOKEN``, read by :mod:`minibase.config`). The SDK is synchronous, so every call
runs on a worker thread.

Tables (created on open when missing; ``prefix`` defaults to ``minibase_``):

- ``documents``: primary key ``(uid, collection, id)``, columns ``body`` (the document's
  JSON) and ``version``. The owner is the partition key, as in the template's ``(uid, id)``.
- ``users (uid)``, ``identities (provider, app_id, subject)``, ``sessions (id)``, and two
  lookup tables standing in for secondary indexes: ``session_hashes (token_hash)`` and
  ``user_sessions (uid, id)``.

What TableStore can serve, and what this store does:

- One-document writes are single conditional row operations: insert is ``PutRow`` with
  ``EXPECT_NOT_EXIST``; update/upsert/delete read the row and write it back on condition
  that ``version`` is unchanged (retried on a lost race). No transaction needed.
- A batch of several ops is atomic only within one partition: it runs in a TableStore
  local transaction on the owner's partition key and is written with one
  ``BatchWriteRow``. A batch whose documents belong to more than one owner is refused
  (``InvalidArgument``), as is one writing more than 200 rows or 4 MB (TableStore's
  limits). Local transactions must be enabled on the documents table (a table option set
  at creation in the console, or by a ticket).
- Queries and counts read the owner's partition (``GetRange``) and evaluate the filter in
  Python (TableStore's filters see top-level columns only; the document is one JSON
  column). A query not restricted to one owner (e.g. under a ``public`` read rule) would
  have to scan every user's data: it is refused with ``InvalidArgument`` instead.
  Order by ``id`` (or none) streams the partition in key order; any other order sorts the
  owner's matching documents in memory, up to ``max_sort`` of them (else refused).
- Declared indexes: nothing to create (owner-partition reads do not need them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..data.filters import FALSE, TRUE, Filter, OrderKey
from ..errors import (
    Conflict,
    Internal,
    InvalidArgument,
    Unavailable,
)
from . import tablestore_docs
from .records import Identity, Key, SessionRecord, UserRecord
from .tablestore_docs import (
    ATTEMPTS,
    BATCH_MAX_BYTES,
    BATCH_MAX_ROWS,
    MAX_CELL_BYTES,
    Lost,
    StoredDoc,
    backoff,
)
from .tablestore_eval import check_position, matches, partition, position_key, select
from .writes import WriteOp, deadline_exceeded

__all__ = ["BATCH_MAX_BYTES", "BATCH_MAX_ROWS", "MAX_CELL_BYTES", "TableStoreStore"]

if TYPE_CHECKING:  # data.aggregate (and its decimal arithmetic) loads on first use
    from ..data.aggregate import Group, GroupRow

log = logging.getLogger(__name__)
_SDK_LOGGER = "minibase.tablestore.sdk"

_PAGE = 1000  # rows asked for per GetRange (TableStore answers at most 5000 / 4 MB)
_BUCKET_TTL = 7 * 86400  # seconds a rate bucket row lives after its last write

_SDK_RETRIES = 3  # the SDK's own retries of a throttled or failing request
_SDK_RETRY_DELAY = 1.0  # seconds, the most it waits between two
# Refusals that mean "too busy right now", whatever their HTTP status.
_BUSY_CODES = frozenset(("OTSServerBusy", "OTSQuotaExhausted", "OTSTimeout", "OTSPartitionUnavailable"))

T = TypeVar("T")


def _sdk() -> Any:
    """The ``tablestore`` module, imported on first use (it is heavy: protobuf, aiohttp)."""
    with warnings.catch_warnings():
        # Its optional C++ codec warns on import where no wheel matches the interpreter.
        warnings.simplefilter("ignore")
        import tablestore

    return tablestore


class TableStoreStore:
    def __init__(
        self,
        instance: str,
        endpoint: str,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        *,
        prefix: str = "minibase_",
        max_sort: int = 10_000,
        timeout: float = 10.0,
        query_time: float = 3.0,
    ) -> None:
        self.instance = instance
        # Seconds a query or count may spend reading and evaluating (limits.query_time).
        self.query_time = query_time
        self.endpoint = endpoint
        self._credentials = (access_key_id, access_key_secret, security_token)
        self.prefix = prefix
        self.max_sort = max_sort
        self.timeout = timeout
        self.t_docs = prefix + "documents"
        self.t_users = prefix + "users"
        self.t_identities = prefix + "identities"
        self.t_sessions = prefix + "sessions"
        self.t_hashes = prefix + "session_hashes"
        self.t_user_sessions = prefix + "user_sessions"
        self.t_buckets = prefix + "rate_buckets"
        self._client: Any = None
        self._ots: Any = None
        self._purge_from: str | None = None  # where the next purge_sessions scan resumes
        self._network_errors: tuple[type[BaseException], ...] = ()

    # ---------------------------------------------------------------- plumbing

    def _schemas(self) -> dict[str, list[tuple[str, str]]]:
        return {
            self.t_docs: [("uid", "STRING"), ("collection", "STRING"), ("id", "STRING")],
            self.t_users: [("uid", "STRING")],
            self.t_identities: [("provider", "STRING"), ("app_id", "STRING"), ("subject", "STRING")],
            self.t_sessions: [("id", "STRING")],
            self.t_hashes: [("token_hash", "BINARY")],
            self.t_user_sessions: [("uid", "STRING"), ("id", "STRING")],
            self.t_buckets: [("key", "STRING")],
        }

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread. An unreachable or overloaded service (network
        errors, HTTP 5xx after the SDK's own retries) is Unavailable; a refusal is Internal."""
        ots = self._ots
        try:
            return await asyncio.to_thread(fn, *args)
        except (ots.OTSClientError, *self._network_errors) as e:
            # The SDK lets its HTTP library's errors through (refused, reset, timed out).
            log.warning("TableStore request failed: %s", e)
            raise Unavailable("the database is unavailable") from e
        except ots.OTSServiceError as e:
            if e.code == "OTSConditionCheckFail":
                raise Lost() from None
            log.warning("TableStore refused a request: %s", e)
            if e.code in ("OTSAuthFailed", "OTSNoPermissionAccess"):
                raise Internal("the database refused the server's credentials") from e
            if (e.http_status or 0) >= 500 or e.code in _BUSY_CODES:
                raise Unavailable("the database is unavailable") from e
            raise Internal("the database refused a request") from e

    def _make_client(self) -> Any:
        key_id, secret, token = self._credentials
        return self._ots.OTSClient(
            self.endpoint,
            key_id,
            secret,
            self.instance,
            sts_token=token,
            socket_timeout=self.timeout,
            # The SDK logs every refused request at ERROR, lost condition checks included
            # (routine here); this store logs the failures that matter itself.
            logger_name=_SDK_LOGGER,
            # The pure-Python codec: the one the test suite exercises on every interpreter.
            enable_native=False,
            retry_policy=self._retry_policy(),
        )

    def _retry_policy(self) -> Any:
        """The SDK's default policy, bounded: by default it retries a failing service up to
        20 times (a minute and more); a request should rather answer Unavailable soon and
        let the client come back after Retry-After."""
        policy = self._ots.DefaultRetryPolicy()
        policy.max_retry_times = _SDK_RETRIES
        policy.max_retry_delay = _SDK_RETRY_DELAY
        return policy

    def use_credentials(self, key_id: str, secret: str, token: str | None) -> None:
        """Sign with these from now on (the FC runtime's fresh role credentials). Requests
        already running finish with the client they started on."""
        if (key_id, secret, token) != self._credentials:
            self._credentials = (key_id, secret, token)
            if self._client is not None:
                self._client = self._make_client()

    async def open(self) -> None:
        if self._client is not None:
            return
        self._ots = _sdk()
        import urllib3

        self._network_errors = (OSError, urllib3.exceptions.HTTPError)
        logging.getLogger(_SDK_LOGGER).setLevel(logging.CRITICAL)
        self._client = self._make_client()
        ots = self._ots
        existing = set(await self._call(self._client.list_table))
        for name, schema in self._schemas().items():
            if name in existing:
                continue
            try:
                await self._call(
                    self._client.create_table,
                    ots.TableMeta(name, schema),
                    # Rate buckets expire on their own (TableStore TTL, whole days): an
                    # absent bucket is a full one, and any sane rate refills within a week.
                    ots.TableOptions(
                        time_to_live=_BUCKET_TTL if name == self.t_buckets else -1, max_version=1
                    ),
                    ots.ReservedThroughput(ots.CapacityUnit(0, 0)),
                )
            except Internal:
                # Another instance may have created it meanwhile; anything else shows below.
                if name not in set(await self._call(self._client.list_table)):
                    raise

    async def close(self) -> None:
        self._client = None

    def _row(self, row: Any) -> dict[str, Any] | None:
        if row is None:
            return None
        out = {name: value for name, value in row.primary_key}
        for col in row.attribute_columns:
            out[col[0]] = col[1]
        return out

    async def _get(
        self, table: str, pk: list[tuple[str, Any]], txn: str | None = None
    ) -> dict[str, Any] | None:
        _, row, _ = await self._call(
            self._client.get_row, table, pk, None, None, 1, None, None, None, None, txn
        )
        return self._row(row)

    async def _put(
        self, table: str, pk: list[tuple[str, Any]], cols: list[tuple[str, Any]], cond: Any
    ) -> None:
        await self._call(self._client.put_row, table, self._ots.Row(pk, cols), cond)

    async def _set(
        self, table: str, pk: list[tuple[str, Any]], cols: list[tuple[str, Any]], cond: Any
    ) -> None:
        await self._call(self._client.update_row, table, self._ots.Row(pk, {"put": cols}), cond)

    async def _range(
        self, table: str, start: list[tuple[str, Any]], end: list[tuple[str, Any]], *, forward: bool = True
    ) -> Any:
        """Every row from ``start`` (inclusive) to ``end`` (exclusive), page by page."""
        direction = "FORWARD" if forward else "BACKWARD"
        nxt: Any = start
        while nxt is not None:
            _, nxt, rows, _ = await self._call(
                self._client.get_range, table, direction, nxt, end, None, _PAGE
            )
            for row in rows:
                yield self._row(row)

    def _cond(self, existence: str, column: Any = None) -> Any:
        return self._ots.Condition(existence, column)

    def _col(self, name: str, value: Any, op: str) -> Any:
        ots = self._ots
        cmp = {"eq": ots.ComparatorType.EQUAL, "lt": ots.ComparatorType.LESS_THAN}[op]
        # pass_if_missing=False: the column always exists on our rows; missing means no match.
        return ots.SingleColumnCondition(name, value, cmp, pass_if_missing=False)

    # ------------------------------------------------------------ users, identities

    async def upsert_identity(self, identity: Identity, new_uid: str, now: float) -> tuple[str, bool]:
        pk = [("provider", identity.provider), ("app_id", identity.app_id), ("subject", identity.subject)]
        row = await self._get(self.t_identities, pk)
        if row is not None:
            return str(row["uid"]), False
        # The user first, so an identity never points at a missing user.
        await self._put(
            self.t_users,
            [("uid", new_uid)],
            [("created", float(now)), ("disabled", False)],
            self._cond("EXPECT_NOT_EXIST"),
        )
        cols: list[tuple[str, Any]] = [("uid", new_uid), ("created", float(now))]
        if identity.unionid is not None:
            cols.append(("unionid", identity.unionid))
        try:
            await self._put(self.t_identities, pk, cols, self._cond("EXPECT_NOT_EXIST"))
        except Lost:
            # A concurrent first login won: use its user, drop ours.
            await self._call(self._client.delete_row, self.t_users, [("uid", new_uid)], self._cond("IGNORE"))
            row = await self._get(self.t_identities, pk)
            if row is None:  # pragma: no cover - the winner's row cannot vanish
                raise Internal("the identity changed concurrently") from None
            return str(row["uid"]), False
        return new_uid, True

    async def get_user(self, uid: str) -> UserRecord | None:
        row = await self._get(self.t_users, [("uid", uid)])
        return UserRecord(uid, row["created"], bool(row["disabled"])) if row else None

    async def set_user_disabled(self, uid: str, disabled: bool) -> bool:
        try:
            await self._set(
                self.t_users, [("uid", uid)], [("disabled", disabled)], self._cond("EXPECT_EXIST")
            )
        except Lost:
            return False
        return True

    # --------------------------------------------------------------------- sessions

    async def create_session(self, record: SessionRecord) -> None:
        r = record
        # revoked is always present (0.0: not revoked) so a condition can test it.
        await self._put(
            self.t_sessions,
            [("id", r.id)],
            [
                ("token_hash", bytearray(r.token_hash)),
                ("uid", r.uid),
                ("provider", r.provider),
                ("created", float(r.created)),
                ("last_used", float(r.last_used)),
                ("expires_max", float(r.expires_max)),
                ("revoked", 0.0),
            ],
            self._cond("EXPECT_NOT_EXIST"),
        )
        await self._put(
            self.t_user_sessions, [("uid", r.uid), ("id", r.id)], [("s", True)], self._cond("IGNORE")
        )
        await self._put(
            self.t_hashes, [("token_hash", bytearray(r.token_hash))], [("id", r.id)], self._cond("IGNORE")
        )

    async def session_by_id(self, session_ref: str) -> SessionRecord | None:
        row = await self._get(self.t_sessions, [("id", session_ref)])
        if row is None:
            return None
        user = await self._get(self.t_users, [("uid", row["uid"])])
        return SessionRecord(
            session_ref,
            bytes(row["token_hash"]),
            row["uid"],
            row["provider"],
            row["created"],
            row["last_used"],
            row["expires_max"],
            row["revoked"] != 0.0,
            True if user is None else bool(user["disabled"]),  # as the SQL stores: no user → disabled
        )

    async def session_by_hash(self, token_hash: bytes) -> SessionRecord | None:
        row = await self._get(self.t_hashes, [("token_hash", bytearray(token_hash))])
        if row is None:
            return None
        record = await self.session_by_id(row["id"])
        return record if record is not None and record.token_hash == token_hash else None

    async def auth_epoch(self) -> int | None:
        return None  # no cross-row trigger to keep one: every request reads its session

    async def touch_session(self, session_ref: str, now: float) -> None:
        # last_used only moves forward: a late, older touch must not win.
        with contextlib.suppress(Lost):
            await self._set(
                self.t_sessions,
                [("id", session_ref)],
                [("last_used", float(now))],
                self._cond("EXPECT_EXIST", self._col("last_used", float(now), "lt")),
            )

    async def revoke_session(self, session_ref: str, now: float) -> bool:
        try:
            await self._set(
                self.t_sessions,
                [("id", session_ref)],
                [("revoked", float(now) or 1e-9)],
                self._cond("EXPECT_EXIST", self._col("revoked", 0.0, "eq")),
            )
        except Lost:
            return False
        return True

    async def revoke_user_sessions(self, uid: str, now: float) -> int:
        ots = self._ots
        n = 0
        start = [("uid", uid), ("id", ots.INF_MIN)]
        end = [("uid", uid), ("id", ots.INF_MAX)]
        async for row in self._range(self.t_user_sessions, start, end):
            assert row is not None
            if await self.revoke_session(row["id"], now):
                n += 1
        return n

    async def purge_sessions(self, idle_before: float, max_before: float, limit: int) -> int:
        # No secondary index on the times: scan at most `limit` rows a call, resuming where
        # the last call stopped (back to the start once the end is reached).
        ots = self._ots
        start = [("id", self._purge_from if self._purge_from is not None else ots.INF_MIN)]
        _, nxt, rows, _ = await self._call(
            self._client.get_range, self.t_sessions, "FORWARD", start, [("id", ots.INF_MAX)], None, limit
        )
        self._purge_from = None if nxt is None else nxt[0][1]
        n = 0
        for raw in rows:
            row = self._row(raw)
            assert row is not None
            if row["expires_max"] < max_before:
                cond = self._cond("EXPECT_EXIST")
            elif row["last_used"] < idle_before:
                cond = self._cond("EXPECT_EXIST", self._col("last_used", float(idle_before), "lt"))
            else:
                continue
            try:  # the condition: a session touched meanwhile stays
                await self._call(self._client.delete_row, self.t_sessions, [("id", row["id"])], cond)
            except Lost:
                continue
            ign = self._cond("IGNORE")
            await self._call(self._client.delete_row, self.t_hashes, [("token_hash", row["token_hash"])], ign)
            await self._call(
                self._client.delete_row, self.t_user_sessions, [("uid", row["uid"]), ("id", row["id"])], ign
            )
            n += 1
        return n

    # ------------------------------------------------------------------ rate limits

    async def take_tokens(
        self, key: str, rate: float, burst: float, want: int, now: float
    ) -> tuple[int, float]:
        from ..util.bucket import take

        pk = [("key", key)]
        for attempt in range(ATTEMPTS):
            row = await self._get(self.t_buckets, pk)
            granted, left, full_at, wait = take(
                row["tokens"] if row else None, row["updated"] if row else now, now, rate, burst, want
            )
            rev = int(row["rev"]) if row else 0
            cols = [
                ("tokens", float(left)),
                ("updated", float(max(now, row["updated"]) if row else now)),
                ("full_at", float(full_at)),
                ("rev", rev + 1),
            ]
            # Optimistic: the write holds only if no other instance spent from the bucket
            # since we read it (rev unchanged), so the arithmetic is atomic across instances.
            cond = (
                self._cond("EXPECT_EXIST", self._col("rev", rev, "eq"))
                if row
                else self._cond("EXPECT_NOT_EXIST")
            )
            try:
                await self._put(self.t_buckets, pk, cols, cond)
            except Lost:
                await backoff(attempt)
                continue
            return granted, wait
        raise Conflict("the rate limit bucket kept changing concurrently: try again")

    # -------------------------------------------------------------------- documents

    @staticmethod
    def _pk(key: Key) -> list[tuple[str, Any]]:
        return [("uid", key.uid), ("collection", key.collection), ("id", key.id)]

    async def read_doc(self, key: Key, txn: str | None = None) -> StoredDoc | None:
        row = await self._get(self.t_docs, self._pk(key), txn)
        if row is None:
            return None
        return StoredDoc(int(row["version"]), orjson.loads(row["body"]))

    async def get_document(self, key: Key, rule: Filter = TRUE) -> bytes | None:
        if rule == FALSE:
            return None
        row = await self._get(self.t_docs, self._pk(key))
        if row is None:
            return None
        body: str = row["body"]
        if rule != TRUE and not matches(orjson.loads(body), rule):
            return None
        return body.encode()

    async def query(
        self,
        collection: str,
        where: Filter,
        order: Sequence[OrderKey],
        limit: int,
        after: Sequence[Any] | None,
    ) -> list[tuple[list[Any], bytes]]:
        uid = partition(collection, where)
        if after is not None:
            check_position(after, order)
        if uid is None or limit <= 0:
            return []
        end = time.monotonic() + self.query_time
        out: list[tuple[list[Any], bytes]] = []
        if not order or (len(order) == 1 and order[0].path == ("id",)):
            # Key order within the partition: stream it, stop at the limit.
            forward = not (order and order[0].descending)
            after_id = None if after is None else str(after[-1])
            async for page in self._pages(collection, uid, forward, after_id, end):
                out += await self._select(page, where, order, limit - len(out), end)
                if len(out) >= limit:
                    break
            return out
        # Any other order: sort the owner's matching documents in memory, within a bound.
        scanned = 0
        async for page in self._pages(collection, uid, True, None, end):
            scanned += len(page)
            if scanned > self.max_sort:
                raise InvalidArgument(
                    f"TableStore cannot serve this query efficiently: ordering by other fields than"
                    f" id sorts in memory, and the owner has more than {self.max_sort} documents in"
                    f" {collection!r}. Order by id, or use the SQLite or PostgreSQL backend."
                )
            out += await self._select(page, where, order, None, end)
        key = position_key(order)
        out.sort(key=lambda r: key(r[0]))
        if after is not None:
            mark = key(after)
            out = [r for r in out if key(r[0]) > mark]
        return out[:limit]

    async def count(self, collection: str, where: Filter) -> int:
        uid = partition(collection, where)
        if uid is None:
            return 0
        end = time.monotonic() + self.query_time
        n = 0
        async for page in self._pages(collection, uid, True, None, end):
            n += len(await self._select(page, where, (), None, end))
        return n

    async def _select(
        self, page: list[str], where: Filter, order: Sequence[OrderKey], want: int | None, end: float
    ) -> list[tuple[list[Any], bytes]]:
        # On a worker thread: evaluating a where over large documents takes long in Python,
        # and the loop gets the GIL back at every switch interval meanwhile.
        return await asyncio.to_thread(select, page, where, order, want, end, self.query_time)

    async def _pages(
        self, collection: str, uid: str, forward: bool, after_id: str | None, end: float
    ) -> AsyncIterator[list[str]]:
        """The bodies of the owner's documents in ``collection``, in id order (after
        ``after_id``), page by page; a page that has not come by ``end`` is DeadlineExceeded."""
        ots = self._ots
        base: list[tuple[str, Any]] = [("uid", uid), ("collection", collection)]
        lo = [*base, ("id", ots.INF_MIN)]
        hi = [*base, ("id", ots.INF_MAX)]
        if after_id is not None:
            # Seek straight to the cursor (inclusive start, so its own row is skipped below).
            if forward:
                lo = [*base, ("id", after_id)]
            else:
                hi = [*base, ("id", after_id)]
        nxt, stop = (lo, hi) if forward else (hi, lo)
        direction = "FORWARD" if forward else "BACKWARD"
        while nxt is not None:
            call = self._call(self._client.get_range, self.t_docs, direction, nxt, stop, None, _PAGE)
            try:
                _, nxt, rows, _ = await asyncio.wait_for(call, max(0.0, end - time.monotonic()))
            except asyncio.TimeoutError:
                raise deadline_exceeded(self.query_time) from None
            page = [self._row(r) for r in rows]
            yield [r["body"] for r in page if r is not None and (after_id is None or r["id"] != after_id)]

    async def aggregate(
        self, collection: str, where: Filter, group: Group, max_groups: int
    ) -> list[GroupRow]:
        return await tablestore_docs.aggregate(self, collection, where, group, max_groups)

    async def ensure_indexes(
        self, collection: str, indexes: Sequence[Sequence[tuple[str, ...]]], owner_first: bool
    ) -> None:
        # Reads are served from the owner's partition, so declared indexes have nothing
        # to add here; queries they would serve across owners are refused instead.
        return None

    async def ensure_search(self, declared: Mapping[str, Sequence[tuple[str, ...]]]) -> None:
        # As indexes: $search filters the owner's partition as it is read.
        return None

    # ---------------------------------------------------------------------- writes
    # What a write does is decided by .writes.steps; .tablestore_docs answers its requests
    # with the primitives below.

    async def write(self, ops: Sequence[WriteOp], now_iso: str) -> list[Any]:
        return await tablestore_docs.write(self, ops, now_iso)

    async def store_doc(self, key: Key, body: str, version: int, expect: int | None) -> None:
        """Write the document; ``expect``: the version it must still have (None: must not
        exist). Lost if it does not."""
        cond = (
            self._cond("EXPECT_NOT_EXIST")
            if expect is None
            else self._cond("EXPECT_EXIST", self._col("version", expect, "eq"))
        )
        await self._put(self.t_docs, self._pk(key), [("body", body), ("version", version)], cond)

    async def delete_doc(self, key: Key, version: int) -> None:
        """Delete the document if it is still at ``version`` (else Lost)."""
        cond = self._cond("EXPECT_EXIST", self._col("version", version, "eq"))
        await self._call(self._client.delete_row, self.t_docs, self._pk(key), cond)

    async def begin(self, uid: str) -> str:
        """A local transaction on ``uid``'s partition of the documents table."""
        txn: str = await self._call(self._client.start_local_transaction, self.t_docs, [("uid", uid)])
        return txn

    async def write_rows(self, txn: str, writes: Sequence[tuple[Key, str | None, int]]) -> None:
        """Put (body) or delete (None) each row in one BatchWriteRow of ``txn``."""
        ots = self._ots
        request = ots.BatchWriteRowRequest()
        items: list[Any] = []
        for key, body, version in writes:
            # The partition is locked by the transaction: no conditions needed.
            if body is None:
                items.append(ots.DeleteRowItem(ots.Row(self._pk(key)), self._cond("IGNORE")))
            else:
                row = ots.Row(self._pk(key), [("body", body), ("version", version)])
                items.append(ots.PutRowItem(row, self._cond("IGNORE")))
        request.add(ots.TableInBatchWriteRowItem(self.t_docs, items))
        request.set_transaction_id(txn)
        response = await self._call(self._client.batch_write_row, request)
        failed = response.get_put()[1] + response.get_delete()[1]
        if failed:
            log.warning("TableStore batch write failed in a transaction: %s", failed[0].error_code)
            raise Internal("the database did not apply the batch")

    async def commit(self, txn: str) -> None:
        await self._call(self._client.commit_transaction, txn)

    async def abort(self, txn: str) -> None:
        await self._call(self._client.abort_transaction, txn)
