"""Douyin (ByteDance) login: ``POST /api/apps/v2/jscode2session`` (docs/architecture.md#platform-protocols).

``session_key`` is read past and dropped, never returned or logged; the secret is only in
the request body and never in a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minibase.auth.providers._http import parse_json_object
from minibase.auth.providers._jscode import CodeSessionProvider, error_code
from minibase.auth.providers.base import Identity
from minibase.config.providers import DOUYIN_API, DouyinConfig
from minibase.errors import ProviderError

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_API", "DouyinProvider", "from_config"]

DEFAULT_API = DOUYIN_API

# err_no values that are about the code, not about Douyin or our configuration: the client
# must call tt.login again. 40018 "bad code" and 40019 "bad anonymous code" are documented;
# 40020 is treated the same as a precaution (a code-related refusal, never a login).
_UNAUTHENTICATED = {
    40018: "the Douyin login code is invalid, expired or used",
    40019: "the Douyin anonymous login code is invalid",
    40020: "the Douyin login code was refused",
}
_PROVIDER = {
    -1: "Douyin is busy, try again",
    40014: "Douyin says the request parameters are wrong",
    40015: "Douyin says the configured app id is invalid",
    40017: "Douyin says the configured app secret is invalid",
}


class DouyinProvider(CodeSessionProvider):
    """Exchanges a ``tt.login`` code for the user's Douyin openid (+ unionid)."""

    name = "douyin"

    label = "Douyin"
    code_field = "err_no"
    unauthenticated = _UNAUTHENTICATED
    provider_errors = _PROVIDER

    def __init__(
        self,
        app_id: str,
        secret: str,
        api: str = DEFAULT_API,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(app_id, secret, api, timeout, transport)

    async def exchange(self, code: str) -> Identity:
        code = self._check_code(code)
        response = await self._http.request(
            "POST",
            f"{self.api}/api/apps/v2/jscode2session",
            json_body={"appid": self.app_id, "secret": self._secret, "code": code},
        )
        doc = parse_json_object(response.content, "Douyin")
        if "err_no" not in doc:
            raise ProviderError("Douyin answered without err_no")
        err_no = error_code(doc["err_no"])
        if err_no != 0:
            raise self._error(err_no)
        return self._identity(doc.get("data"))


def from_config(config: DouyinConfig) -> DouyinProvider:
    """The provider of ``[auth.douyin]``."""
    return DouyinProvider(config.app_id, config.secret, config.api, config.timeout)
