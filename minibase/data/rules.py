"""Permission rules: one string per collection and operation, compiled to a filter per caller.

A rule is either a preset or an expression over the caller (``auth``) and the document
(``doc``)::

    owner            doc.uid == auth.uid (the default)
    authenticated    any signed-in caller
    public           anyone, signed in or not
    none             nobody (server code only)

    doc.uid == auth.uid || doc.shared == true
    auth.uid in doc.members
    doc.status != "draft" && auth.provider == "alipay"
    doc.kind in ["note", "todo"] && !(doc.n >= 10)

Grammar (``!`` binds tighter than ``&&``, which binds tighter than ``||``; ``!doc.a == 1``
reads as ``!(doc.a == 1)``)::

    rule       := preset | or
    or         := and ("||" and)*
    and        := unary ("&&" unary)*
    unary      := "!" unary | "(" or ")" | comparison | "true" | "false"
    comparison := operand ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                | operand "in" (doc_path | "[" [literal ("," literal)* [","]] "]")
    operand    := doc_path | "auth.uid" | "auth.provider" | literal
    doc_path   := "doc" ("." name){1,8}        name: [A-Za-z_][A-Za-z0-9_]{0,63}
    literal    := string | number | "true" | "false" | "null"

Strings use single or double quotes; inside them ``\\"``, ``\\'`` and ``\\\\`` are the only
escapes. Numbers are ``-?digits[.digits]`` (64-bit integers, finite decimals).

Refused at parse time, because no single indexed filter could express them or they are
almost certainly mistakes: comparing two document fields (``doc.a == doc.b``), ordering
comparisons (``<`` ...) with ``null`` or a boolean, ``doc.a in doc.b``, a literal on the
left of ``in [...]``, and presets used inside an expression.

Semantics of :meth:`Rule.compile` (the filter of the documents the caller may touch):

- Comparisons follow the filter semantics of :mod:`minibase.data.filters`: type-aware
  (``1 == true`` is false, ``"a" < 3`` is false), a missing field compares like ``null``
  (``doc.x == null`` → ``Cmp(path, "eq", None)``), ``!=`` is the negation of ``==``.
  Comparisons without a document field fold to ``TRUE``/``FALSE`` for the given caller.
- **Anonymous callers** (``auth`` is ``None``): ``auth.uid`` and ``auth.provider`` are
  absent, and any comparison or membership test involving an absent auth value is
  *unknown*, never true -- and so is its negation. Unknown propagates like SQL's NULL
  (``unknown || x`` is ``x`` when ``x`` is true, else unknown; ``unknown && x`` is false when
  ``x`` is false, else unknown; ``!unknown`` is unknown) and an unknown rule denies. So
  ``auth.uid == null``, ``auth.uid != "x"`` and ``!(auth.uid == "x")`` all deny an
  anonymous caller, while ``auth.uid == "x" || doc.public == true`` still grants public
  documents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, TypeAlias

from ..util.record import record
from .filters import FALSE, TRUE, And, Cmp, CmpOp, Const, Contains, Filter, In, Not, Or, Path, Scalar
from .rule_lexer import HINTS, RuleError, Tok, describe, tokenize

__all__ = ["AuthInfo", "MAX_DEPTH", "MAX_LENGTH", "PRESETS", "Rule", "RuleError", "parse_rule"]

MAX_LENGTH: Final = 2000
MAX_DEPTH: Final = 32
MAX_SEGMENTS: Final = 8
PRESETS: Final = ("owner", "authenticated", "public", "none")

_CACHE_SIZE = 1024


@record(compiled=True)
class AuthInfo:
    """The caller as rules see it."""

    uid: str
    provider: str


_CMP: dict[str, CmpOp] = {"==": "eq", "!=": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_FLIP: dict[CmpOp, CmpOp] = {"eq": "eq", "ne": "ne", "lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte"}


# --- operands and expression nodes

_AuthField: TypeAlias = Literal["uid", "provider"]


@record
class _Lit:
    """A literal in a rule expression."""

    value: Scalar
    pos: int


@record
class _Auth:
    """``auth.<name>``: a property of the caller."""

    field: _AuthField
    pos: int


@record
class _Doc:
    """``doc.<path>``: a field of the document."""

    path: Path
    pos: int


_Operand: TypeAlias = _Lit | _Auth | _Doc
_Live: TypeAlias = Callable[[str, str], Filter]
# What a node compiles to for a signed-in caller: fixed, or a function of (uid, provider).
_Bound: TypeAlias = Filter | _Live


class _Node:
    """An expression node, built once at parse time."""

    __slots__ = ("uses_auth",)
    uses_auth: bool

    def live(self) -> _Bound:
        """The filter for a signed-in caller (auth values are strings: two-valued logic)."""
        raise NotImplementedError

    def anon(self, positive: bool) -> Filter:
        """The documents where this node is definitely true (``positive``) or definitely false,
        for an anonymous caller; auth comparisons are neither (see the module docstring)."""
        if not self.uses_auth:
            f = self.live()
            assert not callable(f)
            return f if positive else _not(f)
        return self._anon_auth(positive)

    def _anon_auth(self, positive: bool) -> Filter:
        return FALSE


class _Fixed(_Node):
    """A filter that does not depend on the caller (constants, doc vs literal)."""

    __slots__ = ("filter",)

    def __init__(self, f: Filter) -> None:
        self.uses_auth = False
        self.filter = f

    def live(self) -> _Bound:
        return self.filter


class _AuthLeaf(_Node):
    """A comparison involving an auth value: unknown (never true) for anonymous callers."""

    __slots__ = ("fn",)

    def __init__(self, fn: _Live) -> None:
        self.uses_auth = True
        self.fn = fn

    def live(self) -> _Bound:
        return self.fn


class _Not(_Node):
    __slots__ = ("item",)

    def __init__(self, item: _Node) -> None:
        self.uses_auth = item.uses_auth
        self.item = item

    def live(self) -> _Bound:
        f = self.item.live()
        if callable(f):
            fn = f
            return lambda u, p: _not(fn(u, p))
        return _not(f)

    def _anon_auth(self, positive: bool) -> Filter:
        return self.item.anon(not positive)


class _Junction(_Node):
    __slots__ = ("is_and", "items")

    def __init__(self, items: list[_Node], is_and: bool) -> None:
        self.uses_auth = any(i.uses_auth for i in items)
        self.items = tuple(items)
        self.is_and = is_and

    def live(self) -> _Bound:
        join = _conj if self.is_and else _disj
        absorbing = FALSE if self.is_and else TRUE
        parts: list[_Bound] = []
        for item in self.items:
            f = item.live()
            if f is absorbing:
                return absorbing
            if f is not (TRUE if self.is_and else FALSE):
                parts.append(f)
        if not any(callable(f) for f in parts):
            return join([f for f in parts if not callable(f)])
        bound = tuple(parts)
        # Order is kept, so the filter reads like the rule.
        return lambda u, p: join([f(u, p) if callable(f) else f for f in bound])

    def _anon_auth(self, positive: bool) -> Filter:
        # De Morgan: "definitely false" of an AND is "some item definitely false".
        parts = [i.anon(positive) for i in self.items]
        return _conj(parts) if self.is_and == positive else _disj(parts)


# Local folding helpers: every constant built here is the TRUE/FALSE singleton, so identity
# tests suffice, and they avoid dataclass __eq__ on the per-request path.
def _conj(items: list[Filter]) -> Filter:
    out: list[Filter] = []
    for f in items:
        if f is FALSE:
            return FALSE
        if f is not TRUE:
            out.extend(f.items if type(f) is And else (f,))
    if not out:
        return TRUE
    return out[0] if len(out) == 1 else And(tuple(out))


def _disj(items: list[Filter]) -> Filter:
    out: list[Filter] = []
    for f in items:
        if f is TRUE:
            return TRUE
        if f is not FALSE:
            out.extend(f.items if type(f) is Or else (f,))
    if not out:
        return FALSE
    return out[0] if len(out) == 1 else Or(tuple(out))


def _not(f: Filter) -> Filter:
    if f is TRUE:
        return FALSE
    if f is FALSE:
        return TRUE
    return f.item if type(f) is Not else Not(f)


def _const(b: bool) -> Const:
    return TRUE if b else FALSE


def _kind(v: Scalar) -> int:
    if v is None:
        return 0
    if isinstance(v, bool):
        return 1
    return 2 if isinstance(v, int | float) else 3


def _compare(a: Scalar, op: CmpOp, b: Scalar) -> bool:
    """Type-aware comparison of two known values (the filter semantics)."""
    ka, kb = _kind(a), _kind(b)
    if op == "eq" or op == "ne":
        return (ka == kb and a == b) == (op == "eq")
    if ka != kb or ka < 2:
        return False  # booleans and null do not order; mixed types never match
    c = (a > b) - (a < b)  # type: ignore[operator]
    return {"lt": c < 0, "lte": c <= 0, "gt": c > 0, "gte": c >= 0}[op]


def _auth_vs_literal(field: _AuthField, op: CmpOp, lit: Scalar) -> _Live:
    """``auth.<field> <op> lit`` for a signed-in caller (auth values are strings)."""
    if not isinstance(lit, str):
        # A string never equals a non-string, and never orders against one.
        return (lambda u, p: TRUE) if op == "ne" else (lambda u, p: FALSE)
    ops: dict[CmpOp, Callable[[str, str], bool]] = {
        "eq": str.__eq__,
        "ne": str.__ne__,
        "lt": str.__lt__,
        "lte": str.__le__,
        "gt": str.__gt__,
        "gte": str.__ge__,
    }
    test = ops[op]
    if field == "uid":
        return lambda u, p: TRUE if test(u, lit) else FALSE
    return lambda u, p: TRUE if test(p, lit) else FALSE


def _pick(field: _AuthField) -> Callable[[str, str], str]:
    return (lambda u, p: u) if field == "uid" else (lambda u, p: p)


# --- parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.tok = next(self.toks)

    def peek(self) -> Tok:
        return self.tok

    def take(self) -> Tok:
        tok = self.tok
        self.tok = next(self.toks)
        return tok

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def fail(self, tok: Tok, expected: str) -> RuleError:
        return RuleError(tok.pos, f"expected {expected}, found {describe(tok, self.text)}")

    def rule(self) -> _Node:
        node = self.or_(0)
        tok = self.peek()
        if tok.kind != "end":
            raise RuleError(
                tok.pos,
                f"unexpected {describe(tok, self.text)} (expected '&&', '||' or the end of the rule)",
            )
        return node

    def or_(self, depth: int) -> _Node:
        items = [self.and_(depth)]
        while self.is_op("||"):
            self.take()
            items.append(self.and_(depth))
        return items[0] if len(items) == 1 else _Junction(items, is_and=False)

    def and_(self, depth: int) -> _Node:
        items = [self.unary(depth)]
        while self.is_op("&&"):
            self.take()
            items.append(self.unary(depth))
        return items[0] if len(items) == 1 else _Junction(items, is_and=True)

    def unary(self, depth: int) -> _Node:
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("!", "("):
            if depth >= MAX_DEPTH:
                raise RuleError(tok.pos, f"rule is nested deeper than {MAX_DEPTH} levels")
            self.take()
            if tok.value == "!":
                return _Not(self.unary(depth + 1))
            node = self.or_(depth + 1)
            if not self.is_op(")"):
                raise self.fail(self.peek(), "')'")
            self.take()
            return node
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.operand("an expression")
        tok = self.peek()
        if tok.kind == "op" and tok.value in _CMP:
            self.take()
            right = self.operand(f"a value after '{tok.value}'")
            return _comparison(left, _CMP[str(tok.value)], right, str(tok.value))
        if tok.kind == "name" and tok.segs == ("in",):
            self.take()
            return self.membership(left)
        if isinstance(left, _Lit) and isinstance(left.value, bool):
            return _Fixed(_const(left.value))
        raise self.fail(tok, "a comparison operator ('==', '!=', '<', '<=', '>', '>=' or 'in')")

    def membership(self, left: _Operand) -> _Node:
        if self.is_op("["):
            if isinstance(left, _Lit):
                raise RuleError(left.pos, "the left side of 'in [...]' must be doc.<field> or auth.*")
            values = self.list_literal()
            if isinstance(left, _Doc):
                return _Fixed(In(left.path, values) if values else FALSE)
            strs = frozenset(v for v in values if isinstance(v, str))
            get = _pick(left.field)
            return _AuthLeaf(lambda u, p: TRUE if get(u, p) in strs else FALSE)
        right = self.operand("doc.<field> or a [list] after 'in'")
        if not isinstance(right, _Doc):
            raise RuleError(right.pos, "the right side of 'in' must be doc.<field> or a [list]")
        if isinstance(left, _Doc):
            raise RuleError(
                right.pos,
                "cannot test one document field against another (a rule must compare a field "
                "with a literal or an auth value)",
            )
        path = right.path
        if isinstance(left, _Lit):
            return _Fixed(Contains(path, left.value))
        get = _pick(left.field)
        return _AuthLeaf(lambda u, p: Contains(path, get(u, p)))

    def list_literal(self) -> tuple[Scalar, ...]:
        self.take()  # "["
        values: list[Scalar] = []
        while not self.is_op("]"):
            item = self.operand("a literal or ']'")
            if not isinstance(item, _Lit):
                raise RuleError(
                    item.pos, "list items must be literals (strings, numbers, true, false or null)"
                )
            values.append(item.value)
            if self.is_op(","):
                self.take()
            elif not self.is_op("]"):
                raise self.fail(self.peek(), "',' or ']'")
        self.take()  # "]"
        return tuple(values)

    def operand(self, expected: str) -> _Operand:
        tok = self.peek()
        if tok.kind in ("str", "num"):
            self.take()
            return _Lit(tok.value, tok.pos)
        if tok.kind != "name":
            raise self.fail(tok, expected)
        self.take()
        root, segs, seg_pos = tok.segs[0], tok.segs[1:], tok.seg_pos[1:]
        if root == "doc":
            if not segs:
                raise RuleError(tok.end, "expected '.<field>' after 'doc'")
            if len(segs) > MAX_SEGMENTS:
                raise RuleError(seg_pos[MAX_SEGMENTS], f"a document path has at most {MAX_SEGMENTS} fields")
            return _Doc(segs, tok.pos)
        if root == "auth":
            if not segs:
                raise RuleError(tok.end, "expected '.uid' or '.provider' after 'auth'")
            if segs[0] not in ("uid", "provider"):
                raise RuleError(
                    seg_pos[0], f"unknown auth field '{segs[0]}' (expected auth.uid or auth.provider)"
                )
            if len(segs) > 1:
                raise RuleError(seg_pos[1] - 1, f"auth.{segs[0]} is a string and has no fields")
            return _Auth("uid" if segs[0] == "uid" else "provider", tok.pos)
        if root in ("true", "false", "null"):
            if segs:
                raise RuleError(seg_pos[0] - 1, f"unexpected '.' after '{root}'")
            return _Lit(None if root == "null" else root == "true", tok.pos)
        raise RuleError(tok.pos, _unknown_name(root, expected))


def _unknown_name(name: str, expected: str) -> str:
    if name in PRESETS:
        return f"'{name}' is a preset and must be the whole rule"
    if name == "in":
        return f"expected {expected}, found 'in'"
    if name in HINTS:
        return f"unknown name '{name}' ({HINTS[name]})"
    if name.lower() in ("doc", "auth", "true", "false", "null"):
        return f"unknown name '{name}' (did you mean '{name.lower()}'?)"
    return f"unknown name '{name}' (expected doc.<field>, auth.uid, auth.provider, true, false or null)"


def _comparison(left: _Operand, op: CmpOp, right: _Operand, sym: str) -> _Node:
    if isinstance(left, _Doc) and isinstance(right, _Doc):
        raise RuleError(
            right.pos,
            "cannot compare two document fields (a rule must compare a field with a literal "
            "or an auth value)",
        )
    if op not in ("eq", "ne"):
        for side in (left, right):
            if isinstance(side, _Lit) and (side.value is None or isinstance(side.value, bool)):
                what = "null" if side.value is None else "a boolean"
                raise RuleError(side.pos, f"cannot use '{sym}' with {what} (only '==' and '!=')")
    if isinstance(right, _Doc):  # keep the field on the left: 3 > doc.x is doc.x < 3
        left, right, op = right, left, _FLIP[op]
    if isinstance(left, _Doc):
        path = left.path
        if isinstance(right, _Lit):
            return _Fixed(Cmp(path, op, right.value))
        assert isinstance(right, _Auth)
        get = _pick(right.field)
        return _AuthLeaf(lambda u, p: Cmp(path, op, get(u, p)))
    if isinstance(right, _Auth) and isinstance(left, _Lit):
        left, right, op = right, left, _FLIP[op]
    if isinstance(left, _Auth):
        if isinstance(right, _Lit):
            return _AuthLeaf(_auth_vs_literal(left.field, op, right.value))
        assert isinstance(right, _Auth)
        ga, gb = _pick(left.field), _pick(right.field)
        return _AuthLeaf(lambda u, p: _const(_compare(ga(u, p), op, gb(u, p))))
    assert isinstance(left, _Lit) and isinstance(right, _Lit)
    return _Fixed(_const(_compare(left.value, op, right.value)))


# --- rules -------------------------------------------------------------------------------


class Rule:
    """A parsed rule; :meth:`compile` turns it into the filter for one caller.

    Immutable and cheap to compile: everything the caller does not change is folded at parse
    time, the anonymous result is precomputed, and results per caller are cached.
    """

    __slots__ = ("_anon", "_authed", "_cache", "_live", "depends_on_auth", "preset", "text")

    text: str
    preset: str | None
    depends_on_auth: bool
    _anon: Filter
    _authed: Filter | None
    _live: _Live | None
    _cache: dict[tuple[str, str], Filter]

    def __init__(self, text: str, preset: str | None, anon: Filter, authed: _Bound) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "text", text)
        # A preset name, so a store can take a shortcut (e.g. owner → WHERE uid = ?).
        setattr_(self, "preset", preset)
        setattr_(self, "_anon", anon)
        setattr_(self, "_authed", None if callable(authed) else authed)
        setattr_(self, "_live", authed if callable(authed) else None)
        setattr_(self, "_cache", {})
        setattr_(self, "depends_on_auth", callable(authed) or authed != anon)

    def compile(self, auth: AuthInfo | None) -> Filter:
        """The filter of the documents ``auth`` may touch (``None``: an anonymous caller)."""
        if auth is None:
            return self._anon
        live = self._live
        if live is None:
            assert self._authed is not None
            return self._authed
        key = (auth.uid, auth.provider)
        cache = self._cache
        f = cache.get(key)
        if f is None:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()  # cheaper than LRU bookkeeping; refills from hot callers
            f = cache[key] = live(auth.uid, auth.provider)
        return f

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Rule is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Rule is immutable")

    def __reduce__(self) -> tuple[Callable[[str], Rule], tuple[str]]:
        # A rule is its text: copies and pickles parse it again (the compiled closures and
        # the per-caller cache are not data).
        return (parse_rule, (self.text,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Rule", self.text))

    def __repr__(self) -> str:
        return f"Rule({self.text!r})"


_UID: Path = ("uid",)


def _preset(name: str, text: str) -> Rule:
    if name == "public":
        return Rule(text, name, TRUE, TRUE)
    if name == "none":
        return Rule(text, name, FALSE, FALSE)
    if name == "authenticated":
        return Rule(text, name, FALSE, TRUE)
    return Rule(text, name, FALSE, lambda u, p: Cmp(_UID, "eq", u))


_PRESET_RULES = {name: _preset(name, name) for name in PRESETS}


def parse_rule(text: str) -> Rule:
    """Parse a rule (a preset name or an expression); raise :class:`RuleError` if malformed."""
    if not isinstance(text, str):
        raise RuleError(0, "a rule must be a string")
    cached = _PRESET_RULES.get(text)
    if cached is not None:
        return cached
    if len(text) > MAX_LENGTH:
        raise RuleError(MAX_LENGTH, f"rule is longer than {MAX_LENGTH} characters")
    bare = text.strip(" \t\r\n")
    if bare in PRESETS:
        return _preset(bare, text)
    node = _Parser(text).rule()
    return Rule(text, None, node.anon(True), node.live())
