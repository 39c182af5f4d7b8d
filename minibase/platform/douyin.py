"""``ctx.platform.douyin``: Douyin's mini-app server APIs with the app's shared access
token (docs/platform.md#douyin).

The token comes from ``POST /api/apps/v2/token`` (getAccessToken, ``client_credential``)
and is shared by every instance through the database (:mod:`.tokens`): Douyin shortens the
previous token to five minutes whenever a new one is fetched, so instances that each
fetched their own would keep knocking each other's out. Calls carry it in the ``X-Token``
and ``access-token`` headers; an answer of code 401 (a bad token) replaces it once and
retries the call once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..auth.providers._jscode import error_code
from ..config.providers import DouyinConfig
from ..errors import InvalidArgument, ProviderError, Unavailable
from ..store.platform import PlatformStore
from ._http import PlatformHttp, bridge
from .tokens import TokenCache

if TYPE_CHECKING:
    import httpx

__all__ = ["DouyinClient"]

_TOKEN_REFUSED = 401


def _status(doc: Mapping[str, Any]) -> int | None:
    """Douyin's answers carry ``err_no`` (newer APIs) or ``code`` (antidirt); 0 is success."""
    for key in ("err_no", "code"):
        if key in doc:
            return error_code(doc[key])
    return 0


class DouyinClient:
    name = "douyin"

    def __init__(
        self,
        config: DouyinConfig,
        store: PlatformStore | None,
        clock: Callable[[], float],
        loop: asyncio.AbstractEventLoop | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app_id = config.app_id
        self._secret = config.secret
        self.api = config.api.rstrip("/")
        self._http = PlatformHttp("Douyin", config.timeout, transport)
        self.tokens = TokenCache(store, f"douyin:{self.app_id}", self._fetch_token, clock)
        self.loop = loop

    def __repr__(self) -> str:
        return f"DouyinClient(app_id={self.app_id!r})"

    def _run(self, coro: Any) -> Any:
        return coro if self.loop is None else bridge(self.loop, coro)

    async def _fetch_token(self, force: bool) -> tuple[str, float]:
        body = {"appid": self.app_id, "secret": self._secret, "grant_type": "client_credential"}
        doc, _ = await self._http.json("POST", f"{self.api}/api/apps/v2/token", json_body=body)
        data = doc.get("data")
        token = data.get("access_token") if isinstance(data, dict) else None
        expires_in = data.get("expires_in") if isinstance(data, dict) else None
        if _status(doc) != 0 or not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise self._error(doc, "getAccessToken")
        return token, float(expires_in)

    def call(self, api: str, params: Mapping[str, Any] | None = None) -> Any:
        """POST ``params`` as JSON to ``api`` (a path like ``/api/v2/tags/text/antidirt``)
        with the app's token; the answer's object, or ``ProviderError`` naming its code."""
        return self._run(self._call(api, dict(params or {})))

    async def _call(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        if not api.startswith("/") or "?" in api or "//" in api:
            raise InvalidArgument("api is a path like '/api/v2/tags/text/antidirt'")
        token = await self.tokens.get()
        for attempt in (1, 2):
            headers = {"X-Token": token, "access-token": token}
            doc, _ = await self._http.json("POST", self.api + api, json_body=params, headers=headers)
            status = _status(doc)
            if status == _TOKEN_REFUSED and attempt == 1:
                token = await self.tokens.refused(token)
                continue
            if status != 0:
                raise self._error(doc, api)
            return doc
        raise self._error(doc, api)  # pragma: no cover - the loop returns or raises

    def _error(self, doc: Mapping[str, Any], what: str) -> ProviderError | Unavailable:
        status = _status(doc)
        if status == -1:
            return Unavailable(f"Douyin is busy ({what})", retry_after=5)
        return ProviderError(f"Douyin refused {what} (code {status})", code=status)

    def text_antidirt(self, content: str) -> Any:
        """The text check (``/api/v2/tags/text/antidirt``): ``{"hit": bool, "predicts": [...]}``."""
        return self._run(self._antidirt(content))

    async def _antidirt(self, content: str) -> dict[str, Any]:
        doc = await self._call("/api/v2/tags/text/antidirt", {"tasks": [{"content": content}]})
        data = doc.get("data")
        task = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None
        predicts = task.get("predicts") if task is not None else None
        if not isinstance(predicts, list) or not predicts or error_code(task.get("code", 0)) != 0:  # type: ignore[union-attr]
            raise Unavailable("Douyin's text check answered without a verdict", retry_after=5)
        hit = any(isinstance(p, dict) and p.get("hit") is True for p in predicts)
        return {"hit": hit, "predicts": predicts}

    async def check_text(self, text: str, openid: str) -> tuple[bool, str | None]:
        result = await self._antidirt(text)
        labels = [
            str(p.get("model_name")) for p in result["predicts"] if isinstance(p, dict) and p.get("hit")
        ]
        return not result["hit"], ",".join(labels) or None

    async def aclose(self) -> None:
        await self._http.aclose()
