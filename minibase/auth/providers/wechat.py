"""WeChat login: ``GET /sns/jscode2session`` (docs/architecture.md#platform-protocols).

The app secret travels in the query string, so no URL ever reaches a message (see
``_http``); ``session_key`` is read past and dropped, never returned or logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minibase.auth.providers._http import parse_json_object
from minibase.auth.providers._jscode import CodeSessionProvider, error_code
from minibase.auth.providers.base import Identity
from minibase.config.providers import WECHAT_API, WechatConfig

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_API", "WechatProvider", "from_config"]

DEFAULT_API = WECHAT_API

# errcodes that are about the code or the user, not about WeChat or our configuration:
# retrying with the same code cannot help, the client must log in again.
_UNAUTHENTICATED = {
    40029: "the WeChat login code is invalid or expired",
    40163: "the WeChat login code was already used",
    # WeChat blocks logins of accounts it rates high-risk; it is a refusal of this user.
    40226: "WeChat refused this user's login (high-risk account)",
}
_PROVIDER = {
    -1: "WeChat is busy, try again",
    45011: "WeChat rate limit reached, try again later",
    40013: "WeChat says the configured app id is invalid",
    40125: "WeChat says the configured app secret is invalid",
}


class WechatProvider(CodeSessionProvider):
    """Exchanges a ``wx.login`` code for the user's WeChat openid (+ unionid)."""

    name = "wechat"

    label = "WeChat"
    code_field = "errcode"
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
            "GET",
            f"{self.api}/sns/jscode2session",
            params={
                "appid": self.app_id,
                "secret": self._secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        doc = parse_json_object(response.content, "WeChat")
        if "errcode" in doc:  # HTTP 200 with an errcode is WeChat's way of saying no
            errcode = error_code(doc["errcode"])
            if errcode != 0:
                raise self._error(errcode)
        return self._identity(doc)


def from_config(config: WechatConfig) -> WechatProvider:
    """The provider of ``[auth.wechat]``."""
    return WechatProvider(config.app_id, config.secret, config.api, config.timeout)
