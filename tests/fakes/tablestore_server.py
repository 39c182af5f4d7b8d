"""A fake Alibaba Cloud TableStore (OTS) service on loopback, speaking the SDK's wire format.

Requests are decoded with the SDK's own protobuf modules (``tablestore.protobuf``) and its
PlainBuffer codec (``tablestore.plainbuffer``, extended here with the two things its reader
lacks: ``INF_MIN``/``INF_MAX`` key values and update cell types); responses are encoded the
same way and signed as the service signs them, so the real ``OTSClient`` talks to it
unchanged. Implemented: ListTable, CreateTable, DeleteTable, GetRow, PutRow, UpdateRow,
DeleteRow, GetRange, BatchWriteRow, StartLocalTransaction, CommitTransaction,
AbortTransaction; row existence and column conditions; TableStore's limits (200 rows and
4 MB per BatchWriteRow, 2 MB per column value, 5000 rows per GetRange); local transactions
that lock their partition (other writers get ``OTSRowOperationConflict``).

Every request's signature (``x-ots-signature``: HMAC-SHA1 of the canonical string with the
access key secret), content MD5, date skew, instance and STS token are checked; a bad one
is refused as the service does: HTTP 403 with an ``Error`` protobuf ``OTSAuthFailed``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import struct
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import serve_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the SDK's optional C++ codec warns when absent
    import tablestore.plainbuffer.plain_buffer_consts  # noqa: F401 (defines the constants below)
    import tablestore.protobuf.table_store_filter_pb2 as fpb
    import tablestore.protobuf.table_store_pb2 as pb
    from tablestore import const_module as _c
    from tablestore.metadata import INF_MAX, INF_MIN
    from tablestore.plainbuffer.plain_buffer_builder import PlainBufferBuilder
    from tablestore.plainbuffer.plain_buffer_coded_stream import PlainBufferCodedInputStream
    from tablestore.plainbuffer.plain_buffer_crc8 import PlainBufferCrc8
    from tablestore.plainbuffer.plain_buffer_stream import PlainBufferInputStream

__all__ = ["FakeTableStore", "OTSFault", "run_fake_tablestore"]

# The SDK keeps its PlainBuffer constants as attributes of one module object.
TAG_CELL_CHECKSUM, TAG_CELL_NAME, TAG_CELL_TIMESTAMP = (
    _c.TAG_CELL_CHECKSUM,
    _c.TAG_CELL_NAME,
    _c.TAG_CELL_TIMESTAMP,
)
TAG_CELL_TYPE, TAG_CELL_VALUE = _c.TAG_CELL_TYPE, _c.TAG_CELL_VALUE
VT_BLOB, VT_BOOLEAN, VT_DOUBLE, VT_INTEGER, VT_STRING = (
    _c.VT_BLOB,
    _c.VT_BOOLEAN,
    _c.VT_DOUBLE,
    _c.VT_INTEGER,
    _c.VT_STRING,
)
VT_INF_MAX, VT_INF_MIN = _c.VT_INF_MAX, _c.VT_INF_MIN

MAX_BATCH_ROWS = 200
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_CELL_BYTES = 2 * 1024 * 1024
MAX_RANGE_ROWS = 5000
TXN_TTL = 60.0
_DELETE_ONE, _DELETE_ALL, _INCREMENT = 0x3, 0x1, 0x4


class OTSFault(Exception):
    """A TableStore error answer: HTTP status + ``Error{code, message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _invalid(message: str) -> OTSFault:
    return OTSFault(400, "OTSParameterInvalid", message)


# --------------------------------------------------------------------- PlainBuffer


class _Reader(PlainBufferCodedInputStream):  # type: ignore[misc]
    """The SDK's reader, plus INF_MIN/INF_MAX key values and update cell types (a column
    read from an UpdateRow change comes back as ``(value, cell_type or None)``)."""

    def read_primary_key_value(self, cell_check_sum: int) -> tuple[Any, int]:
        s = self.input_stream
        mark = s.cur_pos
        s.read_raw_little_endian32()
        kind = ord(s.read_raw_byte())
        if kind in (VT_INF_MIN, VT_INF_MAX):
            s.read_tag()
            return (INF_MIN if kind == VT_INF_MIN else INF_MAX), PlainBufferCrc8.crc_int8(
                cell_check_sum, kind
            )
        s.cur_pos = mark
        return super().read_primary_key_value(cell_check_sum)  # type: ignore[no-any-return]

    def read_column(self, row_check_sum: int) -> tuple[str, Any, int | None, int]:
        s = self.input_stream
        s.read_tag()
        if s.last_tag != TAG_CELL_NAME:
            raise _invalid("malformed PlainBuffer: expected a cell name")
        size = s.read_raw_little_endian32()
        name = s.read_utf_string(size)
        cs = PlainBufferCrc8.crc_string(0, name)
        s.read_tag()
        value = None
        cell_type = None
        ts = None
        if s.last_tag == TAG_CELL_VALUE:
            value, cs = self.read_column_value(cs)
        if s.last_tag == TAG_CELL_TYPE:
            cell_type = ord(s.read_raw_byte())
            s.read_tag()
        if s.last_tag == TAG_CELL_TIMESTAMP:
            ts = s.read_int64()
            cs = PlainBufferCrc8.crc_int64(cs, ts)
            s.read_tag()
        if cell_type is not None:  # the writer folds the type in after the timestamp
            cs = PlainBufferCrc8.crc_int8(cs, cell_type)
        if s.last_tag != TAG_CELL_CHECKSUM or ord(s.read_raw_byte()) != cs:
            raise _invalid("PlainBuffer cell checksum mismatch")
        s.read_tag()
        return name, (value, cell_type), ts, PlainBufferCrc8.crc_int8(row_check_sum, cs)


def _read_row(data: bytes) -> tuple[list[tuple[str, Any]], list[tuple[str, Any, int | None]]]:
    try:
        pk, attrs = _Reader(PlainBufferInputStream(bytes(data))).read_row()
    except OTSFault:
        raise
    except Exception as e:  # the SDK's reader raises OTSClientError and friends
        raise _invalid(f"malformed PlainBuffer row: {e}") from None
    return pk, attrs


def _read_variant(data: bytes) -> Any:
    """A column value as ``serialize_column_value`` writes it (conditions carry these)."""
    kind = data[0]
    if kind == VT_INTEGER:
        return struct.unpack("<q", data[1:9])[0]
    if kind == VT_DOUBLE:
        return struct.unpack("<d", data[1:9])[0]
    if kind == VT_BOOLEAN:
        return data[1] != 0
    if kind in (VT_STRING, VT_BLOB):
        (n,) = struct.unpack("<i", data[1:5])
        raw = bytes(data[5 : 5 + n])
        return raw.decode() if kind == VT_STRING else bytearray(raw)
    raise _invalid(f"unsupported column value type {kind}")


def _rows_bytes(rows: list[tuple[list[tuple[str, Any]], list[tuple[str, Any, int]]]]) -> bytes:
    out = bytearray()
    for i, (pk, attrs) in enumerate(rows):
        buf = PlainBufferBuilder.serialize_for_put_row(pk, attrs)
        out += buf if i == 0 else buf[4:]  # one header for the whole row list
    return bytes(out)


# -------------------------------------------------------------------------- state


def _pk_key(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytearray) else value


def _pk_out(value: Any) -> Any:
    return bytearray(value) if isinstance(value, bytes) else value


def _bound(value: Any) -> tuple[Any, ...]:
    if value is INF_MIN:
        return (0,)
    if value is INF_MAX:
        return (2,)
    return (1, _pk_key(value))


@dataclass
class _Table:
    name: str
    pk_names: list[str]
    ttl: int = -1
    rows: dict[tuple[Any, ...], dict[str, tuple[Any, int]]] = field(default_factory=dict)


@dataclass
class _Txn:
    instance: str
    table: str
    partition: Any
    started: float
    # staged writes: pk -> new attributes, or None for a deletion
    staged: dict[tuple[Any, ...], dict[str, tuple[Any, int]] | None] = field(default_factory=dict)


@dataclass
class _Instance:
    tables: dict[str, _Table] = field(default_factory=dict)


class FakeTableStore:
    """In-memory TableStore state plus the request handler (serve it with :func:`run_fake_tablestore`)."""

    def __init__(self, access_key_id: str, access_key_secret: str, security_token: str | None = None) -> None:
        self.keys: dict[str, tuple[str, str | None]] = {access_key_id: (access_key_secret, security_token)}
        self.instances: dict[str, _Instance] = {}
        self.txns: dict[str, _Txn] = {}
        self.calls: Counter[str] = Counter()
        self.refused: list[str] = []  # auth failure messages, for tests
        # (HTTP status, code, message) every request answers while set: an outage or overload.
        self.fault: tuple[int, str, str] | None = None
        self._lock = threading.Lock()
        self._n = 0

    def add_instance(self, name: str | None = None) -> str:
        with self._lock:
            if name is None:
                self._n += 1
                name = f"fake-inst-{self._n}"
            self.instances.setdefault(name, _Instance())
            return name

    def table(self, instance: str, name: str) -> _Table:
        return self.instances[instance].tables[name]

    # ----------------------------------------------------------------- HTTP

    def answer(self, api: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        """One request (``headers`` with lower-case names): status, body, headers."""
        key_id = headers.get("x-ots-accesskeyid", "")
        try:
            if self.fault is not None:
                raise OTSFault(*self.fault)
            instance = self._authenticate(api, headers, body)
            with self._lock:
                self.calls[api] += 1
                out = self._dispatch(instance, api, body)
            return self._respond(200, out.SerializeToString(), key_id, api)
        except OTSFault as e:
            err = pb.Error(code=e.code, message=e.message).SerializeToString()
            # An auth failure is not signed (the service cannot know the secret).
            return self._respond(e.status, err, key_id if e.code != "OTSAuthFailed" else None, api)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The fake as a bare ASGI app: ``POST /<api>`` (no framework: the suite sends it
        thousands of requests, and a router and middleware stack cost more than the fake)."""
        if scope["type"] != "http":
            return
        api = scope["path"][1:]
        if scope["method"] != "POST" or not api or "/" in api:
            status, body, headers = 404 if scope["method"] == "POST" else 405, b"", {}
        else:
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            lower = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            status, body, headers = self.answer(api, lower, b"".join(chunks))
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    def _authenticate(self, api: str, headers: dict[str, str], body: bytes) -> str:
        def refuse(message: str) -> OTSFault:
            self.refused.append(message)
            return OTSFault(403, "OTSAuthFailed", message)

        key_id = headers.get("x-ots-accesskeyid", "")
        if key_id not in self.keys:
            raise refuse("The AccessKeyID does not exist.")
        secret, token = self.keys[key_id]
        if token is not None and headers.get("x-ots-ststoken") != token:
            raise refuse("The security token is invalid.")
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        if headers.get("x-ots-contentmd5") != md5:
            raise refuse("Content MD5 mismatch.")
        try:
            date = dt.datetime.strptime(headers.get("x-ots-date", ""), "%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            raise refuse("Invalid date format.") from None
        skew = abs(date.replace(tzinfo=dt.UTC).timestamp() - time.time())
        if skew > 15 * 60:
            raise refuse("The difference between the request time and the current time is too large.")
        signature = headers.get("x-ots-signature")
        if signature is None:
            raise refuse("Missing x-ots-signature (only signature v2 is supported here).")
        signed = sorted(
            f"{k}:{v.strip()}"
            for k, v in headers.items()
            if k.startswith("x-ots-") and k != "x-ots-signature"
        )
        canonical = f"/{api}\nPOST\n\n" + "\n".join(signed) + "\n"
        expected = base64.b64encode(hmac.new(secret.encode(), canonical.encode(), hashlib.sha1).digest())
        if not hmac.compare_digest(expected, signature.encode()):
            raise refuse("Signature mismatch.")
        instance = headers.get("x-ots-instancename", "")
        if instance not in self.instances:
            raise OTSFault(403, "OTSAuthFailed", f"The instance {instance!r} is not found.")
        return instance

    def _respond(
        self, status: int, body: bytes, key_id: str | None, api: str
    ) -> tuple[int, bytes, dict[str, str]]:
        headers = {
            "x-ots-contentmd5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode(),
            "x-ots-requestid": uuid.uuid4().hex,
            "x-ots-date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "x-ots-contenttype": "protocol buffer",
        }
        if key_id is not None and key_id in self.keys:
            signed = "\n".join(sorted(f"{k}:{v.strip()}" for k, v in headers.items()))
            mac = hmac.new(self.keys[key_id][0].encode(), f"{signed}\n/{api}".encode(), hashlib.sha1)
            headers["authorization"] = f"OTS {key_id}:{base64.b64encode(mac.digest()).decode()}"
        return status, body, headers

    # ----------------------------------------------------------- operations

    def _dispatch(self, instance: str, api: str, body: bytes) -> Any:
        inst = self.instances[instance]
        self._expire()
        handler = getattr(self, f"_op_{api}", None)
        if handler is None:
            raise OTSFault(400, "OTSUnsupportOperation", f"Unsupported operation: '{api}'.")
        return handler(instance, inst, body)

    @staticmethod
    def _parse(message: Any, body: bytes) -> Any:
        try:
            message.ParseFromString(body)
        except Exception:
            raise _invalid("Failed to parse the ProtoBuf message.") from None
        return message

    def _table(self, inst: _Instance, name: str) -> _Table:
        table = inst.tables.get(name)
        if table is None:
            raise OTSFault(404, "OTSObjectNotExist", "Requested table does not exist.")
        return table

    def _op_ListTable(self, instance: str, inst: _Instance, body: bytes) -> Any:
        return pb.ListTableResponse(table_names=sorted(inst.tables))

    def _op_CreateTable(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.CreateTableRequest(), body)
        name = req.table_meta.table_name
        if name in inst.tables:
            raise OTSFault(409, "OTSObjectAlreadyExist", "Requested table already exists.")
        pks = [c.name for c in req.table_meta.primary_key]
        if not 1 <= len(pks) <= 4:
            raise _invalid("The number of primary key columns must be in range: [1, 4].")
        inst.tables[name] = _Table(name, pks, req.table_options.time_to_live)
        return pb.CreateTableResponse()

    def _op_DeleteTable(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.DeleteTableRequest(), body)
        self._table(inst, req.table_name)
        del inst.tables[req.table_name]
        return pb.DeleteTableResponse()

    def _key(self, table: _Table, pk: list[tuple[str, Any]], *, bounds: bool = False) -> tuple[Any, ...]:
        if [n for n, _ in pk] != table.pk_names:
            raise _invalid(f"Validate PK name fail. Input: {[n for n, _ in pk]}, Meta: {table.pk_names}.")
        if not bounds and any(v is INF_MIN or v is INF_MAX for _, v in pk):
            raise _invalid("INF_MIN and INF_MAX are only allowed in range bounds.")
        return tuple(_pk_key(v) for _, v in pk)

    def _txn(self, txn_id: str, instance: str, table: _Table, key: tuple[Any, ...] | None) -> _Txn:
        txn = self.txns.get(txn_id)
        if txn is None or txn.instance != instance:
            raise OTSFault(404, "OTSSessionNotExist", "Transaction does not exist or has expired.")
        if txn.table != table.name or (key is not None and key[0] != txn.partition):
            raise _invalid("The row is out of the transaction's partition.")
        return txn

    def _current(self, instance: str, table: _Table, key: tuple[Any, ...], txn_id: str) -> Any:
        if txn_id:
            txn = self._txn(txn_id, instance, table, key)
            if key in txn.staged:
                return txn.staged[key]
        return table.rows.get(key)

    def _locked(self, instance: str, table: _Table, key: tuple[Any, ...]) -> None:
        for txn in self.txns.values():
            if txn.instance == instance and txn.table == table.name and txn.partition == key[0]:
                raise OTSFault(409, "OTSRowOperationConflict", "Data is being modified by the other request.")

    def _row_out(self, key: tuple[Any, ...], table: _Table, attrs: dict[str, tuple[Any, int]]) -> Any:
        pk = [(n, _pk_out(v)) for n, v in zip(table.pk_names, key, strict=True)]
        return pk, [(n, v, ts) for n, (v, ts) in sorted(attrs.items())]

    def _op_GetRow(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.GetRowRequest(), body)
        table = self._table(inst, req.table_name)
        pk, _ = _read_row(req.primary_key)
        key = self._key(table, pk)
        attrs = self._current(instance, table, key, req.transaction_id)
        row = _rows_bytes([self._row_out(key, table, attrs)]) if attrs is not None else b""
        return pb.GetRowResponse(consumed=_consumed(read=1), row=row)

    def _check(self, cond: Any, attrs: dict[str, tuple[Any, int]] | None) -> None:
        exists = attrs is not None
        if cond.row_existence == pb.EXPECT_EXIST and not exists:
            raise OTSFault(403, "OTSConditionCheckFail", "Condition check failed.")
        if cond.row_existence == pb.EXPECT_NOT_EXIST and exists:
            raise OTSFault(403, "OTSConditionCheckFail", "Condition check failed.")
        if cond.column_condition and not _column_filter(
            self._parse(fpb.Filter(), cond.column_condition), attrs or {}
        ):
            raise OTSFault(403, "OTSConditionCheckFail", "Condition check failed.")

    def _write(self, instance: str, table: _Table, kind: int, change: bytes, cond: Any, txn_id: str) -> None:
        """One row change (PUT/UPDATE/DELETE), after its condition; staged in a transaction."""
        pk, cells = _read_row(change)
        key = self._key(table, pk)
        if txn_id:
            txn = self._txn(txn_id, instance, table, key)
        else:
            self._locked(instance, table, key)
        old = self._current(instance, table, key, txn_id)
        self._check(cond, old)
        now = int(time.time() * 1000)
        new: dict[str, tuple[Any, int]] | None
        if kind == pb.DELETE:
            new = None
        elif kind == pb.PUT:
            new = {}
            for name, (value, _), ts in cells:
                new[name] = (_cell(value), ts or now)
        else:
            new = dict(old or {})
            for name, (value, cell_type), ts in cells:
                if cell_type in (_DELETE_ONE, _DELETE_ALL):
                    new.pop(name, None)
                elif cell_type == _INCREMENT:
                    base = new.get(name, (0, 0))[0]
                    if not isinstance(base, int) or not isinstance(value, int):
                        raise _invalid("Increment needs integer columns.")
                    new[name] = (base + value, ts or now)
                else:
                    new[name] = (_cell(value), ts or now)
        if txn_id:
            txn.staged[key] = new
        elif new is None:
            table.rows.pop(key, None)
        else:
            table.rows[key] = new

    def _op_PutRow(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.PutRowRequest(), body)
        self._write(
            instance, self._table(inst, req.table_name), pb.PUT, req.row, req.condition, req.transaction_id
        )
        return pb.PutRowResponse(consumed=_consumed(write=1))

    def _op_UpdateRow(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.UpdateRowRequest(), body)
        table = self._table(inst, req.table_name)
        self._write(instance, table, pb.UPDATE, req.row_change, req.condition, req.transaction_id)
        return pb.UpdateRowResponse(consumed=_consumed(write=1))

    def _op_DeleteRow(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.DeleteRowRequest(), body)
        table = self._table(inst, req.table_name)
        self._write(instance, table, pb.DELETE, req.primary_key, req.condition, req.transaction_id)
        return pb.DeleteRowResponse(consumed=_consumed(write=1))

    def _op_GetRange(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.GetRangeRequest(), body)
        table = self._table(inst, req.table_name)
        start = [_bound(v) for _, v in _read_row(req.inclusive_start_primary_key)[0]]
        end = [_bound(v) for _, v in _read_row(req.exclusive_end_primary_key)[0]]
        forward = req.direction == pb.FORWARD
        if (start > end) if forward else (start < end):
            raise _invalid("The start primary key should be less than the end primary key in FORWARD.")
        rows = dict(table.rows)
        if req.transaction_id:
            txn = self._txn(req.transaction_id, instance, table, None)
            for k, v in txn.staged.items():
                if v is None:
                    rows.pop(k, None)
                else:
                    rows[k] = v
        keys = sorted(rows, key=lambda k: [_bound(v) for v in k], reverse=not forward)
        if forward:
            hits = [k for k in keys if start <= [_bound(v) for v in k] < end]
        else:
            hits = [k for k in keys if end < [_bound(v) for v in k] <= start]
        limit = min(req.limit or MAX_RANGE_ROWS, MAX_RANGE_ROWS)
        page, rest = hits[:limit], hits[limit:]
        out = pb.GetRangeResponse(
            consumed=_consumed(read=max(1, len(page))),
            rows=_rows_bytes([self._row_out(k, table, rows[k]) for k in page]) if page else b"",
        )
        if rest:
            nxt = [(n, _pk_out(v)) for n, v in zip(table.pk_names, rest[0], strict=True)]
            out.next_start_primary_key = bytes(PlainBufferBuilder.serialize_primary_key(nxt))
        return out

    def _op_BatchWriteRow(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.BatchWriteRowRequest(), body)
        n = sum(len(t.rows) for t in req.tables)
        if n > MAX_BATCH_ROWS:
            raise _invalid(f"Rows count exceeds the upper limit: {MAX_BATCH_ROWS}.")
        if sum(len(r.row_change) for t in req.tables for r in t.rows) > MAX_BATCH_BYTES:
            raise _invalid("The total data size of BatchWriteRow request exceeds the limit.")
        out = pb.BatchWriteRowResponse()
        for t in req.tables:
            table = self._table(inst, t.table_name)
            result = out.tables.add(table_name=t.table_name)
            for r in t.rows:
                row = result.rows.add(is_ok=True)
                try:
                    self._write(instance, table, r.type, r.row_change, r.condition, req.transaction_id)
                    row.consumed.CopyFrom(_consumed(write=1))
                except OTSFault as e:
                    row.is_ok = False
                    row.error.code, row.error.message = e.code, e.message
        return out

    def _op_StartLocalTransaction(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.StartLocalTransactionRequest(), body)
        table = self._table(inst, req.table_name)
        pk, _ = _read_row(req.key)
        if len(pk) != 1 or pk[0][0] != table.pk_names[0]:
            raise _invalid(
                "A local transaction is started on the partition key (the first primary key column)."
            )
        key = (_pk_key(pk[0][1]),)
        self._locked(instance, table, key)
        txn_id = uuid.uuid4().hex.upper()
        self.txns[txn_id] = _Txn(instance, table.name, key[0], time.monotonic())
        return pb.StartLocalTransactionResponse(transaction_id=txn_id)

    def _end(self, instance: str, txn_id: str) -> _Txn:
        txn = self.txns.pop(txn_id, None)
        if txn is None or txn.instance != instance:
            raise OTSFault(404, "OTSSessionNotExist", "Transaction does not exist or has expired.")
        return txn

    def _op_CommitTransaction(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.CommitTransactionRequest(), body)
        txn = self._end(instance, req.transaction_id)
        table = self._table(inst, txn.table)
        for key, attrs in txn.staged.items():
            if attrs is None:
                table.rows.pop(key, None)
            else:
                table.rows[key] = attrs
        return pb.CommitTransactionResponse()

    def _op_AbortTransaction(self, instance: str, inst: _Instance, body: bytes) -> Any:
        req = self._parse(pb.AbortTransactionRequest(), body)
        self._end(instance, req.transaction_id)
        return pb.AbortTransactionResponse()

    def _expire(self) -> None:
        now = time.monotonic()
        for txn_id in [t for t, txn in self.txns.items() if now - txn.started > TXN_TTL]:
            del self.txns[txn_id]


def _consumed(read: int = 0, write: int = 0) -> Any:
    return pb.ConsumedCapacity(capacity_unit=pb.CapacityUnit(read=read, write=write))


def _cell(value: Any) -> Any:
    size = (
        len(value.encode()) if isinstance(value, str) else len(value) if isinstance(value, bytearray) else 0
    )
    if size > MAX_CELL_BYTES:
        raise _invalid("The length of attribute column exceeds the limit: 2MB.")
    return value


def _column_filter(f: Any, attrs: dict[str, tuple[Any, int]]) -> bool:
    if f.type == fpb.FT_COMPOSITE_COLUMN_VALUE:
        comp = fpb.CompositeColumnValueFilter()
        comp.ParseFromString(f.filter)
        results = [_column_filter(sub, attrs) for sub in comp.sub_filters]
        if comp.combinator == fpb.LO_NOT:
            return not results[0]
        return all(results) if comp.combinator == fpb.LO_AND else any(results)
    if f.type != fpb.FT_SINGLE_COLUMN_VALUE:
        raise _invalid("Unsupported filter type.")
    single = fpb.SingleColumnValueFilter()
    single.ParseFromString(f.filter)
    if single.column_name not in attrs:
        return not single.filter_if_missing
    have, want = attrs[single.column_name][0], _read_variant(single.column_value)
    if isinstance(have, bool) != isinstance(want, bool) or isinstance(have, str) != isinstance(want, str):
        return False
    op = single.comparator
    if op == fpb.CT_EQUAL:
        return bool(have == want)
    if op == fpb.CT_NOT_EQUAL:
        return bool(have != want)
    if op == fpb.CT_GREATER_THAN:
        return bool(have > want)
    if op == fpb.CT_GREATER_EQUAL:
        return bool(have >= want)
    if op == fpb.CT_LESS_THAN:
        return bool(have < want)
    if op == fpb.CT_LESS_EQUAL:
        return bool(have <= want)
    raise _invalid("Unsupported comparator.")


@contextmanager
def run_fake_tablestore(fake: FakeTableStore) -> Iterator[str]:
    """Serve ``fake`` on 127.0.0.1; yields its endpoint URL."""
    with serve_app(fake) as url:
        yield url
