"""A Python client for minibase (docs/http-api.md#clients), on httpx.

It logs in through the ``session`` function, keeps the sessionId and invoke credentials,
refreshes the credentials shortly before they expire (and once on an expiry error), and
calls functions through FC's Invoke API with FC 2.0 request signatures, exactly as the
mini-program clients of FC's template do.

    from minibase.client import Client
    mb = Client("http://127.0.0.1:8000", service="todo-list-svc")
    mb.login(auth_code="dev:alice")
    mb.invoke("db", {"op": "put", "obj": {"id": "buy milk", "completed": False}})
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from .auth import fc_signature

if TYPE_CHECKING:
    from .client_watch import WatchStream

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "Collection",
    "Credentials",
    "Database",
    "Document",
    "Files",
    "Query",
    "retry_safe",
]

FC_API = "/2016-08-15"
REFRESH_MARGIN = 60.0  # seconds before Expiration at which credentials are renewed

# What may be sent again after a 503 Unavailable: reads, signed URLs, and ``put`` (a whole
# document at its id: sent twice, it leaves the same document, only its ``_version`` one
# higher). Never insert (without an id it would store twice), update (inc, push: applied
# twice), remove, login/refresh/logout, or the developer's own functions.
RETRY_SAFE: dict[str, frozenset[str]] = {
    "db": frozenset(("get", "list", "query", "count", "aggregate", "put")),
    "files": frozenset(("uploadUrl", "downloadUrl", "stat", "list")),
}
RETRY_BATCH_OPS = frozenset(("get", "put"))  # a batch is retried when all its ops are these
MAX_RETRIES = 3
RETRY_BASE_DELAY = 0.2  # seconds; doubled each retry, randomised to 50-100 %
RETRY_MAX_DELAY = 30.0  # seconds; a longer Retry-After is not waited for: the error is raised


def retry_safe(function: str, event: dict[str, Any]) -> bool:
    """Whether calling ``function`` with ``event`` again cannot apply anything twice."""
    ops = RETRY_SAFE.get(function)
    if ops is None:
        return False
    op = event.get("op")
    if function == "db" and op == "batch":
        subs = event.get("ops")
        return (
            isinstance(subs, list)
            and bool(subs)
            and all(isinstance(sub, dict) and sub.get("op") in RETRY_BATCH_OPS for sub in subs)
        )
    return op in ops


class ClientError(Exception):
    """An error answer: ``code``, ``message``, ``status``, ``request_id``, and
    ``retry_after`` (seconds, from ``Retry-After``; None if not sent)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        request_id: str | None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after


@dataclass
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: float

    @classmethod
    def from_wire(cls, sts: dict[str, str]) -> Credentials:
        exp = datetime.fromisoformat(sts["Expiration"].replace("Z", "+00:00")).timestamp()
        return cls(sts["AccessKeyId"], sts["AccessKeySecret"], sts["SecurityToken"], exp)


def signed_headers(
    creds: Credentials,
    method: str,
    path: str,
    body: bytes,
    *,
    date: str | None = None,
    content_type: str = "application/json",
    query: dict[str, Any] | None = None,
    content_md5: bool = True,
) -> dict[str, str]:
    """The headers a FC SDK sends for one request signed with ``creds``, with a signed
    Content-MD5 of ``body`` (RFC 1864) so the signature covers the body; ``content_md5=False``
    sends none, as FC's Python SDK does."""
    headers = {
        "content-type": content_type,
        "date": date or fc_signature.format_date(),
        "x-fc-security-token": creds.security_token,
    }
    if content_md5:
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        headers["content-md5"] = base64.b64encode(digest).decode()
    headers["authorization"] = fc_signature.authorization(
        creds.access_key_id, creds.access_key_secret, method, path, headers, query
    )
    return headers


def _raise_for(resp: httpx.Response) -> Any:
    try:
        body = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        raise ClientError(
            "Internal", f"non-JSON answer (HTTP {resp.status_code})", resp.status_code, None
        ) from None
    rid = resp.headers.get("x-fc-request-id")
    if isinstance(body, dict) and "error" in body:
        err = body["error"]
        raise ClientError(
            err.get("code", "Internal"), err.get("message", ""), resp.status_code, rid, _retry_after(resp)
        )
    if isinstance(body, dict) and "ErrorCode" in body:  # FC gateway refusal
        raise ClientError(
            body["ErrorCode"], body.get("ErrorMessage", ""), resp.status_code, rid, _retry_after(resp)
        )
    if resp.status_code >= 400:
        raise ClientError("Internal", f"HTTP {resp.status_code}", resp.status_code, rid)
    return body


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None  # absent, or an HTTP date (minibase sends seconds)
    return seconds if seconds >= 0 else None


class _Base:
    """State and request building shared by :class:`Client` and :class:`AsyncClient`."""

    max_retries = MAX_RETRIES
    retry_base_delay = RETRY_BASE_DELAY
    retry_max_delay = RETRY_MAX_DELAY

    def __init__(self, endpoint: str, service: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.service = service
        self.session_id: str | None = None
        self.credentials: Credentials | None = None
        self.uid: str | None = None
        self.user: dict[str, Any] | None = None
        self.db = Database(self)
        self.files = Files(self)

    @property
    def session_path(self) -> str:
        return f"{FC_API}/proxy/{self.service}/session/"

    def _login_event(self, auth_code: str, provider: str | None) -> dict[str, Any]:
        event: dict[str, Any] = {"authCode": auth_code}
        if provider:
            event["provider"] = provider
        return event

    def _remember(self, body: dict[str, Any]) -> dict[str, Any]:
        self.session_id = body["sessionId"]
        self.credentials = Credentials.from_wire(body["sts"])
        self.user = body["user"]
        self.uid = body["user"]["uid"]
        return body

    def _forget(self) -> None:
        self.session_id = self.credentials = self.uid = self.user = None

    def _sid(self) -> str:
        if not self.session_id:
            raise ClientError("Unauthenticated", "log in first", 401, None)
        return self.session_id

    def _needs_refresh(self) -> bool:
        return self.credentials is None or self.credentials.expiration - time.time() < REFRESH_MARGIN

    def _signed(self, function: str, event: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
        assert self.credentials is not None
        path = f"{FC_API}/services/{self.service}/functions/{function}/invocations"
        body = orjson.dumps(event)
        return path, body, signed_headers(self.credentials, "POST", path, body)

    def _retry_delay(self, e: ClientError, attempt: int) -> float | None:
        """Seconds to wait before sending a retry-safe call again after ``e`` (its
        ``attempt``-th failure, 0-based), or None to raise ``e``: exponential backoff with
        jitter, at least Retry-After, for ``Unavailable`` only and a bounded number of times."""
        if e.code != "Unavailable" or attempt >= self.max_retries:
            return None
        if e.retry_after is not None and e.retry_after > self.retry_max_delay:
            return None
        backoff = min(self.retry_max_delay, self.retry_base_delay * 2**attempt)
        delay = backoff / 2 + random.random() * backoff / 2  # noqa: S311 - jitter, not a secret
        return float(max(delay, e.retry_after or 0.0))

    def _data(self, function: str, event: dict[str, Any]) -> Any:  # pragma: no cover - overridden
        """The answer's ``data`` (a coroutine in the async client)."""
        raise NotImplementedError

    def _page(self, function: str, event: dict[str, Any]) -> Any:  # pragma: no cover - overridden
        """The whole answer, ``{"data", "next"}`` (a coroutine in the async client)."""
        raise NotImplementedError


def _nodelay() -> list[tuple[int, int, int]]:
    # Without TCP_NODELAY a keep-alive request whose headers and body leave in two writes
    # waits ~40 ms for the server's delayed ACK (Nagle).
    return [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class Client(_Base):
    """A synchronous client. ``Client(endpoint, service).login(auth_code="dev:alice")``."""

    def __init__(
        self,
        endpoint: str,
        service: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = MAX_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(endpoint, service)
        transport = transport or httpx.HTTPTransport(socket_options=_nodelay())
        self.http = httpx.Client(base_url=self.endpoint, timeout=timeout, transport=transport)
        self.max_retries = max_retries  # retries of a retry-safe call answered 503 (0: none)
        self._sleep = sleep

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session_call(self, event: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post(self.session_path, content=orjson.dumps(event), headers=_JSON)
        return _raise_for(resp)  # type: ignore[no-any-return]

    def login(self, auth_code: str, provider: str | None = None) -> dict[str, Any]:
        return self._remember(self._session_call(self._login_event(auth_code, provider)))

    def refresh(self) -> dict[str, Any]:
        return self._remember(self._session_call({"op": "refresh", "sessionId": self._sid()}))

    def logout(self) -> None:
        self._session_call({"op": "logout", "sessionId": self._sid()})
        self._forget()

    def invoke(self, function: str, event: dict[str, Any] | None = None) -> Any:
        """Call ``function`` through the FC Invoke API; returns the whole answer body.

        A retry-safe call (:func:`retry_safe`) answered 503 ``Unavailable`` is sent again
        after a backoff of at least its Retry-After, up to ``max_retries`` times."""
        event = {"sid": self._sid(), **(event or {})}
        if self._needs_refresh():
            self.refresh()
        safe = retry_safe(function, event)
        attempt = 0
        while True:
            try:
                return self._invoke_refreshing(function, event)
            except ClientError as e:
                delay = self._retry_delay(e, attempt) if safe else None
                if delay is None:
                    raise
                attempt += 1
                self._sleep(delay)

    def _invoke_refreshing(self, function: str, event: dict[str, Any]) -> Any:
        try:
            return self._invoke_once(function, event)
        except ClientError as e:
            if not e.code.startswith("InvalidSecurityToken"):
                raise
            self.refresh()  # once, on an expiry the clock did not predict
            return self._invoke_once(function, event)

    def _invoke_once(self, function: str, event: dict[str, Any]) -> Any:
        path, body, headers = self._signed(function, event)
        return _raise_for(self.http.post(path, content=body, headers=headers))

    def call_function(self, name: str, data: dict[str, Any] | None = None) -> Any:
        """Call one of the developer's functions; returns its ``data``."""
        return self.invoke(name, data).get("data")

    def _data(self, function: str, event: dict[str, Any]) -> Any:
        return self.invoke(function, event).get("data")

    def _page(self, function: str, event: dict[str, Any]) -> Any:
        return self.invoke(function, event)

    def put_bytes(self, url: str, method: str, headers: dict[str, str], content: bytes) -> None:
        """Send bytes to a signed upload URL (from ``files.upload_url``)."""
        resp = httpx.request(method, url, headers=headers, content=content, timeout=self.http.timeout)
        if resp.status_code >= 300:
            _raise_for(resp)


class AsyncClient(_Base):
    """The same surface as :class:`Client`, with coroutines: ``await mb.login(...)``."""

    def __init__(
        self,
        endpoint: str,
        service: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = MAX_RETRIES,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(endpoint, service)
        transport = transport or httpx.AsyncHTTPTransport(socket_options=_nodelay())
        self.http = httpx.AsyncClient(base_url=self.endpoint, timeout=timeout, transport=transport)
        self.max_retries = max_retries
        self._sleep = sleep

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _session_call(self, event: dict[str, Any]) -> dict[str, Any]:
        resp = await self.http.post(self.session_path, content=orjson.dumps(event), headers=_JSON)
        return _raise_for(resp)  # type: ignore[no-any-return]

    async def login(self, auth_code: str, provider: str | None = None) -> dict[str, Any]:
        return self._remember(await self._session_call(self._login_event(auth_code, provider)))

    async def refresh(self) -> dict[str, Any]:
        return self._remember(await self._session_call({"op": "refresh", "sessionId": self._sid()}))

    async def logout(self) -> None:
        await self._session_call({"op": "logout", "sessionId": self._sid()})
        self._forget()

    async def invoke(self, function: str, event: dict[str, Any] | None = None) -> Any:
        event = {"sid": self._sid(), **(event or {})}
        if self._needs_refresh():
            await self.refresh()
        safe = retry_safe(function, event)
        attempt = 0
        while True:
            try:
                return await self._invoke_refreshing(function, event)
            except ClientError as e:
                delay = self._retry_delay(e, attempt) if safe else None
                if delay is None:
                    raise
                attempt += 1
                await self._sleep(delay)

    async def _invoke_refreshing(self, function: str, event: dict[str, Any]) -> Any:
        try:
            return await self._invoke_once(function, event)
        except ClientError as e:
            if not e.code.startswith("InvalidSecurityToken"):
                raise
            await self.refresh()
            return await self._invoke_once(function, event)

    async def _invoke_once(self, function: str, event: dict[str, Any]) -> Any:
        path, body, headers = self._signed(function, event)
        return _raise_for(await self.http.post(path, content=body, headers=headers))

    async def call_function(self, name: str, data: dict[str, Any] | None = None) -> Any:
        return (await self.invoke(name, data)).get("data")

    async def _data(self, function: str, event: dict[str, Any]) -> Any:
        return (await self.invoke(function, event)).get("data")

    async def _page(self, function: str, event: dict[str, Any]) -> Any:
        return await self.invoke(function, event)

    async def put_bytes(self, url: str, method: str, headers: dict[str, str], content: bytes) -> None:
        async with httpx.AsyncClient(timeout=self.http.timeout) as h:
            resp = await h.request(method, url, headers=headers, content=content)
        if resp.status_code >= 300:
            _raise_for(resp)


_JSON = {"content-type": "application/json"}


# ----------------------------------------------------------------- data builders
# They only build events; the client runs them (sync: values, async: coroutines).


class Database:
    """``mb.db``: ``mb.db.collection("todo_list")``, ``mb.db.batch([...])``, or the raw
    ``mb.db("query", collection=..., where=...)`` returning ``data``."""

    def __init__(self, client: _Base) -> None:
        self._client = client

    def __call__(self, op: str, **event: Any) -> Any:
        return self._client._data("db", {"op": op, **event})

    def collection(self, name: str) -> Collection:
        return Collection(self._client, name)

    def batch(self, ops: list[dict[str, Any]], collection: str | None = None) -> Any:
        event: dict[str, Any] = {"op": "batch", "ops": ops}
        if collection:
            event["collection"] = collection
        return self._client._data("db", event)


class Query:
    def __init__(self, client: _Base, collection: str, event: dict[str, Any] | None = None) -> None:
        self._client = client
        self.collection = collection
        self.event: dict[str, Any] = event or {}

    def _with(self, **kw: Any) -> Query:
        return Query(self._client, self.collection, {**self.event, **kw})

    def where(self, where: dict[str, Any]) -> Query:
        return self._with(where=where)

    def order_by(self, field: str, direction: str = "asc") -> Query:
        return self._with(orderBy=[*self.event.get("orderBy", []), [field, direction]])

    def limit(self, n: int) -> Query:
        return self._with(limit=n)

    def fields(self, fields: list[str]) -> Query:
        return self._with(fields=fields)

    def owner(self, uid: str) -> Query:
        return self._with(owner=uid)

    def get(self, cursor: str | None = None) -> Any:
        """``{"data": [...], "next": cursor-or-None}``."""
        event = {"op": "query", "collection": self.collection, **self.event}
        if cursor:
            event["cursor"] = cursor
        return self._client._page("db", event)

    def watch(self) -> WatchStream:
        """The query, live (AsyncClient only): ``async for snapshot in q.watch()``, each
        snapshot ``docs`` and ``doc_changes`` (docs/realtime.md)."""
        if not isinstance(self._client, AsyncClient):
            raise TypeError("watch() needs an AsyncClient: it is an async iterator")
        from .client_watch import WatchStream

        return WatchStream(self._client, {"collection": self.collection, **self.event})

    def count(self) -> Any:
        return self._client._data(
            "db", {"op": "count", "collection": self.collection, **_only(self.event, "where", "owner")}
        )

    def aggregate(self, pipeline: list[dict[str, Any]]) -> Any:
        """The groups of ``pipeline`` (docs/data.md#aggregation); this query's ``where``
        becomes its ``$match`` stage and ``owner`` carries over."""
        if "where" in self.event:
            pipeline = [{"$match": self.event["where"]}, *pipeline]
        return self._client._data(
            "db",
            {
                "op": "aggregate",
                "collection": self.collection,
                "pipeline": pipeline,
                **_only(self.event, "owner"),
            },
        )


class Collection(Query):
    def __init__(self, client: _Base, name: str) -> None:
        super().__init__(client, name)

    def doc(self, id: str, owner: str | None = None) -> Document:
        return Document(self._client, self.collection, id, owner)

    def add(self, obj: dict[str, Any]) -> Any:
        return self._client._data("db", {"op": "insert", "collection": self.collection, "obj": obj})


class Document:
    def __init__(self, client: _Base, collection: str, id: str, owner: str | None) -> None:
        self._client = client
        self._base: dict[str, Any] = {"collection": collection, "id": id}
        if owner:
            self._base["owner"] = owner

    def get(self) -> Any:
        return self._client._data("db", {"op": "get", **self._base})

    def set(self, obj: dict[str, Any]) -> Any:
        return self._client._data(
            "db",
            {"op": "put", "collection": self._base["collection"], "obj": {**obj, "id": self._base["id"]}},
        )

    def update(self, **ops: Any) -> Any:
        """``update(set={...}, inc={...}, unset=[...], push={...}, pull={...}, ifVersion=n)``."""
        return self._client._data("db", {"op": "update", **self._base, **ops})

    def remove(self) -> Any:
        return self._client._data("db", {"op": "remove", **self._base})


class Files:
    """``mb.files``: signed URLs for uploads and downloads, stat, list, remove."""

    def __init__(self, client: _Base) -> None:
        self._client = client

    def upload_url(self, path: str, content_type: str, size: int) -> Any:
        return self._client._data(
            "files", {"op": "uploadUrl", "path": path, "contentType": content_type, "size": size}
        )

    def upload_form(self, path: str, content_type: str, size: int | None = None) -> Any:
        """``{url, name, formData, expiresAt, fileId}`` for a multipart POST of the file."""
        event: dict[str, Any] = {"op": "uploadForm", "path": path, "contentType": content_type}
        if size is not None:
            event["size"] = size
        return self._client._data("files", event)

    def download_url(self, path: str, thumb: str | None = None) -> Any:
        event: dict[str, Any] = {"op": "downloadUrl", "path": path}
        if thumb is not None:
            event["thumb"] = thumb
        return self._client._data("files", event)

    def download_urls(self, paths: list[str], thumb: str | None = None) -> Any:
        """One ``{path, fileId, url, expiresAt}`` or ``{path, error}`` per path (up to 100)."""
        event: dict[str, Any] = {"op": "downloadUrls", "paths": paths}
        if thumb is not None:
            event["thumb"] = thumb
        return self._client._data("files", event)

    def stat(self, path: str) -> Any:
        return self._client._data("files", {"op": "stat", "path": path})

    def list(self, prefix: str | None = None, limit: int | None = None, cursor: str | None = None) -> Any:
        event: dict[str, Any] = {"op": "list"}
        for k, v in (("prefix", prefix), ("limit", limit), ("cursor", cursor)):
            if v is not None:
                event[k] = v
        return self._client._page("files", event)

    def remove(self, path: str) -> Any:
        return self._client._data("files", {"op": "remove", "path": path})


def _only(event: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k in keys}
