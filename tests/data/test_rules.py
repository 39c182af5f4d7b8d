from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibase.data.filters import (
    FALSE,
    TRUE,
    And,
    Cmp,
    Const,
    Contains,
    Exists,
    Filter,
    In,
    Not,
    Or,
    Prefix,
    Scalar,
)
from minibase.data.rules import MAX_LENGTH, AuthInfo, Rule, RuleError, parse_rule

ALICE = AuthInfo("u_alice", "alipay")
BOB = AuthInfo("u_bob", "wechat")


def c(path: str, op: str, value: Scalar) -> Cmp:
    return Cmp(tuple(path.split(".")), op, value)  # type: ignore[arg-type]


# (rule, compiled for ALICE, compiled for an anonymous caller)
CASES: list[tuple[str, Filter, Filter]] = [
    # presets
    ("owner", c("uid", "eq", "u_alice"), FALSE),
    ("authenticated", TRUE, FALSE),
    ("public", TRUE, TRUE),
    ("none", FALSE, FALSE),
    ("  owner\n", c("uid", "eq", "u_alice"), FALSE),
    ("true", TRUE, TRUE),
    ("false", FALSE, FALSE),
    ("(true)", TRUE, TRUE),
    ("!false", TRUE, TRUE),
    # comparisons, doc path on the left
    ("doc.uid == auth.uid", c("uid", "eq", "u_alice"), FALSE),
    ("doc.id == 'a'", c("id", "eq", "a"), c("id", "eq", "a")),
    ("doc.a.b == 1", c("a.b", "eq", 1), c("a.b", "eq", 1)),
    ("doc.x == null", c("x", "eq", None), c("x", "eq", None)),
    ("doc.x != null", c("x", "ne", None), c("x", "ne", None)),
    ("doc.x != 'v'", c("x", "ne", "v"), c("x", "ne", "v")),
    ("doc.x == true", c("x", "eq", True), c("x", "eq", True)),
    ("doc.x < 3", c("x", "lt", 3), c("x", "lt", 3)),
    ("doc.x <= -3", c("x", "lte", -3), c("x", "lte", -3)),
    ("doc.x > 2.5", c("x", "gt", 2.5), c("x", "gt", 2.5)),
    ("doc.x >= -0.5", c("x", "gte", -0.5), c("x", "gte", -0.5)),
    ("doc.x >= 'm'", c("x", "gte", "m"), c("x", "gte", "m")),
    ("doc.x > auth.uid", c("x", "gt", "u_alice"), FALSE),
    ("doc.p == auth.provider", c("p", "eq", "alipay"), FALSE),
    # flipped: the doc path on the right
    ("3 > doc.x", c("x", "lt", 3), c("x", "lt", 3)),
    ("3 >= doc.x", c("x", "lte", 3), c("x", "lte", 3)),
    ("3 < doc.x", c("x", "gt", 3), c("x", "gt", 3)),
    ("3 <= doc.x", c("x", "gte", 3), c("x", "gte", 3)),
    ("'a' != doc.x", c("x", "ne", "a"), c("x", "ne", "a")),
    ("auth.uid == doc.uid", c("uid", "eq", "u_alice"), FALSE),
    # strings and escapes
    ('doc.s == "say \\"hi\\""', c("s", "eq", 'say "hi"'), c("s", "eq", 'say "hi"')),
    ("doc.s == 'it\\'s'", c("s", "eq", "it's"), c("s", "eq", "it's")),
    ("doc.s == 'a\\\\b'", c("s", "eq", "a\\b"), c("s", "eq", "a\\b")),
    ("doc.s == '\"'", c("s", "eq", '"'), c("s", "eq", '"')),
    ("doc.s == '中文'", c("s", "eq", "中文"), c("s", "eq", "中文")),
    # auth against literals folds; absent auth is never true, nor is its negation
    ("auth.provider == 'alipay'", TRUE, FALSE),
    ("auth.provider == 'wechat'", FALSE, FALSE),
    ("auth.provider != 'wechat'", TRUE, FALSE),
    ("'alipay' == auth.provider", TRUE, FALSE),
    ("auth.uid == null", FALSE, FALSE),
    ("auth.uid != null", TRUE, FALSE),
    ("auth.uid != 'x'", TRUE, FALSE),
    ("!(auth.uid == 'x')", TRUE, FALSE),
    ("!(auth.uid != 'x')", FALSE, FALSE),
    ("auth.uid == 1", FALSE, FALSE),
    ("auth.uid != 1", TRUE, FALSE),
    ("auth.uid < 1", FALSE, FALSE),
    ("auth.uid > 'u_a'", TRUE, FALSE),
    ("auth.uid <= 'u_a'", FALSE, FALSE),
    ("auth.uid == auth.uid", TRUE, FALSE),
    ("auth.uid == auth.provider", FALSE, FALSE),
    # literal against literal folds
    ("1 == 1.0", TRUE, TRUE),
    ("1 == true", FALSE, FALSE),
    ("null == null", TRUE, TRUE),
    ("'a' < 'b'", TRUE, TRUE),
    ("'a' < 1", FALSE, FALSE),
    ("2 >= 2", TRUE, TRUE),
    # membership
    ("auth.uid in doc.members", Contains(("members",), "u_alice"), FALSE),
    ("auth.provider in doc.p", Contains(("p",), "alipay"), FALSE),
    ("'x' in doc.tags", Contains(("tags",), "x"), Contains(("tags",), "x")),
    ("null in doc.tags", Contains(("tags",), None), Contains(("tags",), None)),
    ("doc.s in ['a', \"b\", 1, null]", In(("s",), ("a", "b", 1, None)), In(("s",), ("a", "b", 1, None))),
    ("doc.s in ['a',]", In(("s",), ("a",)), In(("s",), ("a",))),
    ("doc.s in []", FALSE, FALSE),
    ("auth.provider in ['alipay', 'wechat']", TRUE, FALSE),
    ("auth.provider in ['wechat', 1]", FALSE, FALSE),
    ("auth.uid in []", FALSE, FALSE),
    # negation
    ("!(doc.a == 1)", Not(c("a", "eq", 1)), Not(c("a", "eq", 1))),
    ("!doc.a == 1", Not(c("a", "eq", 1)), Not(c("a", "eq", 1))),
    ("!!(doc.a == 1)", c("a", "eq", 1), c("a", "eq", 1)),
    ("!(doc.a < 1)", Not(c("a", "lt", 1)), Not(c("a", "lt", 1))),
    (
        "!(doc.a == 1 && doc.b == 2)",
        Not(And((c("a", "eq", 1), c("b", "eq", 2)))),
        Not(And((c("a", "eq", 1), c("b", "eq", 2)))),
    ),
    # precedence and parentheses
    (
        "doc.a == 1 || doc.b == 2 && doc.c == 3",
        Or((c("a", "eq", 1), And((c("b", "eq", 2), c("c", "eq", 3))))),
        Or((c("a", "eq", 1), And((c("b", "eq", 2), c("c", "eq", 3))))),
    ),
    (
        "doc.a == 1 && doc.b == 2 || doc.c == 3",
        Or((And((c("a", "eq", 1), c("b", "eq", 2))), c("c", "eq", 3))),
        Or((And((c("a", "eq", 1), c("b", "eq", 2))), c("c", "eq", 3))),
    ),
    (
        "(doc.a == 1 || doc.b == 2) && doc.c == 3",
        And((Or((c("a", "eq", 1), c("b", "eq", 2))), c("c", "eq", 3))),
        And((Or((c("a", "eq", 1), c("b", "eq", 2))), c("c", "eq", 3))),
    ),
    (
        "doc.a == 1 && (doc.b == 2 && doc.c == 3)",
        And((c("a", "eq", 1), c("b", "eq", 2), c("c", "eq", 3))),
        And((c("a", "eq", 1), c("b", "eq", 2), c("c", "eq", 3))),
    ),
    ("((((doc.a == 1))))", c("a", "eq", 1), c("a", "eq", 1)),
    # folding with and without auth
    (
        "doc.uid == auth.uid || doc.shared == true",
        Or((c("uid", "eq", "u_alice"), c("shared", "eq", True))),
        c("shared", "eq", True),
    ),
    (
        'doc.status != "draft" && auth.provider == "alipay"',
        c("status", "ne", "draft"),
        FALSE,
    ),
    ('doc.status != "draft" && auth.provider == "wechat"', FALSE, FALSE),
    ("auth.provider == 'alipay' || doc.public == true", TRUE, c("public", "eq", True)),
    ("!(auth.uid == 'x' && doc.a == 1)", TRUE, Not(c("a", "eq", 1))),
    ("!(auth.uid == 'x' || doc.a == 1)", Not(c("a", "eq", 1)), FALSE),
    ("!(auth.uid == 'u_alice' || doc.a == 1)", FALSE, FALSE),
    ("!!(auth.uid == 'u_alice')", TRUE, FALSE),
    ("auth.uid == 'x' || true", TRUE, TRUE),
    ("auth.uid == 'x' && false", FALSE, FALSE),
    ("!(auth.uid == 'x' && false)", TRUE, TRUE),
    ("doc.a == 1 && true", c("a", "eq", 1), c("a", "eq", 1)),
    ("doc.a == 1 || false || 1 == 2", c("a", "eq", 1), c("a", "eq", 1)),
    ("doc.a == 1 || !false", TRUE, TRUE),
    ("doc.a == 1 && !(doc.b == 1 || true)", FALSE, FALSE),
    (
        "doc.kind in ['note'] && (doc.uid == auth.uid || auth.uid in doc.members)",
        And((In(("kind",), ("note",)), Or((c("uid", "eq", "u_alice"), Contains(("members",), "u_alice"))))),
        FALSE,
    ),
    # names that are keywords elsewhere are fine as fields
    (
        "doc.in == 1 && doc.true.null == 2",
        And((c("in", "eq", 1), c("true.null", "eq", 2))),
        And((c("in", "eq", 1), c("true.null", "eq", 2))),
    ),
]


@pytest.mark.parametrize(("text", "with_auth", "anonymous"), CASES)
def test_compile(text: str, with_auth: Filter, anonymous: Filter) -> None:
    rule = parse_rule(text)
    assert rule.text == text
    assert rule.compile(ALICE) == with_auth
    assert rule.compile(None) == anonymous
    assert_well_formed(rule.compile(ALICE))
    assert_well_formed(rule.compile(None))


@pytest.mark.parametrize(
    ("text", "depends"),
    [
        ("owner", True),
        ("authenticated", True),
        ("public", False),
        ("none", False),
        ("doc.a == 1", False),
        ("doc.uid == auth.uid", True),
        ("auth.provider == 'alipay'", True),
        ("auth.uid == 'x' || true", False),
    ],
)
def test_depends_on_auth(text: str, depends: bool) -> None:
    assert parse_rule(text).depends_on_auth is depends


def test_presets() -> None:
    owner = parse_rule("owner")
    assert owner.preset == "owner"
    assert owner is parse_rule("owner")
    assert parse_rule(" public ").preset == "public"
    assert parse_rule("doc.uid == auth.uid").preset is None
    assert owner.compile(BOB) == c("uid", "eq", "u_bob")
    assert owner.compile(ALICE) is owner.compile(ALICE)  # cached per caller


def test_cache_tracks_provider_and_stays_bounded() -> None:
    rule = parse_rule("auth.provider == 'alipay' && doc.uid == auth.uid")
    assert rule.compile(AuthInfo("u", "alipay")) == c("uid", "eq", "u")
    assert rule.compile(AuthInfo("u", "wechat")) == FALSE
    for i in range(3000):
        assert rule.compile(AuthInfo(f"u{i}", "alipay")) == c("uid", "eq", f"u{i}")
    assert len(rule._cache) <= 1024


def test_rule_is_immutable_and_compares_by_text() -> None:
    rule = parse_rule("doc.a == 1")
    with pytest.raises(AttributeError):
        rule.text = "public"
    assert rule == parse_rule("doc.a == 1")
    assert rule != parse_rule("doc.a == 2")
    assert len({rule, parse_rule("doc.a == 1")}) == 1
    assert repr(rule) == "Rule('doc.a == 1')"
    assert AuthInfo("u", "p") == AuthInfo("u", "p")


# (rule, position, a fragment of the message)
ERRORS: list[tuple[str, int, str]] = [
    ("", 0, "expected an expression, found end of rule"),
    ("   ", 3, "expected an expression"),
    ('doc.a == "abc', 9, "unterminated string"),
    ("doc.a == 'abc\\'", 9, "unterminated string"),
    ("doc.a == 'a\\nb'", 11, "unsupported escape"),
    ("doc.a == 'a\x01b'", 11, "control character"),
    ("user.uid == 'x'", 0, "unknown name 'user'"),
    ("doc.a == x", 9, "unknown name 'x'"),
    ("Doc.a == 1", 0, "did you mean 'doc'"),
    ("doc.a == True", 9, "did you mean 'true'"),
    ("doc.a == 1 and doc.b == 2", 11, "unexpected 'and'"),
    ("doc.a == doc.b", 9, "cannot compare two document fields"),
    ("doc.a in doc.b", 9, "cannot test one document field against another"),
    ("doc.a <", 7, "expected a value after '<', found end of rule"),
    ("doc.a == )", 9, "expected a value after '==', found ')'"),
    ("doc.a == 1 doc.b", 11, "unexpected 'doc.b' (expected '&&', '||' or the end of the rule)"),
    ("doc.a == 1)", 10, "unexpected ')'"),
    ("(doc.a == 1", 11, "expected ')', found end of rule"),
    ("(doc.a == 1 doc.b", 12, "expected ')', found 'doc.b'"),
    ("x" * (MAX_LENGTH + 1), MAX_LENGTH, f"longer than {MAX_LENGTH} characters"),
    ("doc. == 1", 4, "expected a field name"),
    ("doc.1a == 1", 4, "expected a field name"),
    ("doc.a..b == 1", 6, "expected a field name"),
    ("doc.a.", 6, "expected a field name"),
    ("doc.é == 1", 4, "expected a field name"),
    ("doc == 1", 3, "expected '.<field>' after 'doc'"),
    ("doc.a.b.c.d.e.f.g.h.i == 1", 20, "at most 8 fields"),
    ("doc." + "a" * 65 + " == 1", 4, "longer than 64"),
    ("auth.secret == 'x'", 5, "unknown auth field 'secret'"),
    ("auth == 'x'", 4, "expected '.uid' or '.provider' after 'auth'"),
    ("auth.uid.x == 'x'", 8, "auth.uid is a string and has no fields"),
    ("true.x == 1", 4, "unexpected '.' after 'true'"),
    ("doc.a", 5, "expected a comparison operator"),
    ("'a'", 3, "expected a comparison operator"),
    ("null", 4, "expected a comparison operator"),
    ("doc.a == 1 == 2", 11, "unexpected '=='"),
    ("doc.a = 1", 6, "use '==' to compare"),
    ("doc.a == 1 & doc.b == 2", 11, "use '&&'"),
    ("doc.a == 1 | doc.b == 2", 11, "use '||'"),
    ("doc.a == 1 ; 2", 11, "unexpected character ';'"),
    ("doc.a < null", 8, "cannot use '<' with null"),
    ("true >= doc.a", 0, "cannot use '>=' with a boolean"),
    ("doc.a > false", 8, "cannot use '>' with a boolean"),
    ("doc.a == 1.", 11, "expected digits after the decimal point"),
    ("doc.a == 1.5.2", 12, "unexpected character '.'"),
    ("doc.a == 12ab", 11, "unexpected 'a' after a number"),
    ("doc.a == - 1", 9, "unexpected character '-'"),
    ("doc.a == 9223372036854775808", 9, "does not fit in 64 bits"),
    ("doc.a == " + "9" * 400 + ".0", 9, "too large"),
    ("owner || doc.a == 1", 0, "'owner' is a preset and must be the whole rule"),
    ("!public", 1, "'public' is a preset"),
    ("in", 0, "expected an expression, found 'in'"),
    ("doc.a in 'x'", 9, "the right side of 'in' must be doc.<field> or a [list]"),
    ("doc.a in", 8, "expected doc.<field> or a [list] after 'in'"),
    ("'x' in ['x']", 0, "the left side of 'in [...]' must be doc.<field> or auth.*"),
    ("doc.a in [auth.uid]", 10, "list items must be literals"),
    ("doc.a in [1 2]", 12, "expected ',' or ']', found '2'"),
    ("doc.a in [1,,]", 12, "expected a literal or ']', found ','"),
    ("doc.a in [1", 11, "expected ',' or ']', found end of rule"),
    ("&& doc.a == 1", 0, "expected an expression, found '&&'"),
    ("doc.a == 1 &&", 13, "expected an expression, found end of rule"),
    ("!" * 33 + "true", 32, "nested deeper than 32 levels"),
    ("(" * 33 + "true" + ")" * 33, 32, "nested deeper than 32 levels"),
    # the first problem in the text wins, even if the tokenizer would find a later one
    ('doc.a == == 1 "abc', 9, "expected a value after '=='"),
]


@pytest.mark.parametrize(("text", "position", "fragment"), ERRORS)
def test_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(text)
    assert info.value.position == position
    assert str(info.value) == f"at {position}: {info.value.reason}"
    assert fragment in info.value.reason
    assert isinstance(info.value, ValueError)


def test_limits_are_inclusive() -> None:
    parse_rule("!" * 32 + "true")
    parse_rule("(" * 32 + "true" + ")" * 32)
    parse_rule("doc.a.b.c.d.e.f.g.h == 1")
    parse_rule("doc." + "a" * 64 + " == 1")
    parse_rule("doc.a == 9223372036854775807 || doc.a == -9223372036854775808")
    text = "doc.a == 1" + " " * (MAX_LENGTH - 10)
    assert len(text) == MAX_LENGTH
    parse_rule(text)


def test_not_a_string() -> None:
    with pytest.raises(RuleError):
        parse_rule(None)  # type: ignore[arg-type]


# --- a plain-Python evaluator of the filter semantics (minibase/data/filters.py) -----------

MISSING: Any = object()


def get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = doc
    for seg in path:
        if not isinstance(cur, dict) or seg not in cur:
            return MISSING
        cur = cur[seg]
    return cur


def kind(v: Any) -> int:
    if v is None or v is MISSING:
        return 0
    if isinstance(v, bool):
        return 1
    if isinstance(v, int | float):
        return 2
    if isinstance(v, str):
        return 3
    return 4 if isinstance(v, list) else 5


def same(a: Any, b: Any) -> bool:
    return kind(a) == kind(b) and (kind(a) == 0 or a == b)


def ordered(a: Any, op: str, b: Any) -> bool:
    if kind(a) != kind(b) or kind(a) not in (2, 3):
        return False
    return bool({"lt": a < b, "lte": a <= b, "gt": a > b, "gte": a >= b}[op])


def matches(doc: dict[str, Any], f: Filter) -> bool:
    match f:
        case Const(value):
            return value
        case Cmp(path, op, value):
            v = get(doc, path)
            if op == "eq":
                return same(v, value)
            if op == "ne":
                return not same(v, value)
            return ordered(v, op, value)
        case In(path, values):
            return any(same(get(doc, path), v) for v in values)
        case Contains(path, value):
            v = get(doc, path)
            return isinstance(v, list) and any(same(x, value) for x in v)
        case Exists(path, present):
            return (get(doc, path) is not MISSING) == present
        case Prefix(path, prefix):
            v = get(doc, path)
            return isinstance(v, str) and v.startswith(prefix)
        case And(items):
            return all(matches(doc, x) for x in items)
        case Or(items):
            return any(matches(doc, x) for x in items)
        case Not(item):
            return not matches(doc, item)
    raise AssertionError(f"not a filter: {f!r}")


def assert_well_formed(f: Filter, top: bool = True) -> None:
    """A filter tree, folded: constants only at the top, And/Or flat with 2+ items."""
    if isinstance(f, Const):
        assert top, "a constant left inside a compound filter"
        assert f is TRUE or f is FALSE
    elif isinstance(f, And | Or):
        assert isinstance(f.items, tuple) and len(f.items) >= 2
        for item in f.items:
            assert not isinstance(item, type(f)), "not flattened"
            assert_well_formed(item, top=False)
    elif isinstance(f, Not):
        assert not isinstance(f.item, Not), "double negation left"
        assert_well_formed(f.item, top=False)
    else:
        assert isinstance(f, Cmp | In | Contains | Exists | Prefix), f
        assert isinstance(f.path, tuple) and f.path


DOCS: list[dict[str, Any]] = [
    {"id": "1", "uid": "u_alice", "status": "draft", "shared": False, "members": []},
    {"id": "2", "uid": "u_bob", "status": "done", "shared": True, "members": ["u_alice"]},
    {"id": "3", "uid": "u_bob", "status": "open", "members": ["u_carol", 1]},
    {"id": "4", "uid": "u_carol", "n": 5, "meta": {"level": 2}},
    {"id": "5", "uid": "u_carol", "n": "5", "shared": 1, "members": "u_alice", "meta": None},
]


@pytest.mark.parametrize(
    ("text", "auth", "ids"),
    [
        ("owner", ALICE, {"1"}),
        ("owner", None, set()),
        ("public", None, {"1", "2", "3", "4", "5"}),
        ("doc.uid == auth.uid || doc.shared == true", ALICE, {"1", "2"}),
        ("doc.uid == auth.uid || doc.shared == true", None, {"2"}),
        ("auth.uid in doc.members", ALICE, {"2"}),  # "5" holds a string, not an array
        ("auth.uid in doc.members", None, set()),
        ('doc.status != "draft" && auth.provider == "alipay"', ALICE, {"2", "3", "4", "5"}),
        ('doc.status != "draft" && auth.provider == "alipay"', BOB, set()),
        ("doc.status in ['open', 'done']", None, {"2", "3"}),
        ("doc.n > 3", None, {"4"}),  # type-aware: "5" is not a number
        ("3 < doc.n", None, {"4"}),
        ("doc.meta == null", None, {"1", "2", "3", "5"}),  # missing compares like null
        ("doc.meta.level >= 2", None, {"4"}),
        ("doc.shared != true", None, {"1", "3", "4", "5"}),
        ("!(doc.shared == true) && doc.uid != auth.uid", ALICE, {"3", "4", "5"}),
        ("!(doc.shared == true) && doc.uid != auth.uid", None, set()),
    ],
)
def test_semantics_on_documents(text: str, auth: AuthInfo | None, ids: set[str]) -> None:
    f = parse_rule(text).compile(auth)
    assert {d["id"] for d in DOCS if matches(d, f)} == ids


# --- property tests ----------------------------------------------------------------------

TOKENS = [
    "doc.a", "doc.b.c", "doc.uid", "doc.", "doc", "auth.uid", "auth.provider", "auth.secret",
    "auth", "user.uid", "true", "false", "null", "in", "owner", "public", "none", "0", "1",
    "-2.5", "1.", "'s'", '"t"', "'it\\'s'", '"open', "==", "!=", "<", "<=", ">", ">=", "&&",
    "||", "!", "(", ")", "[", "]", ",", "=", "&", "|", "\\", "é", "-", ".",
]  # fmt: skip


def check_parse(text: str) -> None:
    try:
        rule = parse_rule(text)
    except RuleError as e:
        assert 0 <= e.position <= len(text)
        assert str(e).startswith(f"at {e.position}: ")
        return
    assert isinstance(rule, Rule)
    for auth in (ALICE, BOB, None):
        assert_well_formed(rule.compile(auth))
    if not rule.depends_on_auth:
        assert rule.compile(ALICE) == rule.compile(None)


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text(text: str) -> None:
    check_parse(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", ""]))
@settings(max_examples=500, deadline=None)
def test_token_soup(tokens: list[str], sep: str) -> None:
    check_parse(sep.join(tokens))


# Random well-formed rules as small ASTs, rendered to text and evaluated directly with the
# three-valued logic the docstring promises; the compiled filter must agree on every document.

PATHS = [("a",), ("b",), ("n",), ("tags",), ("uid",), ("x", "y")]
LITERALS: list[Scalar] = [None, True, False, 0, 1, -1, 2.5, "", "a", "b", "u1", "alipay", "q\"'\\"]
AUTH_FIELDS = ["uid", "provider"]

doc_operand = st.tuples(st.just("doc"), st.sampled_from(PATHS))
auth_operand = st.tuples(st.just("auth"), st.sampled_from(AUTH_FIELDS))
lit_operand = st.tuples(st.just("lit"), st.sampled_from(LITERALS))
any_operand = st.one_of(doc_operand, auth_operand, lit_operand)
OPS = {"eq": "==", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def valid_cmp(node: tuple[Any, ...]) -> bool:
    _, left, op, right = node
    if left[0] == "doc" and right[0] == "doc":
        return False
    if op in ("eq", "ne"):
        return True
    return not any(s[0] == "lit" and (s[1] is None or isinstance(s[1], bool)) for s in (left, right))


leaves = st.one_of(
    st.tuples(st.just("cmp"), any_operand, st.sampled_from(list(OPS)), any_operand).filter(valid_cmp),
    st.tuples(st.just("in_doc"), st.one_of(auth_operand, lit_operand), st.sampled_from(PATHS)),
    st.tuples(
        st.just("in_list"),
        st.one_of(doc_operand, auth_operand),
        st.lists(st.sampled_from(LITERALS), max_size=3),
    ),
    st.tuples(st.just("const"), st.booleans()),
)
exprs = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, min_size=2, max_size=3)),
    ),
    max_leaves=8,
)

scalars = st.sampled_from([*LITERALS, 3, "z", "u_alice"])
values = st.one_of(scalars, st.lists(scalars, max_size=3))
documents = st.fixed_dictionaries(
    {},
    optional={
        "a": values,
        "b": values,
        "n": values,
        "tags": values,
        "uid": st.sampled_from(["u1", "a", "b"]),
        "x": st.one_of(values, st.fixed_dictionaries({}, optional={"y": values})),
    },
)
auths = st.one_of(
    st.none(),
    st.builds(AuthInfo, st.sampled_from(["u1", "a", "b", ""]), st.sampled_from(["alipay", "wechat", "a"])),
)


def render_operand(o: tuple[str, Any]) -> str:
    if o[0] == "doc":
        return "doc." + ".".join(o[1])
    if o[0] == "auth":
        return f"auth.{o[1]}"
    v = o[1]
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return json.dumps(v)


def render(e: tuple[Any, ...]) -> str:
    tag = e[0]
    if tag == "cmp":
        return f"{render_operand(e[1])} {OPS[e[2]]} {render_operand(e[3])}"
    if tag == "in_doc":
        return f"{render_operand(e[1])} in doc.{'.'.join(e[2])}"
    if tag == "in_list":
        items = ", ".join(render_operand(("lit", v)) for v in e[2])
        return f"{render_operand(e[1])} in [{items}]"
    if tag == "const":
        return "true" if e[1] else "false"
    if tag == "not":
        return f"!({render(e[1])})"
    # Parenthesize only where precedence needs it: an "or" inside an "and".
    parts = [f"({render(x)})" if tag == "and" and x[0] == "or" else render(x) for x in e[1]]
    return (" && " if tag == "and" else " || ").join(parts)


def value_of(o: tuple[str, Any], doc: dict[str, Any], auth: AuthInfo | None) -> Any:
    if o[0] == "doc":
        return get(doc, o[1])
    if o[0] == "auth":
        return None if auth is None else getattr(auth, o[1])
    return o[1]


def evaluate(e: tuple[Any, ...], doc: dict[str, Any], auth: AuthInfo | None) -> bool | None:
    """Three-valued: None is unknown (a test involving an absent auth value)."""
    tag = e[0]
    if tag in ("cmp", "in_doc", "in_list"):
        operands = [e[1], e[3]] if tag == "cmp" else [e[1]]
        if auth is None and any(o[0] == "auth" for o in operands):
            return None
        left = value_of(e[1], doc, auth)
        if tag == "cmp":
            right = value_of(e[3], doc, auth)
            op = e[2]
            if op in ("eq", "ne"):
                return same(left, right) is (op == "eq")
            return ordered(left, op, right)
        if tag == "in_doc":
            arr = get(doc, e[2])
            return isinstance(arr, list) and any(same(left, x) for x in arr)
        return any(same(left, v) for v in e[2])
    if tag == "const":
        return bool(e[1])
    if tag == "not":
        inner = evaluate(e[1], doc, auth)
        return None if inner is None else not inner
    results = [evaluate(x, doc, auth) for x in e[1]]
    decisive: bool = tag == "or"  # True decides an "or", False an "and"
    if decisive in results:
        return decisive
    return None if None in results else not decisive


@given(exprs, st.lists(documents, min_size=1, max_size=5), auths)
@settings(max_examples=500, deadline=None)
def test_compiled_filter_agrees_with_direct_evaluation(
    e: tuple[Any, ...], docs: list[dict[str, Any]], auth: AuthInfo | None
) -> None:
    text = render(e)
    f = parse_rule(text).compile(auth)
    assert_well_formed(f)
    for doc in docs:
        assert matches(doc, f) == (evaluate(e, doc, auth) is True), (text, doc, f)
