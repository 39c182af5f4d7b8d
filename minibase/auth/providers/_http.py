"""HTTP plumbing shared by the platform login providers.

One lazily created ``httpx.AsyncClient`` per provider (created on first use so that importing
a provider, e.g. at FC cold start, costs no httpx import), one total deadline per call, and
every transport failure turned into :class:`ProviderError` *without* the URL: WeChat's
``secret`` travels in the query string, so URLs must never reach a message or a log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from minibase.errors import ProviderError

if TYPE_CHECKING:
    import httpx

__all__ = ["ProviderHttp", "parse_json_object"]

# Query parameters httpx's own request log ("HTTP Request: GET <url> ...", INFO) must not show.
_REDACTED_PARAMS = frozenset({"secret", "js_code", "access_token"})
_redaction_installed = False


class _RedactUrlQuery(logging.Filter):
    """Masks secret query parameters in the URLs httpx logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def _redact(value: object) -> object:
    import httpx

    if not isinstance(value, httpx.URL) or not value.query:
        return value
    items = value.params.multi_items()
    if not any(key in _REDACTED_PARAMS for key, _ in items):
        return value
    masked = [(key, "***" if key in _REDACTED_PARAMS else item) for key, item in items]
    return value.copy_with(params=masked)


def _install_log_redaction() -> None:
    global _redaction_installed
    if not _redaction_installed:
        logging.getLogger("httpx").addFilter(_RedactUrlQuery())
        _redaction_installed = True


def parse_json_object(content: bytes | str, label: str) -> dict[str, Any]:
    """The JSON object in ``content``, or :class:`ProviderError`."""
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise ProviderError(f"{label} answered something that is not JSON") from None
    if not isinstance(value, dict):
        raise ProviderError(f"{label} answered JSON that is not an object")
    return value


class ProviderHttp:
    """A provider's HTTP client: lazy, deadline-bound, failures as ``ProviderError``."""

    def __init__(
        self,
        label: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.label = label
        self.timeout = float(timeout)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        # No await between the check and the assignment: concurrent first calls share one client.
        if self._client is None:
            import httpx

            _install_log_redaction()
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                transport=self._transport,
                follow_redirects=False,
                headers={"User-Agent": "minibase"},
            )
        return self._client

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; any answer but HTTP 200 is a ``ProviderError``."""
        import anyio
        import httpx

        client = self._get_client()
        try:
            # httpx's timeout is per phase; the platform gets one total deadline.
            with anyio.fail_after(self.timeout):
                response = await client.request(
                    method, url, params=params, data=data, json=json_body, headers=headers
                )
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderError(f"{self.label} did not answer in time") from None
        except httpx.HTTPError as exc:
            # `from None`: httpx exceptions carry the request, whose URL may hold a secret.
            raise ProviderError(f"{self.label} is unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise ProviderError(f"{self.label} answered HTTP {response.status_code}")
        return response

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
