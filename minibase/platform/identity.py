"""``ctx.identity`` and ``ctx.user``: who the caller is on their platform, read from the
identity their login stored (never from the client)."""

from __future__ import annotations

from ..config import Config
from ..util.record import record

__all__ = ["PlatformIdentity", "UserInfo", "app_id_of"]


@record
class PlatformIdentity:
    """The caller's identity on the platform they logged in with."""

    provider: str  # "alipay", "wechat", "douyin", "dev"
    app_id: str  # this server's app on that platform ("dev" for dev)
    openid: str  # Alipay's open_id/user_id, WeChat's and Douyin's openid, the dev name
    unionid: str | None = None


@record
class UserInfo:
    """``ctx.user``: the caller's minibase user as functions see it."""

    uid: str
    phone: str | None = None


def app_id_of(config: Config, provider: str) -> str | None:
    """This server's app id on ``provider`` (None: not configured)."""
    if provider == "dev":
        return "dev"
    section = getattr(config.auth, provider, None)
    app_id = getattr(section, "app_id", None)
    return app_id if isinstance(app_id, str) else None
