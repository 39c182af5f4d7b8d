"""The records storage holds for auth and data alike (a leaf: it imports no other layer).

Auth (sessions, login) and data both use these, and the backends return them, so they
live here rather than in either layer: neither imports the other through the store.
"""

from __future__ import annotations

from ..util.record import record

__all__ = ["Identity", "Key", "SessionRecord", "UserRecord"]


@record
class Identity:
    """Who a platform says the user is (docs/architecture.md#concepts)."""

    provider: str  # "alipay", "wechat", "douyin", "dev"
    app_id: str  # the mini-program's app id on that platform ("dev" for dev)
    subject: str  # alipay open_id/user_id, wechat/douyin openid, dev name
    unionid: str | None = None


@record
class UserRecord:
    """A stored user."""

    uid: str
    created: float
    disabled: bool


@record
class SessionRecord:
    """A stored session (never the sessionId itself: only its hash)."""

    id: str  # session ref: what credentials name (never the sessionId)
    token_hash: bytes  # SHA-256 of the sessionId
    uid: str
    provider: str
    created: float
    last_used: float
    expires_max: float
    revoked: bool = False
    user_disabled: bool = False


@record(compiled=True)
class Key:
    """A document's address: ids are unique per owner within a collection (as in FC's template)."""

    collection: str
    uid: str
    id: str
