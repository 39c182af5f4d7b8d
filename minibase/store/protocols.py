"""The narrow async protocols storage offers, one per kind of table.

Each caller asks for the one it needs: sessions (auth/sessions.py) for
:class:`SessionStore`, login (auth/login.py) for :class:`UserStore`, the rate limiter for
:class:`BucketStore`, the db function (data/api.py) for :class:`DocumentStore`. A backend
(SQLite, PostgreSQL, TableStore) implements all of them on one connection (pool), which is
:class:`Store`, the one object the core opens and closes. A new kind of table gets a
protocol of its own here (or in a module beside this one) and an implementation in each
backend: docs/architecture.md#storage.

The core talks to storage only through these; backends never see HTTP or events.
Documents travel as raw JSON bytes (the whole document, system fields included) so a
read can be passed to the client without decoding and re-encoding it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..data.filters import TRUE, Filter, OrderKey, Path
from .records import Identity, Key, SessionRecord, UserRecord
from .writes import WriteOp

if TYPE_CHECKING:  # aggregate (and its decimal arithmetic) loads on first use
    from ..data.aggregate import Group, GroupRow

__all__ = ["BucketStore", "DocumentStore", "SessionStore", "Store", "UserStore"]


class UserStore(Protocol):
    """Users and their platform identities."""

    async def upsert_identity(self, identity: Identity, new_uid: str, now: float) -> tuple[str, bool]:
        """The uid of ``identity``, creating the user as ``new_uid`` if unknown; (uid, is_new)."""
        ...

    async def get_user(self, uid: str) -> UserRecord | None: ...

    async def set_user_disabled(self, uid: str, disabled: bool) -> bool: ...


class SessionStore(Protocol):
    """Sessions (stored by the hash of their id) and whether their user is disabled."""

    async def create_session(self, record: SessionRecord) -> None: ...

    async def session_by_id(self, session_ref: str) -> SessionRecord | None: ...

    async def session_by_hash(self, token_hash: bytes) -> SessionRecord | None: ...

    async def touch_session(self, session_ref: str, now: float) -> None: ...

    async def revoke_session(self, session_ref: str, now: float) -> bool: ...

    async def revoke_user_sessions(self, uid: str, now: float) -> int: ...

    async def purge_sessions(self, idle_before: float, max_before: float, limit: int) -> int:
        """Delete at most ``limit`` sessions last used before ``idle_before`` or whose
        ``expires_max`` is before ``max_before``; returns how many went."""
        ...

    async def auth_epoch(self) -> int | None:
        """A number that changes, for every instance, whenever a session is revoked or
        deleted or a user disabled, enabled or deleted, read as cheaply as the store can:
        sessions read after it may be reused while it stays the same. None: the store
        keeps no such number (every request then reads its session)."""
        ...


class BucketStore(Protocol):
    """Rate-limit token buckets, shared by every instance."""

    async def take_tokens(
        self, key: str, rate: float, burst: float, want: int, now: float
    ) -> tuple[int, float]:
        """Spend up to ``want`` tokens of the bucket ``key`` (refilling ``rate``/s up to
        ``burst``; arithmetic in :func:`minibase.util.bucket.take`), atomically across
        instances. Returns (granted, seconds until a token is available if none was)."""
        ...


class DocumentStore(Protocol):
    """Documents. Permission rules arrive as :mod:`~minibase.data.filters` trees already
    combined with the client's ``where``; SQL backends compile them with
    :mod:`minibase.data.sql`, so a rule is part of the one indexed query. Writes are
    batches of :class:`~.writes.WriteOp` applied atomically with the semantics of
    :mod:`.writes`."""

    async def get_document(self, key: Key, rule: Filter = TRUE) -> bytes | None:
        """The document if it exists and matches ``rule``."""
        ...

    async def query(
        self,
        collection: str,
        where: Filter,
        order: Sequence[OrderKey],
        limit: int,
        after: Sequence[Any] | None,
    ) -> list[tuple[list[Any], bytes]]:
        """Up to ``limit`` matching documents in ``order`` (then uid, id), strictly after
        the position ``after``; each row is (its position, document). A position is opaque
        to callers except that it round-trips through JSON."""
        ...

    async def count(self, collection: str, where: Filter) -> int: ...

    async def aggregate(
        self, collection: str, where: Filter, group: Group, max_groups: int
    ) -> list[GroupRow]:
        """The groups of the documents matching ``where``; at most ``max_groups + 1`` of
        them (that many means: too many)."""
        ...

    async def write(self, ops: Sequence[WriteOp], now_iso: str) -> list[Any]:
        """Apply ``ops`` atomically, in order; one result per op. On the first failing op
        nothing is written and its MinibaseError is raised with ``details["index"]``."""
        ...

    async def ensure_indexes(
        self, collection: str, indexes: Sequence[Sequence[tuple[str, ...]]], owner_first: bool
    ) -> None:
        """Create the declared indexes (idempotent; safe with several instances)."""
        ...

    async def ensure_search(self, declared: Mapping[str, Sequence[Path]]) -> None:
        """Make the search indexes serve ``declared`` (collection -> fields searched with
        ``$search``), indexing stored documents; idempotent, safe with several instances."""
        ...


class Store(UserStore, SessionStore, BucketStore, DocumentStore, Protocol):
    """A whole backend: every protocol above on one database, opened and closed once."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...
