"""WeChat login: ``GET /sns/jscode2session`` (DESIGN §2a).

The app secret travels in the query string, so no URL ever reaches a message (see
``_http``); ``session_key`` is read past and dropped, never returned or logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minibase.auth.providers._http import ProviderHttp, parse_json_object
from minibase.auth.providers.base import Identity
from minibase.errors import MinibaseError, ProviderError, Unauthenticated

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_API", "WechatProvider"]

DEFAULT_API = "https://api.weixin.qq.com"

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


def _errcode(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _wechat_error(code: int | None) -> MinibaseError:
    if code in _UNAUTHENTICATED:
        return Unauthenticated(f"{_UNAUTHENTICATED[code]} (errcode {code})")
    if code in _PROVIDER:
        return ProviderError(f"{_PROVIDER[code]} (errcode {code})")
    return ProviderError(f"WeChat refused the login request (errcode {code})")


class WechatProvider:
    """Exchanges a ``wx.login`` code for the user's WeChat openid (+ unionid)."""

    name = "wechat"

    def __init__(
        self,
        app_id: str,
        secret: str,
        api: str = DEFAULT_API,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(app_id, str) or not app_id.strip():
            raise ValueError("app_id: must be a non-empty string")
        if not isinstance(secret, str) or not secret.strip():
            raise ValueError("secret: must be a non-empty string")
        self.app_id = app_id.strip()
        self._secret = secret.strip()
        self.api = api.rstrip("/")
        self._http = ProviderHttp("WeChat", timeout, transport)

    def __repr__(self) -> str:
        return f"WechatProvider(app_id={self.app_id!r}, api={self.api!r})"

    async def exchange(self, code: str) -> Identity:
        if not isinstance(code, str) or not code.strip():
            raise Unauthenticated("a WeChat login code is required")
        response = await self._http.request(
            "GET",
            f"{self.api}/sns/jscode2session",
            params={
                "appid": self.app_id,
                "secret": self._secret,
                "js_code": code.strip(),
                "grant_type": "authorization_code",
            },
        )
        doc = parse_json_object(response.content, "WeChat")
        if "errcode" in doc:
            errcode = _errcode(doc["errcode"])
            if errcode != 0:
                raise _wechat_error(errcode)
        openid = doc.get("openid")
        if not isinstance(openid, str) or not openid.strip():
            raise ProviderError("WeChat answered without an openid")
        unionid = doc.get("unionid")
        return Identity(
            provider=self.name,
            app_id=self.app_id,
            subject=openid.strip(),
            unionid=unionid.strip() if isinstance(unionid, str) and unionid.strip() else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
