"""The built-in ``db`` function (docs/data.md): documents, queries, atomic and batch writes.

Each operation compiles the collection's permission rule for the caller into a filter
and hands it to the store together with the client's ``where``, so a rule is part of the
one indexed query and never a post-filter. System fields (``uid``, ``_version``,
``_created``, ``_updated``) are set by the store; whatever a client sends for them is
ignored. Documents are keyed by (collection, owner uid, id), as in FC's template, so two users
may both have a todo called "buy milk"; ``owner`` addresses another user's document where
the rules allow it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..auth.sessions import Caller
from ..config import CollectionConfig, Config
from ..errors import (
    InvalidArgument,
    MinibaseError,
    NotIndexed,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
)
from ..results import Page
from ..store.protocols import DocumentStore
from ..store.records import Key
from ..store.writes import Get, Insert, Put, Remove, Update, WriteOp, make_document
from ..util.ids import sortable_id
from ..util.timefmt import now, rfc3339_ms
from . import cursor, validate
from .filters import FALSE, TRUE, Cmp, Filter, OrderKey, bind_owner, conj
from .patch import SYSTEM_FIELDS, parse_patch
from .query import parse_fields, parse_order_by, parse_where, project, search_paths
from .rules import AuthInfo
from .schema import Schema

OPS = ("put", "get", "list", "remove", "insert", "update", "query", "count", "aggregate", "batch")
BATCH_OPS = ("put", "get", "insert", "update", "remove")
_NO_ORDER: tuple[OrderKey, ...] = ()


class DataFunction:
    def __init__(self, config: Config, store: DocumentStore) -> None:
        self.config = config
        self.store = store
        self.default_collection = config.app.default_collection
        self.limits = config.limits
        self._schemas: dict[str, Schema | None] = {}

    async def __call__(self, caller: Caller | None, event: Mapping[str, Any]) -> Any:
        return await self._dispatch(
            event, AuthInfo(caller.uid, caller.provider) if caller is not None else None
        )

    async def _dispatch(self, event: Mapping[str, Any], auth: AuthInfo | None) -> Any:
        op = event.get("op")
        if op == "get":
            name, col = self._collection(event, None)
            key = self._key(event, name, auth, owner_allowed=True)
            rule = bind_owner(self._rule(col, "read", auth), key.uid)
            if rule == FALSE:
                return None
            raw = await self.store.get_document(key, rule)
            return self._doc(raw, event)
        if op == "query" or op == "list":
            return await self._query(event, auth, own_only=op == "list")
        if op == "count":
            name, col = self._collection(event, None)
            where = conj(
                self._rule(col, "read", auth),
                self._where(name, col, event.get("where")),
                self._owner(event, auth),
            )
            return 0 if where == FALSE else await self.store.count(name, where)
        if op == "aggregate":
            return await self._aggregate(event, auth)
        if op == "batch":
            return await self._batch(event, auth)
        if op in ("put", "insert", "update", "remove"):
            write = self._write_op(event, auth, None)
            [result] = await self.store.write([write], rfc3339_ms(now()))
            return _result(write, result)
        if op is None:
            raise InvalidArgument(f"op is required (one of: {', '.join(OPS)})")
        raise InvalidArgument(f"unknown op {str(op)[:40]!r} (one of: {', '.join(OPS)})")

    # ------------------------------------------------------------------ reads

    async def _query(self, event: Mapping[str, Any], auth: AuthInfo | None, *, own_only: bool) -> Page:
        name, col = self._collection(event, None)
        rule = self._rule(col, "read", auth)
        if own_only:
            # list: the caller's own documents in id order (as in FC's template).
            if auth is None:
                raise Unauthenticated("log in to list your documents")
            where, order = conj(rule, Cmp(("uid",), "eq", auth.uid)), _NO_ORDER
        else:
            where, order = self._filter(name, col, event, rule, auth)
        fields = None if own_only else parse_fields(event.get("fields"))
        n = validate.limit(event, maximum=self.limits.max_query_limit)
        fingerprint = _fingerprint(name, order)
        after = None
        if event.get("cursor") is not None:
            pos = cursor.decode(event["cursor"])
            if len(pos) != 2 or pos[0] != fingerprint or not isinstance(pos[1], list):
                raise InvalidArgument(
                    "cursor does not belong to this query (collection and orderBy must match)"
                )
            after = pos[1]
        if where == FALSE:
            return Page([], None)
        rows = await self.store.query(name, where, order, n + 1, after)
        more = len(rows) > n
        rows = rows[:n]
        budget, size = PAGE_DOCUMENTS * self.limits.max_document, 0
        for i, (_, body) in enumerate(rows):
            size += len(body)
            if size > budget and i > 0:  # the answer's size is bounded: the rest on the next page
                rows, more = rows[:i], True
                break
        nxt = cursor.encode([fingerprint, rows[-1][0]]) if more else None
        if fields is None:
            return Page([orjson.Fragment(body) for _, body in rows], nxt)
        return Page([project(orjson.loads(body), fields) for _, body in rows], nxt)

    async def _aggregate(self, event: Mapping[str, Any], auth: AuthInfo | None) -> list[dict[str, Any]]:
        from .aggregate import MAX_GROUPS, parse_pipeline  # on first use: a cold start skips it

        name, col = self._collection(event, None)
        rule = self._rule(col, "read", auth)
        pipeline = parse_pipeline(event.get("pipeline"))
        self._check_search(name, col, pipeline.where)
        # The read rule is part of the one statement, as for query and count: an aggregate
        # sees exactly the documents a query would return.
        where = conj(rule, pipeline.where, self._owner(event, auth))
        if where == FALSE:
            return []
        rows = await self.store.aggregate(name, where, pipeline.group, MAX_GROUPS)
        if len(rows) > MAX_GROUPS:
            raise InvalidArgument(
                f"the aggregate forms more than {MAX_GROUPS} groups: narrow $match or group by fewer fields",
                max=MAX_GROUPS,
                path="pipeline",
            )
        return pipeline.finish(rows)

    def _where(self, name: str, col: CollectionConfig, where: object) -> Filter:
        f = parse_where(where)
        self._check_search(name, col, f)
        return f

    def _check_search(self, name: str, col: CollectionConfig, f: Filter) -> None:
        for path in sorted(search_paths(f)):
            if path not in col.search:
                field = ".".join(path)
                raise NotIndexed(
                    f"$search on {field!r} needs a search index: declare it in the config,"
                    f' [collections.{name}] search = ["{field}"]',
                    field=field,
                )

    def _filter(
        self, name: str, col: CollectionConfig, event: Mapping[str, Any], rule: Filter, auth: AuthInfo | None
    ) -> tuple[Filter, tuple[OrderKey, ...]]:
        """What a query runs: the caller's read rule, ``where`` and ``owner``; its order."""
        where = conj(rule, self._where(name, col, event.get("where")), self._owner(event, auth))
        return where, parse_order_by(event.get("orderBy"))

    def watch_plan(
        self, event: Mapping[str, Any], auth: AuthInfo | None
    ) -> tuple[str, Filter, tuple[OrderKey, ...]]:
        """A realtime watch of ``event`` (a query's keys): its collection, the filter a
        ``query`` by this caller would run (the same compiled rule) and its order."""
        name, col = self._collection(event, None)
        where, order = self._filter(name, col, event, self._rule(col, "read", auth), auth)
        if search_paths(where):
            raise InvalidArgument(
                "$search cannot be watched: watch the query without it, and search on the client"
            )
        return name, where, order

    def _doc(self, raw: bytes | None, event: Mapping[str, Any]) -> Any:
        if raw is None:
            return None
        fields = parse_fields(event.get("fields"))
        return orjson.Fragment(raw) if fields is None else project(orjson.loads(raw), fields)

    # ----------------------------------------------------------------- writes

    async def _batch(self, event: Mapping[str, Any], auth: AuthInfo | None) -> list[Any]:
        ops = event.get("ops")
        if not isinstance(ops, list) or not ops:
            raise InvalidArgument("batch needs ops: a non-empty list")
        if len(ops) > self.limits.max_batch:
            n = self.limits.max_batch
            raise InvalidArgument(
                f"a batch holds at most {n} ops (limits.max_batch)",
                limit="limits.max_batch",
                max=n,
                path="ops",
            )
        default = event.get("collection")
        writes: list[WriteOp] = []
        for i, sub in enumerate(ops):
            try:
                if not isinstance(sub, dict):
                    raise InvalidArgument("each op must be an object")
                if sub.get("op") not in BATCH_OPS:
                    raise InvalidArgument(f"op must be one of: {', '.join(BATCH_OPS)}")
                writes.append(self._write_op(sub, auth, default))
            except MinibaseError as e:
                e.details.setdefault("index", i)
                e.message = f"ops[{i}]: {e.message}"
                raise
        results = await self.store.write(writes, rfc3339_ms(now()))
        return [_result(w, r) for w, r in zip(writes, results, strict=True)]

    def _write_op(self, event: Mapping[str, Any], auth: AuthInfo | None, default: object) -> WriteOp:
        op = event["op"]
        name, col = self._collection(event, default)
        if op == "get":
            key = self._key(event, name, auth, owner_allowed=True)
            return Get(key, bind_owner(self._rule(col, "read", auth), key.uid))
        if auth is None:
            raise Unauthenticated("log in to write documents")
        if op in ("put", "insert"):
            owner = self._create_owner(event, auth)
            obj = validate.document(event.get("obj"), "obj", self.limits.max_depth)
            if op == "put" or "id" in obj:
                doc_id = validate.doc_id(obj.get("id"), "obj.id", self.limits.max_id_length)
            else:
                doc_id = sortable_id()
            fields = {k: v for k, v in obj.items() if k not in SYSTEM_FIELDS}
            schema = self._schema(name, col)
            if schema is not None:
                schema.validate(doc_id, fields)
            key = Key(name, owner, doc_id)
            # put may replace a document at any version: count the widest one.
            self._check_size(key, fields, 1 if op == "insert" else _WIDEST_VERSION, _STAMP, "obj")
            create = bind_owner(self._rule(col, "create", auth), key.uid)
            if op == "insert":
                return Insert(key, fields, create, self._read_rule(col, auth, key))
            return Put(
                key, fields, create, bind_owner(self._rule(col, "update", auth, required=False), key.uid)
            )
        key = self._key(event, name, auth, owner_allowed=True)
        if op == "remove":
            return Remove(key, bind_owner(self._rule(col, "delete", auth), key.uid))
        # update
        patch = parse_patch(event)
        version = event.get("ifVersion")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise InvalidArgument("ifVersion must be a positive integer")
        schema = self._schema(name, col)

        def apply(old: dict[str, Any]) -> Mapping[str, Any]:
            new = patch.apply(old)
            if schema is not None:
                schema.validate(key.id, new)
            # Inside the write's transaction, on the document about to be stored: repeated
            # pushes cannot grow it past the limit.
            self._check_size(key, new, old["_version"] + 1, old["_created"], "")
            return new

        return Update(
            key,
            apply,
            bind_owner(self._rule(col, "update", auth), key.uid),
            version,
            self._read_rule(col, auth, key),
        )

    # ---------------------------------------------------------------- helpers

    def _collection(self, event: Mapping[str, Any], default: object) -> tuple[str, CollectionConfig]:
        fallback = default if isinstance(default, str) else self.default_collection
        name = validate.collection(event, fallback)
        return name, self.config.collection(name)

    def _rule(
        self, col: CollectionConfig, op: str, auth: AuthInfo | None, *, required: bool = True
    ) -> Filter:
        f = col.rule(op).compile(auth)
        if f == FALSE and required:
            if auth is None:
                raise Unauthenticated(f"log in to {_VERB[op]} documents here")
            raise PermissionDenied(f"{_VERB[op]} is not allowed on this collection")
        return f

    def _create_owner(self, event: Mapping[str, Any], auth: AuthInfo) -> str:
        """Whose document a put or insert creates: always the caller's."""
        if event.get("owner") not in (None, auth.uid):
            raise PermissionDenied("documents are always created for the caller; owner is not allowed here")
        return auth.uid

    def _check_size(self, key: Key, fields: Mapping[str, Any], version: int, created: str, path: str) -> None:
        """PayloadTooLarge if the stored document (compact JSON, system fields included)
        would exceed ``limits.max_document``."""
        maximum = self.limits.max_document
        size = len(orjson.dumps(make_document(key, fields, version, created, _STAMP)))
        if size > maximum:
            raise PayloadTooLarge(
                f"the document would be larger than {maximum} bytes (limits.max_document)",
                limit="limits.max_document",
                max=maximum,
                path=path,
            )

    def _read_rule(self, col: CollectionConfig, auth: AuthInfo | None, key: Key) -> Filter:
        """What a write's answer must pass to carry the document (see ``_result``)."""
        return bind_owner(self._rule(col, "read", auth, required=False), key.uid)

    def _key(self, event: Mapping[str, Any], name: str, auth: AuthInfo | None, *, owner_allowed: bool) -> Key:
        doc_id = validate.doc_id(event.get("id"), "id", self.limits.max_id_length)
        owner = event.get("owner")
        if owner is None:
            if auth is None:
                raise Unauthenticated("log in, or name the document's owner")
            return Key(name, auth.uid, doc_id)
        if not owner_allowed:
            raise InvalidArgument("owner must be a user id")
        return Key(name, validate.owner(owner), doc_id)

    def _owner(self, event: Mapping[str, Any], auth: AuthInfo | None) -> Filter:
        owner = event.get("owner")
        if owner is None:
            return TRUE
        return Cmp(("uid",), "eq", validate.owner(owner))

    def _schema(self, name: str, col: CollectionConfig) -> Schema | None:
        if name not in self._schemas:
            self._schemas[name] = Schema(col.schema) if col.schema is not None else None
        return self._schemas[name]


# The timestamps' length (RFC 3339, ms, UTC) is all a size check needs of them; a stored
# version fits PostgreSQL's INTEGER.
_STAMP = "2000-01-01T00:00:00.000Z"
_WIDEST_VERSION = 2**31 - 1
# A page stops early, with `next`, once its documents total more than this many times
# limits.max_document (a page of one document is always served).
PAGE_DOCUMENTS = 4

_VERB = {"read": "read", "create": "create", "update": "update", "delete": "delete"}


def _fingerprint(collection: str, order: Sequence[OrderKey]) -> str:
    text = collection + "|" + ";".join(".".join(k.path) + ("-" if k.descending else "+") for k in order)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _result(op: WriteOp, value: Any) -> Any:
    if isinstance(op, Insert | Update):
        # The store answers None when the written document fails the caller's read rule:
        # the caller then learns only the id it addressed (or that insert generated).
        return {"id": op.key.id} if value is None else orjson.Fragment(value)
    if isinstance(op, Get):
        return None if value is None else orjson.Fragment(value)
    return None
