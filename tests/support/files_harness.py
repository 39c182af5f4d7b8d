"""Helpers for file tests, reusable for end-to-end tests of the real app.

* :func:`send_upload` — PUT bytes to an ``uploadUrl`` result exactly as it says
  (its method, its headers, nothing else that matters).
* :func:`files_asgi_app` — a tiny Starlette app serving a local store's ``/files/...``
  routes, for tests that call :class:`~minibase.files.FilesFunction` directly.
* :func:`caller` — a :class:`~minibase.auth.sessions.Caller` for a uid.
* :func:`roundtrip` — upload through any way of calling the function (e.g. a real
  :class:`~minibase.client.Client`: ``lambda ev: client.invoke("files", ev)["data"]``),
  then stat and download; returns what came back.
* :class:`FilesEnv` — one backend under test: the function, its store, the base URL,
  and :meth:`FilesEnv.pass_time` to make signed URLs expire on the serving side.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from minibase.auth.sessions import Caller
from minibase.config import Config
from minibase.errors import MinibaseError
from minibase.files import FilesFunction, FileStore, LocalFilesApp, LocalFileStore

__all__ = ["FilesEnv", "caller", "files_asgi_app", "roundtrip", "send_upload"]


def caller(uid: str, provider: str = "dev") -> Caller:
    return Caller(uid, provider, f"s_{uid}", hashlib.sha256(uid.encode()).digest())


def send_upload(
    grant: Mapping[str, Any],
    body: bytes | Iterable[bytes],
    *,
    headers: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """Send ``body`` to ``grant["url"]`` with exactly ``grant["method"]`` and ``grant["headers"]``
    (``headers`` overrides some, to test refusals). An iterable body goes chunked."""
    sent = {**grant["headers"], **(headers or {})}
    content = body if isinstance(body, bytes) else iter(body)
    if client is not None:
        return client.request(grant["method"], grant["url"], headers=sent, content=content)
    with httpx.Client(timeout=30) as c:
        return c.request(grant["method"], grant["url"], headers=sent, content=content)


def roundtrip(
    invoke: Callable[[dict[str, Any]], Any],
    path: str,
    body: bytes,
    content_type: str = "application/octet-stream",
) -> tuple[dict[str, Any], httpx.Response]:
    """uploadUrl → PUT → stat → downloadUrl → GET through ``invoke`` (which runs the files
    function with an event and returns its ``data``). Asserts each step; returns the stat
    object and the download response."""
    grant = invoke({"op": "uploadUrl", "path": path, "contentType": content_type, "size": len(body)})
    put = send_upload(grant, body)
    assert put.status_code == 200, (put.status_code, put.text)
    stat = invoke({"op": "stat", "path": path})
    assert stat is not None and stat["size"] == len(body) and stat["contentType"] == content_type, stat
    link = invoke({"op": "downloadUrl", "path": path})
    with httpx.Client(timeout=30) as c:
        got = c.get(link["url"])
    assert got.status_code == 200 and got.content == body, (got.status_code, got.content[:200])
    return stat, got


def files_asgi_app(store: FileStore) -> Starlette:
    """``/files/...`` served for a local store (nothing for S3: the bucket serves itself)."""
    routes = [Mount("/files", app=LocalFilesApp(store))] if isinstance(store, LocalFileStore) else []
    return Starlette(routes=routes)


class FilesEnv:
    """One file backend under test, reachable over real HTTP at ``url``."""

    def __init__(
        self,
        backend: str,
        url: str,
        config: Config,
        store: FileStore,
        pass_time: Callable[[float], None],
    ) -> None:
        self.backend = backend
        self.url = url
        self.config = config
        self.store = store
        self.function = FilesFunction(config, store)
        self._pass_time = pass_time
        self.http = httpx.Client(timeout=30)

    def call(self, uid: str | None, op: str, **event: Any) -> Any:
        """Run the files function as ``uid`` (None: not logged in); a page comes back as a dict."""
        who = caller(uid) if uid is not None else None
        result = asyncio.run(self.function(who, {"op": op, **event}, base_url=self.url))
        if hasattr(result, "data") and hasattr(result, "next"):
            return {"data": result.data, "next": result.next}
        return result

    def error(self, uid: str | None, op: str, **event: Any) -> MinibaseError:
        """The error the call raises (fails the test if it succeeds)."""
        try:
            self.call(uid, op, **event)
        except MinibaseError as e:
            return e
        raise AssertionError(f"{op} {event} succeeded")

    def upload(
        self, uid: str | None, path: str, body: bytes, content_type: str = "text/plain"
    ) -> httpx.Response:
        grant = self.call(uid, "uploadUrl", path=path, contentType=content_type, size=len(body))
        return send_upload(grant, body, client=self.http)

    def download(self, uid: str | None, path: str) -> httpx.Response:
        return self.http.get(self.call(uid, "downloadUrl", path=path)["url"])

    def pass_time(self, seconds: float) -> None:
        """Move the serving side's clock (not the signer's) forward."""
        self._pass_time(seconds)

    def close(self) -> None:
        self.http.close()
        asyncio.run(self.store.close())
