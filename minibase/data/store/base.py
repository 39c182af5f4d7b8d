"""The one small async protocol every storage backend implements.

The core talks to storage only through this; backends never see HTTP or events.
Documents travel as raw JSON bytes (the whole document, system fields included) so a
read can be passed to the client without decoding and re-encoding it.

Permission rules arrive as :mod:`~minibase.data.filters` trees already combined with the
client's ``where``; SQL backends compile them with :mod:`minibase.data.sql`, so a rule is
part of the one indexed query. Writes are batches of :class:`WriteOp` applied atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...auth.providers.base import Identity
from ...errors import Conflict, DeadlineExceeded, MinibaseError
from ...util.record import record
from ..filters import TRUE, Filter, OrderKey

__all__ = [
    "Get",
    "Insert",
    "Key",
    "Put",
    "Remove",
    "SessionRecord",
    "Store",
    "Update",
    "UserRecord",
    "WriteOp",
    "hidden",
    "deadline_exceeded",
    "make_document",
    "version_conflict",
]


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


@record
class UserRecord:
    """A stored user."""

    uid: str
    created: float
    disabled: bool


@dataclass(frozen=True, slots=True)
class Key:
    """A document's address: ids are unique per owner within a collection (as in FC's template)."""

    collection: str
    uid: str
    id: str


# --------------------------------------------------------------------------- writes
# Rules are filters the stored document must match: for an existing document before the
# write (update, delete), for a new one after it is written (create). A document that
# exists but fails the rule is treated as absent, so a refused write never reveals it.
# ``read_rule`` decides, in the write's own transaction, whether the answer may carry the
# document: the written one for the answer, the stored one for an error (a version
# conflict, a patch that does not apply). A caller who may not read it learns no content.


@dataclass(frozen=True, slots=True)
class Get:
    """A read inside a batch: the document, or None if absent or not allowed."""

    key: Key
    rule: Filter = TRUE


@dataclass(frozen=True, slots=True)
class Put:
    """Upsert (the template's ``put``): ``update_rule`` if it exists, else ``create_rule``."""

    key: Key
    fields: Mapping[str, Any]
    create_rule: Filter = TRUE
    update_rule: Filter = TRUE


@dataclass(frozen=True, slots=True)
class Insert:
    """Create; Conflict if the key exists. Returns the new document, or None if it does
    not match ``read_rule``."""

    key: Key
    fields: Mapping[str, Any]
    rule: Filter = TRUE
    read_rule: Filter = TRUE


@dataclass(frozen=True, slots=True)
class Update:
    """Change an existing document; NotFound if absent or not allowed by ``rule``.

    ``apply`` gets the current document (system fields included) and returns the new user
    fields (it validates them; its errors abort the batch). ``if_version`` mismatch →
    Conflict. Returns the new document, or None if it does not match ``read_rule``. The
    errors of a document that does not match ``read_rule`` go through :func:`hidden`.
    """

    key: Key
    apply: Callable[[dict[str, Any]], Mapping[str, Any]]
    rule: Filter = TRUE
    if_version: int | None = None
    read_rule: Filter = TRUE


@dataclass(frozen=True, slots=True)
class Remove:
    """Delete if present and allowed; returns whether a document was deleted."""

    key: Key
    rule: Filter = TRUE


WriteOp = Get | Put | Insert | Update | Remove


def make_document(
    key: Key, fields: Mapping[str, Any], version: int, created: str, updated: str
) -> dict[str, Any]:
    """The stored document: user fields plus the system fields only the server sets."""
    return {
        "id": key.id,
        **fields,
        "uid": key.uid,
        "_version": version,
        "_created": created,
        "_updated": updated,
    }


def version_conflict(key: Key, current: int, expected: int, readable: bool) -> Conflict:
    """An ``ifVersion`` mismatch; the current version only for a caller who may read it."""
    if not readable:
        return Conflict(f"version mismatch: the document '{key.id[:64]}' is not at version {expected}")
    return Conflict(
        f"version mismatch: the document is at version {current}, not {expected}", version=current
    )


def hidden(error: MinibaseError) -> MinibaseError:
    """``error`` (a patch or schema error about a stored document) as told to a caller who
    may not read that document: its code, none of its facts (paths, types, values)."""
    return type(error)("the update does not apply to this document (you may not read it: no details)")


def deadline_exceeded(budget: float) -> DeadlineExceeded:
    """What every backend raises for a statement stopped at ``limits.query_time``."""
    return DeadlineExceeded(
        f"the database query did not finish within limits.query_time ({budget:g}s)",
        limit="limits.query_time",
        max=budget,
    )


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

    async def purge_sessions(self, idle_before: float, max_before: float, limit: int) -> int:
        """Delete at most ``limit`` sessions last used before ``idle_before`` or whose
        ``expires_max`` is before ``max_before``; returns how many went."""
        ...

    # rate limits
    async def take_tokens(
        self, key: str, rate: float, burst: float, want: int, now: float
    ) -> tuple[int, float]:
        """Spend up to ``want`` tokens of the bucket ``key`` (refilling ``rate``/s up to
        ``burst``; arithmetic in :func:`minibase.util.bucket.take`), atomically across
        instances. Returns (granted, seconds until a token is available if none was)."""
        ...

    # documents
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

    async def write(self, ops: Sequence[WriteOp], now_iso: str) -> list[Any]:
        """Apply ``ops`` atomically, in order; one result per op. On the first failing op
        nothing is written and its MinibaseError is raised with ``details["index"]``."""
        ...

    async def ensure_indexes(
        self, collection: str, indexes: Sequence[Sequence[tuple[str, ...]]], owner_first: bool
    ) -> None:
        """Create the declared indexes (idempotent; safe with several instances)."""
        ...
