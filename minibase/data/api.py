"""The built-in ``db`` function: the caller's own documents (DESIGN §2).

Every operation is scoped to the caller's ``uid``; system fields (``uid``, ``_version``,
``_created``, ``_updated``) are set here and whatever the client sent for them is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..auth.sessions import Caller
from ..config import Config
from ..data.store.base import Store
from ..errors import InvalidArgument, PermissionDenied
from ..results import Page
from ..util.timefmt import now, rfc3339_ms
from . import cursor, validate

OPS = ("put", "get", "list", "remove")


class DataFunction:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.default_collection = config.app.default_collection
        self.limits = config.limits

    async def __call__(self, caller: Caller, event: Mapping[str, Any]) -> Any:
        op = event.get("op")
        name = validate.collection(event, self.default_collection)
        rules = self.config.collection(name)
        if op == "get":
            self._allow(rules.read, "read", name)
            doc_id = validate.doc_id(event.get("id"), "id", self.limits.max_id_length)
            raw = await self.store.get_document(name, caller.uid, doc_id)
            return None if raw is None else orjson.Fragment(raw)
        if op == "list":
            self._allow(rules.read, "read", name)
            n = validate.limit(event)
            after = None
            if event.get("cursor") is not None:
                pos = cursor.decode(event["cursor"])
                if len(pos) != 1 or not isinstance(pos[0], str):
                    raise InvalidArgument("cursor is not one this server returned")
                after = pos[0]
            rows = await self.store.list_documents(name, caller.uid, after, n + 1)
            more = len(rows) > n
            rows = rows[:n]
            nxt = cursor.encode([rows[-1][0]]) if more else None
            return Page([orjson.Fragment(body) for _, body in rows], nxt)
        if op == "put":
            obj = validate.document(event.get("obj"), "obj", self.limits.max_depth)
            doc_id = validate.doc_id(obj.get("id"), "obj.id", self.limits.max_id_length)
            self._allow(rules.create, "create", name)
            self._allow(rules.update, "update", name)
            fields = {k: v for k, v in obj.items() if k != "id" and k not in validate.SYSTEM_FIELDS}
            await self.store.put_document(name, caller.uid, doc_id, fields, rfc3339_ms(now()))
            return None
        if op == "remove":
            self._allow(rules.delete, "delete", name)
            doc_id = validate.doc_id(event.get("id"), "id", self.limits.max_id_length)
            await self.store.remove_document(name, caller.uid, doc_id)
            return None
        if op is None:
            raise InvalidArgument(f"op is required (one of: {', '.join(OPS)})")
        raise InvalidArgument(f"unknown op {str(op)[:40]!r} (one of: {', '.join(OPS)})")

    @staticmethod
    def _allow(rule: str, action: str, collection: str) -> None:
        # Until rule expressions land, every preset but "none" means the caller's own rows.
        if rule == "none":
            raise PermissionDenied(f"{action} is not allowed on collection '{collection}'")
