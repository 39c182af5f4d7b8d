"""``ctx.admin``: the ``db`` and ``files`` functions acting as the app, for developer
functions only (docs/platform.md#ctxadmin).

No collection rules and no file-area presets apply; a document or file in a user's area is
addressed by naming its owner (``owner=``). Every call writes one audit line per op
(``admin.db`` / ``admin.files``: function, requestId, op, collection or path, id, owner).
Nothing here is reachable from a client request: the core builds these objects only for a
developer function's context, never from an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..audit import audit
from ..auth.sessions import Caller
from ..config import CollectionConfig
from ..data.api import DataFunction
from ..data.filters import TRUE, Filter
from ..data.rules import AuthInfo
from ..data.validate import doc_id as valid_doc_id
from ..data.validate import owner as valid_owner
from ..errors import InvalidArgument, Unauthenticated
from ..files.api import FilesFunction
from ..files.store.base import FileInfo, UploadCondition
from ..functions.context import DataHandle, FilesHandle
from ..store.records import Key

__all__ = ["APP", "AdminDataHandle", "AdminFilesHandle", "AppDataFunction", "AppFilesFunction"]

# What the data function sees as "the caller" when the app acts: never compiled into a rule
# (AppDataFunction answers TRUE for every rule) and never an owner (owners are named).
APP = AuthInfo("", "app")
_NEEDS_OWNER = "ctx.admin.db acts as the app: name the document's owner (owner='<uid>')"


class AppDataFunction(DataFunction):
    """The ``db`` function with no rules, where every document's owner is named."""

    async def as_app(self, event: Mapping[str, Any]) -> Any:
        if event.get("op") == "list":
            raise InvalidArgument("ctx.admin.db has no list (the caller's documents): use query, with owner=")
        return await self._dispatch(event, APP)

    def _rule(
        self, col: CollectionConfig, op: str, auth: AuthInfo | None, *, required: bool = True
    ) -> Filter:
        return TRUE

    def _key(self, event: Mapping[str, Any], name: str, auth: AuthInfo | None, *, owner_allowed: bool) -> Key:
        if event.get("owner") is None:
            raise InvalidArgument(_NEEDS_OWNER)
        return Key(
            name, valid_owner(event["owner"]), valid_doc_id(event.get("id"), "id", self.limits.max_id_length)
        )

    def _create_owner(self, event: Mapping[str, Any], auth: AuthInfo) -> str:
        if event.get("owner") is None:
            raise InvalidArgument(_NEEDS_OWNER)
        return valid_owner(event["owner"])


class AppFilesFunction(FilesFunction):
    """The ``files`` function with no area presets; ``owner`` names whose area a relative
    path is in."""

    async def as_app(self, event: Mapping[str, Any], base_url: str | None) -> Any:
        owner = event.get("owner")
        who = None
        if owner is not None:
            who = Caller(valid_owner(owner), "app", "", b"")
        try:
            return await self(who, {k: v for k, v in event.items() if k != "owner"}, base_url=base_url)
        except Unauthenticated:
            raise InvalidArgument(
                "ctx.admin.files acts as the app: name whose area the path is in (owner='<uid>')"
            ) from None

    @staticmethod
    def _check_rule(rule: str, uid: str | None, doing: str) -> None:
        return None

    async def _readable(self, loc: Any, uid: str | None) -> FileInfo | None:
        return await self.store.stat(loc.key)

    async def _check_writable(self, loc: Any, uid: str | None) -> UploadCondition | None:
        return None


def _audit_db(function: str, request_id: str, event: Mapping[str, Any]) -> None:
    batch = event.get("ops")
    ops: list[Any] = batch if event.get("op") == "batch" and isinstance(batch, list) else [event]
    for sub in ops:
        if not isinstance(sub, Mapping):
            continue
        obj = sub.get("obj")
        doc_id = sub.get("id", obj.get("id") if isinstance(obj, Mapping) else None)
        audit(
            "admin.db",
            request_id,
            function=function,
            op=sub.get("op"),
            collection=sub.get("collection", event.get("collection")),
            id=doc_id if isinstance(doc_id, str) else None,
            owner=sub.get("owner") if isinstance(sub.get("owner"), str) else None,
        )


class AdminDataHandle(DataHandle):
    """``ctx.admin.db``: :class:`DataHandle`'s methods, acting as the app; ``put`` and
    ``insert`` take the new document's ``owner``."""

    def put(self, collection: str, obj: Mapping[str, Any], *, owner: str | None = None) -> Any:
        return self.call({"op": "put", "collection": collection, "obj": obj, "owner": owner})

    def insert(self, collection: str, obj: Mapping[str, Any], *, owner: str | None = None) -> Any:
        return self.call({"op": "insert", "collection": collection, "obj": obj, "owner": owner})


class AdminFilesHandle(FilesHandle):
    """``ctx.admin.files``: the files ops acting as the app (``owner=`` for a user's area)."""


def audit_admin(function: str, request_id: str, kind: str, event: Mapping[str, Any]) -> None:
    """The audit line(s) of one ``ctx.admin`` call."""
    if kind == "db":
        _audit_db(function, request_id, event)
    else:
        path = event.get("path", event.get("prefix"))
        audit(
            "admin.files",
            request_id,
            function=function,
            op=event.get("op"),
            path=path if isinstance(path, str) else None,
            owner=event.get("owner") if isinstance(event.get("owner"), str) else None,
        )
