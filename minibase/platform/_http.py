"""What the platform clients share: a lazily built HTTP client whose failures are
``Unavailable`` (the platform cannot be reached or answered no JSON: try again later),
and a bridge that lets sync developer functions call the async clients."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ..auth.providers._http import ProviderHttp, parse_json_object
from ..errors import ProviderError, Unavailable

if TYPE_CHECKING:
    import httpx

__all__ = ["PlatformHttp", "bridge"]

T = TypeVar("T")


class PlatformHttp:
    def __init__(self, label: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.label = label
        self._http = ProviderHttp(label, timeout, transport)

    async def json(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], bytes]:
        """The answer's JSON object and its bytes; an outage is ``Unavailable``."""
        try:
            response = await self._http.request(
                method, url, params=params, data=data, json_body=json_body, headers=headers
            )
            return parse_json_object(response.content, self.label), response.content
        except ProviderError as e:
            raise Unavailable(e.message, retry_after=5) from None

    async def aclose(self) -> None:
        await self._http.aclose()


def bridge(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> Any:
    """``coro`` to await on the loop, or its result from a sync function's worker thread."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return coro
    return asyncio.run_coroutine_threadsafe(coro, loop).result()
