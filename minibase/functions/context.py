"""What a developer function gets: the caller, data and files acting as the caller, the
config, a logger and the request id."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..auth.sessions import Caller
from ..config import Config
from ..results import Page

if TYPE_CHECKING:
    from ..platform.identity import PlatformIdentity, UserInfo
    from ..platform.services import Admin, Platforms

__all__ = ["Context", "DataHandle"]

Invoke = Callable[[str, dict[str, Any], Caller | None], Awaitable[Any]]


def plain(value: Any) -> Any:
    """A function result as plain Python: raw documents decoded, pages as dicts."""
    if isinstance(value, orjson.Fragment):
        return orjson.loads(orjson.dumps(value))  # a Fragment keeps its bytes private
    if isinstance(value, Page):
        return {"data": [plain(v) for v in value.data], "next": value.next}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class _Handle:
    """Calls a built-in function as the caller. From an async function, ``await`` the
    methods; from a sync one (which runs on a worker thread), call them directly."""

    _function = ""

    def __init__(self, invoke: Invoke, caller: Caller | None, loop: asyncio.AbstractEventLoop) -> None:
        self._invoke = invoke
        self._caller = caller
        self._loop = loop

    def call(self, event: Mapping[str, Any]) -> Any:
        coro = self._run(dict(event))
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            return coro
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _run(self, event: dict[str, Any]) -> Any:
        return plain(await self._invoke(self._function, event, self._caller))


class DataHandle(_Handle):
    """``ctx.db``: the ``db`` function as the caller; the collection's rules apply."""

    _function = "db"

    def get(self, collection: str, id: str, **kw: Any) -> Any:
        return self.call({"op": "get", "collection": collection, "id": id, **kw})

    def put(self, collection: str, obj: Mapping[str, Any]) -> Any:
        return self.call({"op": "put", "collection": collection, "obj": obj})

    def insert(self, collection: str, obj: Mapping[str, Any]) -> Any:
        return self.call({"op": "insert", "collection": collection, "obj": obj})

    def update(self, collection: str, id: str, **ops: Any) -> Any:
        return self.call({"op": "update", "collection": collection, "id": id, **ops})

    def remove(self, collection: str, id: str, **kw: Any) -> Any:
        return self.call({"op": "remove", "collection": collection, "id": id, **kw})

    def query(self, collection: str, **kw: Any) -> Any:
        """``{"data": [...], "next": cursor}``; kw: where, orderBy, limit, cursor, fields, owner."""
        return self.call({"op": "query", "collection": collection, **kw})

    def count(self, collection: str, **kw: Any) -> Any:
        return self.call({"op": "count", "collection": collection, **kw})

    def aggregate(self, collection: str, pipeline: list[Mapping[str, Any]], **kw: Any) -> Any:
        """The groups of ``pipeline`` (docs/data.md#aggregation); kw: owner."""
        return self.call({"op": "aggregate", "collection": collection, "pipeline": pipeline, **kw})

    def batch(self, ops: list[Mapping[str, Any]], collection: str | None = None) -> Any:
        event: dict[str, Any] = {"op": "batch", "ops": ops}
        if collection is not None:
            event["collection"] = collection
        return self.call(event)


class FilesHandle(_Handle):
    """``ctx.files``: the ``files`` function as the caller."""

    _function = "files"

    def __call__(self, op: str, **kw: Any) -> Any:
        return self.call({"op": op, **kw})


class Context:
    def __init__(
        self,
        *,
        caller: Caller | None,
        config: Config,
        request_id: str,
        invoke: Invoke,
        loop: asyncio.AbstractEventLoop,
        function: str,
        identity: PlatformIdentity | None = None,
        user: UserInfo | None = None,
        admin: Admin | None = None,
        platform: Platforms | None = None,
    ) -> None:
        self.caller = caller
        # The caller's platform identity and user (None: no caller), ctx.admin and the
        # platforms' API clients (docs/platform.md).
        self.identity = identity
        self.user = user
        self.admin = admin
        self.platform = platform
        self.config = config
        self.request_id = request_id
        self.function = function
        self.db = DataHandle(invoke, caller, loop)
        self.files = FilesHandle(invoke, caller, loop)
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"minibase.functions.{function}"),
            {"request_id": request_id, "uid": caller.uid if caller else None},
        )

    @property
    def uid(self) -> str | None:
        return self.caller.uid if self.caller else None

    @property
    def provider(self) -> str | None:
        return self.caller.provider if self.caller else None
