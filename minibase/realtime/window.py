"""A watch's current result in query order, and the ``docChanges`` that move a client's copy.

The server holds, per watch, only each document's key, sort position and stamp
(``_created``, ``_version``), never its body: a change carries the body it sends. A client
applies each docChange in order: remove the element at ``oldIndex`` (if >= 0), then insert
``doc`` at ``newIndex`` (if >= 0) (docs/realtime.md).

Stamps make applying idempotent and order-proof: a change whose stamp is not newer than the
one held is one the result already reflects (a query that ran after it, or PostgreSQL's
changes read by transaction rather than commit order), and is skipped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..data.filters import OrderKey
from ..store.tablestore_eval import position, position_key

__all__ = ["Entry", "Key", "Stamp", "Window", "stamp_of"]

Key = tuple[str, str]  # (uid, id): documents are keyed by owner and id
Stamp = tuple[str, int]  # (_created, _version): a later write of a document has a larger one


def stamp_of(doc: dict[str, Any]) -> Stamp:
    created = doc.get("_created")
    version = doc.get("_version")
    return (created if isinstance(created, str) else "", version if isinstance(version, int) else 0)


@dataclass(slots=True)
class Entry:
    key: Key
    sort: tuple[Any, ...]
    stamp: Stamp


def _change(kind: str, e: Entry, raw: bytes | None, old: int, new: int) -> dict[str, Any]:
    return {
        "dataType": kind,
        "id": e.key[1],
        "uid": e.key[0],
        "doc": orjson.Fragment(raw) if raw is not None else None,
        "oldIndex": old,
        "newIndex": new,
    }


class Window:
    """The documents of one watch's result (at most ``limit``), sorted as the query sorts."""

    __slots__ = ("_sort", "entries", "keys", "limit", "more", "order")

    def __init__(self, order: Sequence[OrderKey], limit: int) -> None:
        self.order = tuple(order)
        self.limit = limit
        self._sort = position_key(self.order)
        self.entries: list[Entry] = []
        self.keys: dict[Key, Entry] = {}
        self.more = False  # documents match beyond the window (it is full)

    def entry(self, doc: dict[str, Any]) -> Entry:
        return Entry((doc["uid"], doc["id"]), self._sort(position(doc, self.order)), stamp_of(doc))

    def _place(self, e: Entry) -> int:
        return bisect_left(self.entries, e.sort, key=lambda x: x.sort)

    def _insert(self, e: Entry, i: int) -> None:
        self.entries.insert(i, e)
        self.keys[e.key] = e

    def _pop(self, e: Entry) -> int:
        i = self._place(e)
        del self.entries[i]
        del self.keys[e.key]
        return i

    def apply(
        self, key: Key, doc: dict[str, Any] | None, raw: bytes | None, matching: bool, gone: Stamp | None
    ) -> tuple[list[dict[str, Any]], bool]:
        """One committed change of document ``key``: ``doc``/``raw`` its new body (None when
        removed), ``matching`` whether that passes the watch's filter, ``gone`` the stamp of
        the body a remove removed. The docChanges, and whether the window must be read
        again (a document left a full window with more behind it)."""
        held = self.keys.get(key)
        if doc is not None:
            if held is not None and stamp_of(doc) <= held.stamp:
                return [], False  # the result already has this write (or a later one)
        elif held is None or (gone is not None and gone < held.stamp):
            return [], False  # not held, or the remove of an older life of the document
        if not matching or doc is None:
            if held is None:
                return [], False
            return [_change("remove", held, None, self._pop(held), -1)], self.more
        e = self.entry(doc)
        if held is not None:
            i = self._pop(held)
            j = self._place(e)
            if self.more and j == len(self.entries):
                # It now sorts after every document held, and others match beyond: which of
                # them comes next is the database's to say.
                return [_change("remove", held, None, i, -1)], True
            self._insert(e, j)
            return [_change("update", e, raw, i, j)], False
        j = self._place(e)
        if len(self.entries) < self.limit:
            self._insert(e, j)
            return [_change("add", e, raw, -1, j)], False
        self.more = True
        if j >= self.limit:
            return [], False  # beyond the window
        self._insert(e, j)
        last = self.entries.pop()
        del self.keys[last.key]
        return [_change("add", e, raw, -1, j), _change("remove", last, None, self.limit, -1)], False

    def reset(
        self, rows: Sequence[tuple[dict[str, Any], bytes]], more: bool, init: bool
    ) -> list[dict[str, Any]]:
        """Replace the window by the query's ``rows`` (in order); the docChanges from the
        window held (or, with ``init``, from nothing) to them."""
        new = [self.entry(doc) for doc, _ in rows]
        raws = {e.key: raw for e, (_, raw) in zip(new, rows, strict=True)}
        if init:
            out = [_change("init", e, raws[e.key], -1, i) for i, e in enumerate(new)]
        else:
            out = diff(self.entries, new, raws)
        self.entries = new
        self.keys = {e.key: e for e in new}
        self.more = more
        return out


def diff(old: Sequence[Entry], new: Sequence[Entry], raws: dict[Key, bytes]) -> list[dict[str, Any]]:
    """The docChanges that turn a client's list ``old`` into ``new``: removes first, then
    each position of ``new`` in turn (an add, or an update of a changed or moved document)."""
    out: list[dict[str, Any]] = []
    wanted = {e.key for e in new}
    work: list[Entry] = []
    for e in old:
        if e.key in wanted:
            work.append(e)
        else:
            out.append(_change("remove", e, None, len(work), -1))
    held = {e.key for e in work}
    for j, e in enumerate(new):
        if j < len(work) and work[j].key == e.key:
            if work[j].stamp != e.stamp:
                out.append(_change("update", e, raws[e.key], j, j))
            work[j] = e
        elif e.key in held:
            k = next(i for i in range(j + 1, len(work)) if work[i].key == e.key)
            del work[k]
            work.insert(j, e)
            out.append(_change("update", e, raws[e.key], k, j))
        else:
            work.insert(j, e)
            held.add(e.key)
            out.append(_change("add", e, raws[e.key], -1, j))
    return out
