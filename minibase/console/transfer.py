"""Export and import (docs/console.md#export-and-import): users, identities and documents
as JSON Lines, optionally gzip-compressed, streamed both ways (millions of documents in
constant memory).

The first line is ``{"minibase": "export", "version": 1}``; then one object per row,
``{"type": "user" | "identity" | "document", ...}``, users before identities before
documents, each in key order. A document's ``body`` is the stored JSON as it is, so an
export imported into an empty database exports again byte for byte. Importing keeps rows
whose key exists already (an import never overwrites).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, ClassVar

import orjson

from ..errors import InvalidArgument
from .store import ConsoleStore

__all__ = ["HEADER", "export_stream", "import_stream"]

HEADER = {"minibase": "export", "version": 1}
_BATCH = 1000
_MAX_LINE = 32 * 1024 * 1024  # one document's line; limits.max_document is far below this


def _line(kind: str, row: tuple[Any, ...]) -> bytes:
    if kind == "user":
        obj: dict[str, Any] = {"type": "user", "uid": row[0], "created": row[1], "disabled": bool(row[2])}
    elif kind == "identity":
        obj = {
            "type": "identity",
            "provider": row[0],
            "appId": row[1],
            "subject": row[2],
            "uid": row[3],
            "unionid": row[4],
            "created": row[5],
        }
    else:
        obj = {
            "type": "document",
            "collection": row[0],
            "uid": row[1],
            "id": row[2],
            "version": row[3],
            "created": row[4],
            "updated": row[5],
            "body": orjson.Fragment(row[6]),
        }
    return orjson.dumps(obj) + b"\n"


async def export_lines(
    store: ConsoleStore, progress: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    """The export, a batch of lines at a time."""
    yield orjson.dumps(HEADER) + b"\n"
    n = 0
    for kind, width in (("user", 1), ("identity", 3), ("document", 3)):
        after: list[Any] | None = None
        while True:
            rows = await store.export_batch(kind, after, _BATCH)
            if not rows:
                break
            yield b"".join(_line(kind, r) for r in rows)
            n += len(rows)
            if progress is not None:
                progress(n)
            if len(rows) < _BATCH:
                break
            after = list(rows[-1][:width])


async def export_stream(
    store: ConsoleStore, *, gzip: bool, progress: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    # zlib's gzip wrapper writes no file name and a zero mtime: the same data, the same bytes.
    packer = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
    async for chunk in export_lines(store, progress):
        if packer is None:
            yield chunk
        else:
            out = packer.compress(chunk)
            if out:
                yield out
    if packer is not None:
        yield packer.flush()


def _row(obj: Any, number: int) -> tuple[str, tuple[Any, ...]]:
    if not isinstance(obj, dict):
        raise InvalidArgument(f"line {number}: not a JSON object")
    kind = obj.get("type")
    try:
        if kind == "user":
            return kind, (_text(obj["uid"]), float(obj["created"]), bool(obj["disabled"]))
        if kind == "identity":
            unionid = obj.get("unionid")
            return kind, (
                _text(obj["provider"]),
                _text(obj["appId"]),
                _text(obj["subject"]),
                _text(obj["uid"]),
                _text(unionid) if unionid is not None else None,
                float(obj["created"]),
            )
        if kind == "document":
            body = obj["body"]
            if not isinstance(body, dict):
                raise InvalidArgument(f"line {number}: a document's body must be an object")
            version = obj["version"]
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise InvalidArgument(f"line {number}: version must be a positive integer")
            return kind, (
                _text(obj["collection"]),
                _text(obj["uid"]),
                _text(obj["id"]),
                version,
                _text(obj["created"]),
                _text(obj["updated"]),
                orjson.dumps(body).decode(),
            )
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidArgument(f"line {number}: a {kind} needs {e}") from None
    raise InvalidArgument(f"line {number}: unknown type {str(kind)[:32]!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise TypeError("non-empty strings")
    return value


async def import_stream(
    store: ConsoleStore, chunks: AsyncIterable[bytes], progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Load an export (gzip or not: told by its first bytes). Rows are written in batches
    of one kind, in the file's order; a bad line stops the import with InvalidArgument
    naming it (the batches before it are kept)."""
    importer = _Importer(store)
    unpack: Any = None
    read = 0
    async for chunk in chunks:
        if not chunk:
            continue
        read += len(chunk)
        if unpack is None:
            unpack = zlib.decompressobj(31) if chunk[:2] == b"\x1f\x8b" else False
        if unpack:
            try:
                data = unpack.decompress(chunk)
            except zlib.error:
                raise InvalidArgument("the gzip data is corrupt") from None
        else:
            data = chunk
        await importer.feed(data)
        if progress is not None:
            progress(read)
    if unpack and not unpack.eof:
        raise InvalidArgument("the gzip data is truncated or corrupt")
    return await importer.finish()


class _Importer:
    """Splits the decoded bytes into lines and writes the rows in batches of one kind."""

    _PLURAL: ClassVar[dict[str, str]] = {"user": "users", "identity": "identities", "document": "documents"}

    def __init__(self, store: ConsoleStore) -> None:
        self.store = store
        self.counts = {"users": 0, "identities": 0, "documents": 0}
        self.started = False
        self.buffer = b""
        self.number = 0
        self.batch: list[tuple[Any, ...]] = []
        self.batch_kind = ""

    async def flush(self) -> None:
        if self.batch:
            await self.store.import_batch(self.batch_kind, self.batch)
            self.counts[self._PLURAL[self.batch_kind]] += len(self.batch)
            self.batch = []

    async def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _MAX_LINE and b"\n" not in self.buffer:
            raise InvalidArgument(f"line {self.number + 1} is longer than {_MAX_LINE} bytes")
        *complete, self.buffer = self.buffer.split(b"\n")
        for raw in complete:
            self.number += 1
            if raw.strip():
                await self.line(raw)

    async def line(self, raw: bytes) -> None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidArgument(f"line {self.number}: not JSON") from None
        if not self.started:
            if obj != HEADER:
                raise InvalidArgument('line 1 must be {"minibase": "export", "version": 1}')
            self.started = True
            return
        kind, row = _row(obj, self.number)
        if kind != self.batch_kind or len(self.batch) >= _BATCH:
            await self.flush()
            self.batch_kind = kind
        self.batch.append(row)

    async def finish(self) -> dict[str, int]:
        if self.buffer.strip():
            await self.feed(b"\n")
        if not self.started:
            raise InvalidArgument("the file is empty: not a minibase export")
        await self.flush()
        return self.counts
