"""The write operations on documents and the outcomes every backend shares.

A batch is a sequence of :data:`WriteOp` applied atomically; the functions below build
what every backend answers (the stored document, a version conflict, an error about a
document the caller may not read, a statement past its time budget), so the answers and
messages are the same on SQLite, PostgreSQL and TableStore.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

from ..data.filters import TRUE, Filter
from ..errors import Conflict, DeadlineExceeded, MinibaseError, NotFound, PermissionDenied
from ..util.record import record
from .records import Key

__all__ = [
    "Get",
    "Insert",
    "Put",
    "Remove",
    "Update",
    "Delete",
    "Load",
    "Request",
    "Save",
    "Saved",
    "Steps",
    "Stored",
    "WriteOp",
    "deadline_exceeded",
    "hidden",
    "make_document",
    "numbered",
    "run_async",
    "run_sync",
    "steps",
    "version_conflict",
]


# --------------------------------------------------------------------------- writes
# Rules are filters the stored document must match: for an existing document before the
# write (update, delete), for a new one after it is written (create). A document that
# exists but fails the rule is treated as absent, so a refused write never reveals it.
# ``read_rule`` decides, in the write's own transaction, whether the answer may carry the
# document: the written one for the answer, the stored one for an error (a version
# conflict, a patch that does not apply). A caller who may not read it learns no content.


@record(compiled=True)
class Get:
    """A read inside a batch: the document, or None if absent or not allowed."""

    key: Key
    rule: Filter = TRUE


@record(compiled=True)
class Put:
    """Upsert (the template's ``put``): ``update_rule`` if it exists, else ``create_rule``."""

    key: Key
    fields: Mapping[str, Any]
    create_rule: Filter = TRUE
    update_rule: Filter = TRUE


@record(compiled=True)
class Insert:
    """Create; Conflict if the key exists. Returns the new document, or None if it does
    not match ``read_rule``."""

    key: Key
    fields: Mapping[str, Any]
    rule: Filter = TRUE
    read_rule: Filter = TRUE


@record(compiled=True)
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


@record(compiled=True)
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


# ------------------------------------------------------------------ the semantics
# Every backend applies a write op by running :func:`steps` and answering its requests
# (:class:`Load`, :class:`Save`, :class:`Delete`) on its own transaction: SQLite on the
# writer's connection, PostgreSQL on the batch's transaction, TableStore on its read
# state and its (conditional or transactional) writes. What an op answers, when it fails
# and with which message is decided here once; how to read and write a row is the
# backend's. A backend may fuse a request into one statement (PostgreSQL tests a rule in
# the statement that reads or writes the row), but answers exactly what it asks.


@record(compiled=True)
class Stored:
    """A stored document as read in the write's transaction. ``allowed``: it matches the
    rule of the :class:`Load`. The rest is computed on demand (decoding a large document
    or testing a rule over it costs): ``doc()`` the document (not to be changed),
    ``body()`` its JSON, ``readable()`` whether it matches the load's ``read_rule`` (asked
    before anything is saved at its key)."""

    version: int
    created: str
    allowed: bool
    doc: Callable[[], dict[str, Any]]
    body: Callable[[], bytes]
    readable: Callable[[], bool]


@record(compiled=True)
class Saved:
    """A document as written: its JSON, and whether it matches the :class:`Save`'s
    ``rule`` (``allowed``) and ``read_rule`` (``readable``)."""

    body: bytes
    allowed: bool
    readable: bool


@record(compiled=True)
class Load:
    """Read ``key`` (locking it for the rest of the transaction): :class:`Stored`, or None
    if absent. ``content``: whether ``doc``/``body`` will be asked for."""

    key: Key
    rule: Filter = TRUE
    read_rule: Filter = TRUE
    content: bool = True
    lock: bool = True  # False for a plain read (a batch's get)


@record(compiled=True)
class Save:
    """Write ``doc`` at ``key``: a new document if ``expect`` is None (answer None, and
    write nothing, if the key exists), else over the stored one at version ``expect``.
    Answer :class:`Saved`. A backend that cannot undo a write (TableStore outside a
    batch) writes nothing when the document does not match ``rule``: the op then fails."""

    key: Key
    doc: dict[str, Any]
    expect: int | None
    rule: Filter = TRUE
    read_rule: Filter = TRUE


@record(compiled=True)
class Delete:
    """Delete ``key`` if it exists and matches ``rule``: whether it was deleted."""

    key: Key
    rule: Filter = TRUE


Request = Load | Save | Delete
Steps = Generator[Request, Any, Any]

PUT_ATTEMPTS = 5  # a put racing creations and deletions of its key (PostgreSQL)


def steps(op: WriteOp, now_iso: str) -> Steps:
    """The one definition of what ``op`` does: a generator of the backend requests it
    needs, returning the op's result (see each op's class) or raising its error."""
    key = op.key
    if isinstance(op, Get):
        stored = yield Load(key, op.rule, lock=False)
        return stored.body() if stored is not None and stored.allowed else None
    if isinstance(op, Remove):
        deleted: bool = yield Delete(key, op.rule)
        return deleted
    if isinstance(op, Insert):
        saved = yield Save(
            key, make_document(key, op.fields, 1, now_iso, now_iso), None, op.rule, op.read_rule
        )
        if saved is None:
            raise Conflict(f"a document '{key.id[:64]}' already exists")
        if not saved.allowed:
            raise PermissionDenied("the create rule does not allow this document")
        return saved.body if saved.readable else None
    if isinstance(op, Update):
        return (yield from _update(op, now_iso))
    if isinstance(op, Put):
        return (yield from _put(op, now_iso))
    raise TypeError(f"unknown write op {op!r}")  # pragma: no cover


def _update(op: Update, now_iso: str) -> Steps:
    key = op.key
    stored = yield Load(key, op.rule, op.read_rule)
    if stored is None or not stored.allowed:
        raise NotFound(f"no document '{key.id[:64]}' you may update")
    if op.if_version is not None and op.if_version != stored.version:
        raise version_conflict(key, stored.version, op.if_version, stored.readable())
    try:
        fields = op.apply(stored.doc())
    except MinibaseError as e:
        if stored.readable():
            raise
        raise hidden(e) from None
    doc = make_document(key, fields, stored.version + 1, stored.created, now_iso)
    saved = yield Save(key, doc, stored.version, TRUE, op.read_rule)
    return saved.body if saved.readable else None


def _put(op: Put, now_iso: str) -> Steps:
    key = op.key
    for _ in range(PUT_ATTEMPTS):
        stored = yield Load(key, op.update_rule, content=False)
        if stored is not None:
            if not stored.allowed:
                raise PermissionDenied("the update rule does not allow changing this document")
            doc = make_document(key, op.fields, stored.version + 1, stored.created, now_iso)
            yield Save(key, doc, stored.version)
            return None
        saved = yield Save(key, make_document(key, op.fields, 1, now_iso, now_iso), None, op.create_rule)
        if saved is not None:
            if not saved.allowed:
                raise PermissionDenied("the create rule does not allow this document")
            return None
        # Created concurrently between the load and the save: now it exists, update it.
    raise Conflict("the document kept changing concurrently: try again")


def numbered(error: MinibaseError, index: int, size: int) -> MinibaseError:
    """``error`` of the op at ``index`` of a batch of ``size``: a batch names its op."""
    if size > 1:
        error.details.setdefault("index", index)
    return error


def run_sync(gen: Steps, answer: Callable[[Request], Any]) -> Any:
    """Drive ``gen`` with a synchronous backend's ``answer`` (SQLite's writer thread)."""
    try:
        request = next(gen)
        while True:
            request = gen.send(answer(request))
    except StopIteration as done:
        return done.value


async def run_async(gen: Steps, answer: Callable[[Request], Awaitable[Any]]) -> Any:
    """Drive ``gen`` with an asynchronous backend's ``answer`` (PostgreSQL, TableStore)."""
    try:
        request = next(gen)
        while True:
            request = gen.send(await answer(request))
    except StopIteration as done:
        return done.value
