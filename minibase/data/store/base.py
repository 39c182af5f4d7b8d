"""The one small async protocol every storage backend implements.

The core talks to storage only through this; backends never see HTTP or events.
Documents travel as raw JSON bytes (the whole document, system fields included) so a
read can be passed to the client without decoding and re-encoding it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ...auth.providers.base import Identity


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str  # session ref: what credentials name (never the sessionId)
    token_hash: bytes  # SHA-256 of the sessionId
    uid: str
    provider: str
    created: float
    last_used: float
    expires_max: float
    revoked: bool = False
    user_disabled: bool = False


@dataclass(frozen=True, slots=True)
class UserRecord:
    uid: str
    created: float
    disabled: bool


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # users and identities
    async def upsert_identity(self, identity: Identity, new_uid: str, now: float) -> tuple[str, bool]:
        """The uid of ``identity``, creating the user as ``new_uid`` if unknown; (uid, is_new)."""
        ...

    async def get_user(self, uid: str) -> UserRecord | None: ...

    async def set_user_disabled(self, uid: str, disabled: bool) -> bool: ...

    # sessions
    async def create_session(self, record: SessionRecord) -> None: ...

    async def session_by_id(self, session_ref: str) -> SessionRecord | None: ...

    async def session_by_hash(self, token_hash: bytes) -> SessionRecord | None: ...

    async def touch_session(self, session_ref: str, now: float) -> None: ...

    async def revoke_session(self, session_ref: str, now: float) -> bool: ...

    async def revoke_user_sessions(self, uid: str, now: float) -> int: ...

    # documents (owner-scoped, seed ops)
    async def put_document(
        self, collection: str, uid: str, doc_id: str, obj: Mapping[str, Any], now_iso: str
    ) -> None: ...

    async def get_document(self, collection: str, uid: str, doc_id: str) -> bytes | None: ...

    async def list_documents(
        self, collection: str, uid: str, after_id: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        """Up to ``limit`` (id, document) pairs with id > after_id, in id order."""
        ...

    async def remove_document(self, collection: str, uid: str, doc_id: str) -> bool: ...
