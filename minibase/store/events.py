"""Where events keep their state, in the app's own database: the notification ids handled
(dedup across instances), the schedule runs claimed (each run once across instances), and
the transactional outbox of document changes.

**The outbox.** Every write of a document in a collection that has a route appends one row
to ``outbox`` *in the write's own transaction*: database triggers on ``documents`` (SQLite
and PostgreSQL) do it, so no write path can forget it and a rolled-back write leaves no
event. A row is ``(seq, at, op, collection, uid, doc_id, old, new)``: ``seq`` grows with
commit order per document (writes of one document are serialized by its row), ``old`` and
``new`` are the document before and after (null for an insert's old and a remove's new).

``outbox_routes`` says who reads it: a route ``(target, collection, ops, queued)``; a
``queued`` route (an after-write trigger) gets one ``outbox_pending`` row per matching
event, which the dispatcher claims (a lease), runs and deletes; an unqueued route (realtime
watch) only makes the events be written, and follows the outbox by ``seq``
(:meth:`EventStore.changes_after`). Events no pending row refers to are pruned once older
than the replay window. A route's collection ``*`` matches every collection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..util.record import record

__all__ = ["PRUNE_BATCH", "Change", "Delivery", "EventStore", "Route", "change_from_row", "prune_outbox"]

PRUNE_BATCH = 1000  # events one write job deletes: other writes go between two batches
PRUNE_BATCHES = 100  # batches one prune_outbox call runs at most


@record
class Route:
    target: str  # "trigger:NAME", "watch"
    collection: str  # or "*"
    ops: tuple[str, ...]
    queued: bool  # a pending row per event (delivered and retried), or only the outbox row


@record
class Change:
    """One committed document write, as the outbox holds it."""

    seq: int
    at: float  # when it was appended (epoch seconds)
    op: str  # insert | update | remove
    collection: str
    uid: str
    id: str
    old: bytes | None  # the document before (raw JSON), None for an insert
    new: bytes | None  # after, None for a remove


@record
class Delivery:
    """A claimed pending delivery of ``change`` to ``target``; ``attempts`` before this one."""

    target: str
    attempts: int
    change: Change


class EventStore(Protocol):
    async def open(self) -> None:
        """Create the tables and the outbox triggers (idempotent, safe with several instances)."""
        ...

    async def close(self) -> None: ...

    # notifications: claim an id before running its handler, so a duplicate delivered at the
    # same time waits (answered "try again") instead of running twice
    async def claim_notification(self, source: str, nid: str, now: float, lease: float) -> str:
        """``new`` (claimed: run it), ``done`` (handled before: acknowledge) or ``busy``
        (another delivery is running it now)."""
        ...

    async def finish_notification(self, source: str, nid: str, ok: bool, now: float) -> None:
        """Mark it handled (``ok``), or release the claim so a retry runs it again."""
        ...

    # schedules
    async def claim_run(self, name: str, slot: float, owner: str, now: float) -> bool:
        """Whether this instance runs ``name``'s run at ``slot`` (only the first claim wins)."""
        ...

    async def finish_run(self, name: str, slot: float, ok: bool, error: str | None, now: float) -> None: ...

    # the outbox
    async def set_routes(self, routes: Sequence[Route], prefix: str) -> None:
        """Replace the routes whose target starts with ``prefix`` by ``routes``; pending
        deliveries of targets no longer routed are dropped."""
        ...

    async def claim_deliveries(
        self, targets: Sequence[str], owner: str, now: float, lease: float, limit: int
    ) -> list[Delivery]:
        """Up to ``limit`` due deliveries, each the oldest pending one of its document and
        target (so a document's events are delivered in order), leased to ``owner``."""
        ...

    async def delivered(self, done: Sequence[tuple[str, int]]) -> None:
        """Delete these (target, seq) deliveries: they ran. Not durable on its own (a crash
        may forget it, and the event is delivered again: at least once)."""
        ...

    async def retry_later(self, target: str, seq: int, owner: str, attempts: int, next_at: float) -> None: ...

    async def prune(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` events older than ``before`` that nothing is pending on."""
        ...

    async def changes_after(self, seq: int, limit: int) -> list[Change]:
        """Committed events after ``seq``, in ``seq`` order (for readers such as watch)."""
        ...

    async def pending_count(self) -> int: ...

    # following the outbox in commit order (realtime watch)
    async def head(self) -> tuple[int, int]:
        """The position of the outbox's end now: :meth:`follow` from it returns only later
        commits."""
        ...

    async def follow(self, after: tuple[int, int], limit: int) -> tuple[list[Change], tuple[int, int]]:
        """Up to ``limit`` changes committed after position ``after``, in an order where no
        change is ever passed over by a later one (commit order on SQLite; on PostgreSQL by
        transaction, up to the oldest transaction still running), and the new position."""
        ...

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the event loop) when an event may have been appended: this
        process's writes (SQLite), any instance's commit (PostgreSQL's NOTIFY)."""
        ...

    async def wait_changes(self, timeout: float) -> None:
        """Return when an event may have been appended (by any instance where the backend
        can tell: PostgreSQL's NOTIFY), or after ``timeout``."""
        ...


def change_from_row(row: Sequence[Any]) -> Change:
    """A change from an outbox row read as (seq, at, op, collection, uid, doc_id, old, new),
    the documents as JSON text (both backends' queries select them so)."""
    old, new = row[6], row[7]
    return Change(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        old.encode() if old is not None else None,
        new.encode() if new is not None else None,
    )


def change_dict(change: Change) -> dict[str, Any]:
    """A change as a trigger's event."""
    import orjson

    return {
        "op": change.op,
        "collection": change.collection,
        "uid": change.uid,
        "id": change.id,
        "old": orjson.loads(change.old) if change.old is not None else None,
        "new": orjson.loads(change.new) if change.new is not None else None,
        "seq": change.seq,
        "at": change.at,
    }


async def prune_outbox(store: EventStore, before: float) -> int:
    """Delete the events older than ``before`` that nothing is pending on, a batch of
    :data:`PRUNE_BATCH` per write job, until none is left (or :data:`PRUNE_BATCHES`);
    how many. The callers prune every 10 s: one batch then (as it was) let the outbox grow
    without end under more than 100 writes a second, a copy of each document per write."""
    total = 0
    for _ in range(PRUNE_BATCHES):
        n = await store.prune(before, PRUNE_BATCH)
        total += n
        if n < PRUNE_BATCH:
            break
    return total
