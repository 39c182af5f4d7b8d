"""The write operations on documents and the outcomes every backend shares.

A batch is a sequence of :data:`WriteOp` applied atomically; the functions below build
what every backend answers (the stored document, a version conflict, an error about a
document the caller may not read, a statement past its time budget), so the answers and
messages are the same on SQLite, PostgreSQL and TableStore.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..data.filters import TRUE, Filter
from ..errors import Conflict, DeadlineExceeded, MinibaseError
from .records import Key

__all__ = [
    "Get",
    "Insert",
    "Put",
    "Remove",
    "Update",
    "WriteOp",
    "deadline_exceeded",
    "hidden",
    "make_document",
    "version_conflict",
]


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
