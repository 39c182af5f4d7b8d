"""JSON numbers read back exactly as written, on every backend (issue 18, point 8).

The domain: integers within 64 bits (-2^63 to 2^63-1), finite floats (IEEE doubles, -0.0
stored as 0.0), strings without U+0000. PostgreSQL's jsonb used to turn the float ``1e19``
into the integer ``10000000000000000000`` (then ``inc`` said "would overflow"); an integer
literal beyond 64 bits was parsed into a float without a word. Now a value in the domain
reads back identical (same JSON type, same value) through get, query, update and batch,
and one outside it is InvalidArgument. A Hypothesis property over real HTTP on SQLite,
PostgreSQL and TableStore.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.config import Live

INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    FLOATS,
    st.sampled_from([1e16, 1e19, 1.5e300, 5e-324, 1e-7, 2.0**63, 123456789012345678.0, -0.0, 1.0]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), inner, max_size=4)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """JSON identity: the same type (true is not 1, 1 is not 1.0) and the same value."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def stored(value: Any) -> Any:
    """What the server keeps of ``value``: -0.0 becomes 0.0, nothing else changes."""
    if isinstance(value, float) and value == 0.0:
        return 0.0
    if isinstance(value, dict):
        return {k: stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stored(v) for v in value]
    return value


class Caller:
    def __init__(self, live: Live) -> None:
        c = live.client("dev:alice")
        assert c.session_id
        self.http = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {c.session_id}"})

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def __call__(self, event: dict[str, Any] | bytes) -> tuple[int, Any]:
        body = event if isinstance(event, bytes) else orjson.dumps(event)
        r = self.http.post("/invoke/db", content=body, headers={"content-type": "application/json"})
        answer = orjson.loads(r.content)
        return r.status_code, answer.get("data", answer.get("error"))


def test_every_number_reads_back_identically(data_live: Live) -> None:
    with Caller(data_live) as db:
        n = 0

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(value=VALUES)
        @example(value=1e19)  # the review's finding: jsonb answered 10000000000000000000
        @example(value=[2**63 - 1, -(2**63), 1e16, 1.5e300, 5e-324, -0.0, 0.1])
        def prop(value: Any) -> None:
            nonlocal n
            n += 1
            doc_id = f"n{n}"
            want = stored(value)
            status, doc = db({"op": "insert", "obj": {"id": doc_id, "v": value}})
            assert status == 200 and same(doc["v"], want), (value, doc)
            status, doc = db({"op": "get", "id": doc_id})
            assert same(doc["v"], want), (value, doc)
            status, page = db({"op": "query", "owner": doc["uid"], "where": {"id": doc_id}})
            assert status == 200 and same(page[0]["v"], want), (value, page)
            status, doc = db({"op": "update", "id": doc_id, "set": {"w": value}, "push": {"l": value}})
            assert status == 200 and same(doc["w"], want) and same(doc["l"], [want]), (value, doc)
            status, docs = db(
                {
                    "op": "batch",
                    "ops": [{"op": "put", "obj": {"id": doc_id, "v": value}}, {"op": "get", "id": doc_id}],
                }
            )
            assert status == 200 and same(docs[1]["v"], want), (value, docs)

        prop()


def test_a_large_float_stays_a_float_and_inc_works(data_live: Live) -> None:
    with Caller(data_live) as db:
        status, doc = db({"op": "insert", "obj": {"id": "big", "x": 1e19, "y": 123456789012345678.0}})
        assert status == 200 and doc["x"] == 1e19 and type(doc["x"]) is float, doc
        status, doc = db({"op": "update", "id": "big", "inc": {"x": 1, "y": 2.5}})
        assert status == 200 and type(doc["x"]) is float and doc["x"] == 1e19 + 1, doc
        status, page = db(
            {"op": "query", "owner": doc["uid"], "where": {"x": {"$gte": 1e19}}, "orderBy": [["y", "desc"]]}
        )
        assert status == 200 and [d["id"] for d in page] == ["big"], page


def test_numbers_outside_the_domain_are_invalid_arguments(data_live: Live) -> None:
    with Caller(data_live) as db:
        for body in (
            b'{"op": "insert", "obj": {"v": 9223372036854775808}}',  # 2^63: orjson parses it, SQLite cannot bind it
            b'{"op": "insert", "obj": {"v": -9223372036854775809}}',
            b'{"op": "insert", "obj": {"v": 18446744073709551616}}',  # 2^64: orjson would make it a float
            b'{"op": "insert", "obj": {"v": [1, {"w": 100000000000000000000000000000}]}}',
            b'{"op": "put", "obj": {"id": "a", "v": 18446744073709551615}}',
            b'{"op": "update", "id": "a", "set": {"v": 9223372036854775808}}',
            b'{"op": "update", "id": "a", "push": {"v": {"$each": [1, 9223372036854775808]}}}',
            b'{"op": "batch", "ops": [{"op": "insert", "obj": {"v": {"w": [18446744073709551615]}}}]}',
        ):
            status, error = db(body)
            assert status == 400 and error["code"] == "InvalidArgument", (body, error)
            assert "64 bits" in error["message"], error
        # A long run of digits in a string is only a string.
        status, doc = db(b'{"op": "insert", "obj": {"v": "123456789012345678901234567890"}}')
        assert status == 200 and doc["v"] == "123456789012345678901234567890"
        # The same body anywhere else (a developer function's event) parses as before below 2^64.
        status, doc = db(b'{"op": "insert", "obj": {"v": 9223372036854775807, "w": -9223372036854775808}}')
        assert status == 200 and (doc["v"], doc["w"]) == (2**63 - 1, -(2**63))
