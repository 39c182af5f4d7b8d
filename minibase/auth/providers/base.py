"""What every login provider is: a code in, a platform identity out."""

from __future__ import annotations

from typing import Protocol

from ...util.record import record


@record
class Identity:
    """Who a platform says the user is (docs/architecture.md#concepts)."""

    provider: str  # "alipay", "wechat", "douyin", "dev"
    app_id: str  # the mini-program's app id on that platform ("dev" for dev)
    subject: str  # alipay open_id/user_id, wechat/douyin openid, dev name
    unionid: str | None = None


class Provider(Protocol):
    """Exchanges a host-app ``authCode`` for an :class:`Identity`.

    Raises ``Unauthenticated`` when the platform says the code is invalid or used,
    ``ProviderError`` when the platform fails, is unreachable, too slow, or answers
    something that cannot be trusted (e.g. a bad response signature).
    """

    name: str

    async def exchange(self, code: str) -> Identity: ...

    async def aclose(self) -> None: ...
