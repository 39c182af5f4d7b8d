"""Douyin (ByteDance) login: ``POST /api/apps/v2/jscode2session`` (DESIGN §2a).

``session_key`` is read past and dropped, never returned or logged; the secret is only in
the request body and never in a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minibase.auth.providers._http import ProviderHttp, parse_json_object
from minibase.auth.providers.base import Identity
from minibase.errors import MinibaseError, ProviderError, Unauthenticated

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_API", "DouyinProvider"]

DEFAULT_API = "https://developer.toutiao.com"

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


def _err_no(value: object) -> int | None:
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


def _douyin_error(code: int | None) -> MinibaseError:
    if code in _UNAUTHENTICATED:
        return Unauthenticated(f"{_UNAUTHENTICATED[code]} (err_no {code})")
    if code in _PROVIDER:
        return ProviderError(f"{_PROVIDER[code]} (err_no {code})")
    return ProviderError(f"Douyin refused the login request (err_no {code})")


class DouyinProvider:
    """Exchanges a ``tt.login`` code for the user's Douyin openid (+ unionid)."""

    name = "douyin"

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
        self._http = ProviderHttp("Douyin", timeout, transport)

    def __repr__(self) -> str:
        return f"DouyinProvider(app_id={self.app_id!r}, api={self.api!r})"

    async def exchange(self, code: str) -> Identity:
        if not isinstance(code, str) or not code.strip():
            raise Unauthenticated("a Douyin login code is required")
        response = await self._http.request(
            "POST",
            f"{self.api}/api/apps/v2/jscode2session",
            json_body={"appid": self.app_id, "secret": self._secret, "code": code.strip()},
        )
        doc = parse_json_object(response.content, "Douyin")
        if "err_no" not in doc:
            raise ProviderError("Douyin answered without err_no")
        err_no = _err_no(doc["err_no"])
        if err_no != 0:
            raise _douyin_error(err_no)
        data = doc.get("data")
        openid = data.get("openid") if isinstance(data, dict) else None
        if not isinstance(openid, str) or not openid.strip():
            raise ProviderError("Douyin answered without an openid")
        unionid = data.get("unionid") if isinstance(data, dict) else None
        return Identity(
            provider=self.name,
            app_id=self.app_id,
            subject=openid.strip(),
            unionid=unionid.strip() if isinstance(unionid, str) and unionid.strip() else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
