"""The ``update`` operators: set, unset, inc, push, pull over dotted paths.

Parsed and checked once per request (:func:`parse_patch`), then applied to the stored
document inside the write transaction (:meth:`Patch.apply`), so concurrent updates of
different fields never lose each other's changes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument
from ..util.names import DOCUMENT_SYSTEM_FIELDS, is_segment
from .validate import json_value

__all__ = ["Patch", "SYSTEM_FIELDS", "parse_patch"]

SYSTEM_FIELDS = DOCUMENT_SYSTEM_FIELDS
_OPS = ("set", "unset", "inc", "push", "pull")
MAX_PATHS = 100
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # what SQLite binds; orjson stops at 2**64 - 1


@dataclass(frozen=True, slots=True)
class _Op:
    """One update operator (set, unset, inc, push, pull) on one path."""

    kind: str
    path: tuple[str, ...]
    value: Any = None


def _path(text: object, op: str) -> tuple[str, ...]:
    if not isinstance(text, str) or not text:
        raise InvalidArgument(f"{op}: field paths must be non-empty strings")
    parts = tuple(text.split("."))
    if len(parts) > 8 or not all(is_segment(p) for p in parts):
        raise InvalidArgument(f"{op}: {text[:80]!r} is not a field path (a.b.c of [A-Za-z0-9_], ≤ 8 levels)")
    if parts[0] in SYSTEM_FIELDS:
        raise InvalidArgument(f"{op}: {parts[0]!r} is set by the server")
    return parts


def parse_patch(event: Mapping[str, Any]) -> Patch:
    ops: list[_Op] = []
    for kind in _OPS:
        spec = event.get(kind)
        if spec is None:
            continue
        if kind == "unset" and isinstance(spec, list):
            if not all(isinstance(k, str) for k in spec):  # before hashing: [{}] is unhashable
                raise InvalidArgument("unset: field paths must be non-empty strings")
            spec = dict.fromkeys(spec, True)
        if not isinstance(spec, dict):
            raise InvalidArgument(
                f"{kind} must be an object of field paths" + (" (or a list)" if kind == "unset" else "")
            )
        for key, value in spec.items():
            path = _path(key, kind)
            if kind == "inc" and (
                isinstance(value, bool) or not isinstance(value, int | float) or not _storable(value)
            ):
                raise InvalidArgument(f"inc: {key!r} needs a finite number (integers within 64 bits)")
            if kind in ("set", "push"):  # stored: the document's JSON domain
                json_value(value, f"{kind}.{key}")
                if type(value) is float and value == 0.0:
                    value = 0.0  # -0.0, as json_value does inside containers
            if kind == "push" and isinstance(value, dict) and "$each" in value:
                each = value["$each"]
                if not isinstance(each, list) or len(value) != 1:
                    raise InvalidArgument(f"push: {key!r}: $each needs a list")
                value = _Each(each)
            ops.append(_Op(kind, path, value))
    if not ops:
        raise InvalidArgument("update needs at least one of: set, unset, inc, push, pull")
    if len(ops) > MAX_PATHS:
        raise InvalidArgument(f"update touches more than {MAX_PATHS} fields")
    paths = sorted(op.path for op in ops)
    for a, b in itertools.pairwise(paths):
        if b[: len(a)] == a:
            raise InvalidArgument(f"update touches {'.'.join(a)!r} twice (or a field and its parent)")
    return Patch(tuple(ops))


@dataclass(frozen=True, slots=True)
class _Each:
    """``{$each: [...]}``: push or pull several values at once."""

    items: list[Any]


@dataclass(frozen=True, slots=True)
class Patch:
    """A parsed ``update`` event: its operators, checked and ready to apply."""

    ops: tuple[_Op, ...]

    def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The new user fields (system fields dropped) after applying the operators.

        ``doc`` is never mutated, and nothing is deep-copied: only the objects along the
        changed paths are copied (once each), the rest is shared with ``doc``. A document
        of a megabyte costs what its changed paths cost, not a copy of the megabyte
        (the result is only serialized, never mutated, by the stores)."""
        out = {k: v for k, v in doc.items() if k not in SYSTEM_FIELDS}
        owned = {id(out)}  # objects this call made, which it may change in place
        for op in self.ops:
            parent = _parent(out, op.path, create=op.kind != "unset", owned=owned)
            if parent is None:
                continue  # unset of a path whose parent is missing: nothing to do
            leaf = op.path[-1]
            if op.kind == "set":
                parent[leaf] = op.value
            elif op.kind == "unset":
                parent.pop(leaf, None)
            elif op.kind == "inc":
                cur = parent.get(leaf, 0)
                if isinstance(cur, bool) or not isinstance(cur, int | float):
                    raise InvalidArgument(f"inc: {'.'.join(op.path)!r} is not a number")
                total = cur + op.value
                if not _storable(total):  # an int past 64 bits does not serialize; inf would become null
                    raise InvalidArgument(f"inc: {'.'.join(op.path)!r} would overflow")
                parent[leaf] = total
            else:
                cur = parent.get(leaf, [])
                if not isinstance(cur, list):
                    raise InvalidArgument(f"{op.kind}: {'.'.join(op.path)!r} is not an array")
                if op.kind == "push":
                    items = op.value.items if isinstance(op.value, _Each) else [op.value]
                    parent[leaf] = cur + items  # a new list: ``cur`` may be shared
                else:
                    parent[leaf] = [x for x in cur if not _same(x, op.value)]
        return out


def _storable(n: int | float) -> bool:
    """A number JSON storage and queries handle: finite, and a 64-bit int if an int."""
    if isinstance(n, int):
        return _INT_MIN <= n <= _INT_MAX
    return math.isfinite(n)


def _same(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1, and 1 == 1.0 (as JSON numbers are).
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _parent(
    doc: dict[str, Any], path: tuple[str, ...], *, create: bool, owned: set[int]
) -> dict[str, Any] | None:
    """The object holding ``path``'s leaf, copied (with its ancestors) unless ``owned``."""
    node = doc
    for i, seg in enumerate(path[:-1]):
        child = node.get(seg)
        if child is None:
            if not create:
                return None
            child = node[seg] = {}
            owned.add(id(child))
        elif not isinstance(child, dict):
            raise InvalidArgument(f"{'.'.join(path[: i + 1])!r} is not an object")
        elif id(child) not in owned:
            child = node[seg] = dict(child)
            owned.add(id(child))
        node = child
    return node
