"""The filter AST: what ``where`` clauses and permission rules both compile to.

One tree, one SQL compiler per dialect (``data/sql.py``), so a rule is enforced by the same
code path as the query it restricts: a list under a rule stays one indexed query.

Semantics (documented in the README, checked against a plain-Python reference evaluator):

- A path is a tuple of field names (``("a", "b")`` for ``a.b``); ``("id",)`` and ``("uid",)``
  are the document's key columns.
- Values are JSON scalars: ``None``, ``bool``, ``int``/``float`` (finite), ``str``.
- Comparisons are type-aware: ``Cmp(path, "gt", 3)`` matches only documents whose field
  is a number greater than 3; booleans are not numbers; a missing field is not null for
  :class:`Exists` but sorts and compares like null otherwise.
- ``Cmp(path, "ne", v)`` is ``Not(Cmp(path, "eq", v))``: it matches documents where the field
  is missing or of another type.
- The total order used by ``orderBy`` and cursors ranks types first:
  missing/null (0) < boolean (1) < number (2) < string (3) < array (4) < object (5);
  within a rank, false < true, numbers by value, strings by Unicode code point; arrays and
  objects are equal to each other (ties fall back to ``uid``, then ``id``).
"""

from __future__ import annotations

from typing import Literal, TypeAlias, Union

from ..util.record import record

Scalar: TypeAlias = bool | int | float | str | None
Path: TypeAlias = tuple[str, ...]
CmpOp: TypeAlias = Literal["eq", "ne", "gt", "gte", "lt", "lte"]

__all__ = [
    "And",
    "Cmp",
    "CmpOp",
    "Const",
    "Contains",
    "Exists",
    "FALSE",
    "Filter",
    "In",
    "Not",
    "Or",
    "OrderKey",
    "Path",
    "Prefix",
    "Scalar",
    "Search",
    "TRUE",
    "ascii_lower",
    "bind_owner",
    "conj",
    "disj",
]


@record(compiled=True)
class Cmp:
    """``path op value``: one comparison on a document field."""

    path: Path
    op: CmpOp
    value: Scalar


@record(compiled=True)
class In:
    """The field equals one of ``values`` (type-aware, like ``eq``)."""

    path: Path
    values: tuple[Scalar, ...]


@record(compiled=True)
class Exists:
    """The field is present (``present=True``; null counts as present) or absent."""

    path: Path
    present: bool = True


@record(compiled=True)
class Prefix:
    """The field is a string starting with ``prefix``."""

    path: Path
    prefix: str


@record(compiled=True)
class Search:
    """The field is a string containing ``text``, ASCII letters compared case-insensitively
    (``A`` = ``a``; every other character exactly). Served by the collection's declared
    search index (docs/data.md#text-search): only collections that declare the field."""

    path: Path
    text: str


@record(compiled=True)
class Contains:
    """The field is an array with an element equal (type-aware) to ``value``."""

    path: Path
    value: Scalar


@record(compiled=True)
class And:
    """All of ``parts``."""

    items: tuple[Filter, ...]


@record(compiled=True)
class Or:
    """Any of ``parts``."""

    items: tuple[Filter, ...]


@record(compiled=True)
class Not:
    """The negation of ``part``."""

    item: Filter


@record(compiled=True)
class Const:
    """A constant truth value (TRUE and FALSE)."""

    value: bool


TRUE = Const(True)
FALSE = Const(False)

Filter: TypeAlias = Union[Cmp, In, Exists, Prefix, Search, Contains, And, Or, Not, Const]  # noqa: UP007


@record(compiled=True)
class OrderKey:
    """One sort key: a field path and a direction."""

    path: Path
    descending: bool = False


def ascii_lower(text: str) -> str:
    """``text`` with A-Z lowered and nothing else changed (what ``Search`` ignores)."""
    return text.translate(_ASCII_LOWER) if not text.islower() else text


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def conj(*items: Filter) -> Filter:
    """AND with constant folding (``TRUE`` parts drop out, a ``FALSE`` wins)."""
    out: list[Filter] = []
    for f in items:
        if f == TRUE:
            continue
        if f == FALSE:
            return FALSE
        out.extend(f.items if isinstance(f, And) else (f,))
    if not out:
        return TRUE
    return out[0] if len(out) == 1 else And(tuple(out))


def disj(*items: Filter) -> Filter:
    """OR with constant folding (``FALSE`` parts drop out, a ``TRUE`` wins)."""
    out: list[Filter] = []
    for f in items:
        if f == FALSE:
            continue
        if f == TRUE:
            return TRUE
        out.extend(f.items if isinstance(f, Or) else (f,))
    if not out:
        return FALSE
    return out[0] if len(out) == 1 else Or(tuple(out))


def bind_owner(f: Filter, uid: str) -> Filter:
    """``f`` for a document known to be owned by ``uid``: owner tests become constants.

    Key-addressed operations know the owner, so the ``owner`` rule folds to TRUE (a plain
    primary-key read) or FALSE (refused before touching the database).
    """
    if isinstance(f, Cmp) and f.path == ("uid",):
        if f.op == "eq":
            return TRUE if f.value == uid else FALSE
        if f.op == "ne":
            return FALSE if f.value == uid else TRUE
        return f
    if isinstance(f, In) and f.path == ("uid",):
        return TRUE if uid in f.values else FALSE
    if isinstance(f, And):
        return conj(*(bind_owner(i, uid) for i in f.items))
    if isinstance(f, Or):
        return disj(*(bind_owner(i, uid) for i in f.items))
    if isinstance(f, Not):
        inner = bind_owner(f.item, uid)
        if inner == TRUE:
            return FALSE
        if inner == FALSE:
            return TRUE
        return Not(inner)
    return f
