"""What WeChat's and Douyin's ``jscode2session`` logins share: configuration checks, the
platform's numeric error codes and how they map to ours, and the identity they answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from minibase.auth.providers._http import ProviderHttp
from minibase.auth.providers.base import Identity
from minibase.errors import MinibaseError, ProviderError, Unauthenticated

if TYPE_CHECKING:
    import httpx


def error_code(value: object) -> int | None:
    """A platform error number, which may arrive as a string; None if it is neither."""
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


class CodeSessionProvider:
    """Base of the providers that trade a host-app login code for an openid."""

    name: str
    label: ClassVar[str]  # "WeChat", "Douyin": for messages
    code_field: ClassVar[str]  # "errcode", "err_no": for messages
    # Codes about the login code or the user (log in again), and about the platform or
    # our configuration (retry later, or fix the config).
    unauthenticated: ClassVar[Mapping[int, str]]
    provider_errors: ClassVar[Mapping[int, str]]

    def __init__(
        self,
        app_id: str,
        secret: str,
        api: str,
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
        self._http = ProviderHttp(self.label, timeout, transport)

    def __repr__(self) -> str:  # never the secret
        return f"{type(self).__name__}(app_id={self.app_id!r}, api={self.api!r})"

    def _check_code(self, code: str) -> str:
        if not isinstance(code, str) or not code.strip():
            raise Unauthenticated(f"a {self.label} login code is required")
        return code.strip()

    def _error(self, code: int | None) -> MinibaseError:
        if code is not None and code in self.unauthenticated:
            return Unauthenticated(f"{self.unauthenticated[code]} ({self.code_field} {code})")
        if code is not None and code in self.provider_errors:
            return ProviderError(f"{self.provider_errors[code]} ({self.code_field} {code})")
        return ProviderError(f"{self.label} refused the login request ({self.code_field} {code})")

    def _identity(self, data: Any) -> Identity:
        openid = data.get("openid") if isinstance(data, dict) else None
        if not isinstance(openid, str) or not openid.strip():
            raise ProviderError(f"{self.label} answered without an openid")
        unionid = data.get("unionid")
        return Identity(
            provider=self.name,
            app_id=self.app_id,
            subject=openid.strip(),
            unionid=unionid.strip() if isinstance(unionid, str) and unionid.strip() else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
