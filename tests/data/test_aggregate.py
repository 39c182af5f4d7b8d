"""The ``aggregate`` op (docs/data.md#aggregation) against the reference evaluator.

- The compiled statement (SQLite json1 with its exact ``mb_sum``, PostgreSQL jsonb) and the
  in-memory grouping TableStore uses give what :func:`tests.data.reference.aggregate` gives,
  for generated documents and pipelines (numbers at the 64-bit and double edges included).
- Whatever a client sends as a pipeline parses or is InvalidArgument; what parses compiles
  to SQL holding no client value.
- An aggregate runs within ``[limits] query_time``.
- Over HTTP on every backend: the read rule bounds what is grouped, the group cap holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from minibase.data.aggregate import (
    MAX_GROUPS,
    ExactSum,
    Pipeline,
    decode_rows,
    group_documents,
    parse_pipeline,
)
from minibase.data.filters import TRUE, Contains, Filter, Or, conj
from minibase.data.sql import POSTGRES, SQLITE
from minibase.data.sql_aggregate import compile_aggregate
from minibase.errors import DeadlineExceeded, InvalidArgument
from minibase.store.postgres import PostgresStore
from minibase.store.postgres_docs import encode
from minibase.store.records import Key
from minibase.store.sqlite import SQLiteStore
from minibase.store.writes import Put
from minibase.util.record import replace
from tests.support import reference
from tests.support.config import Live
from tests.support.data import is_tablestore
from tests.support.sql import (
    CLIENT_WHERE,
    COLLECTION,
    FILTERS,
    JSON,
    REUSED_BACKEND,
    ROWS,
    Backend,
    PostgresBackend,
    Row,
    SQLiteBackend,
    assert_only_bound,
    check_placeholders,
)


class _SQLite(SQLiteBackend):
    def __init__(self) -> None:
        super().__init__()
        self.conn.create_aggregate("mb_sum", 1, ExactSum)  # type: ignore[arg-type]  # as the store's readers


class _Postgres(PostgresBackend):
    def load(self, rows: Sequence[Row]) -> None:
        # As the store writes bodies (postgres_docs.encode: large floats keep their point).
        async def load() -> None:
            async with self.conn.transaction():
                await self.conn.execute("TRUNCATE documents")
                await self.conn.executemany(
                    "INSERT INTO documents VALUES ($1, $2, $3, 1, '', '', $4::text::jsonb)",
                    [(col, doc["uid"], doc["id"], encode(doc)) for col, doc in rows],
                )

        self.loop.run_until_complete(load())


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        lite = _SQLite()
        yield lite
        lite.conn.close()
    else:
        pg = _Postgres(request.getfixturevalue("pg_url"))
        yield pg
        pg.close()


# Reproducible and bounded: the same examples every run (as test_query_fuzz.py).
CI = settings(REUSED_BACKEND, derandomize=True, database=None)

# ------------------------------------------------------------------ strategies

REFS = st.sampled_from(["$a", "$b", "$n", "$o", "$o.a", "$id", "$uid", "$zz"])
IDS = st.one_of(
    st.none(),
    REFS,
    st.dictionaries(st.sampled_from(["k", "m"]), REFS, min_size=1, max_size=2),
)
# Output names tell the accumulator (agree() compares $min/$max numbers by value).
OPS = {"c": "$count", "s": "$sum", "s2": "$sum", "v": "$avg", "lo": "$min", "hi": "$max"}
ACCUMULATORS = st.lists(st.sampled_from(list(OPS)), max_size=4, unique=True)


@st.composite
def pipelines(draw: st.DrawFn) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if draw(st.booleans()):
        out.append({"$match": draw(CLIENT_WHERE)})
    _id = draw(IDS)
    group: dict[str, Any] = {"_id": _id}
    for name in draw(ACCUMULATORS):
        group[name] = {"$count": {}} if name == "c" else {OPS[name]: draw(REFS)}
    out.append({"$group": group})
    fields = [
        "_id",
        *(k for k in group if k != "_id"),
        *(f"_id.{k}" for k in (_id if isinstance(_id, dict) else ())),
    ]
    sort = draw(st.dictionaries(st.sampled_from(fields), st.sampled_from([1, -1]), max_size=3))
    if sort:
        out.append({"$sort": sort})
    if draw(st.booleans()):
        out.append({"$limit": draw(st.integers(1, 4))})
    return out


def agree(got: Any, want: Any, loose: bool = False) -> bool:
    """JSON equality with types (true is not 1, 1 is not 1.0), except that ``loose``
    numbers ($min/$max, where an integer and an equal float tie) compare by value."""
    num = (int, float)
    if loose and type(got) in num and type(want) in num:
        return bool(got == want)
    if type(got) is not type(want):
        return False
    if isinstance(got, dict):
        return got.keys() == want.keys() and all(agree(got[k], want[k], k in ("lo", "hi")) for k in got)
    if isinstance(got, list):
        return len(got) == len(want) and all(agree(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def expected(rows: Sequence[Row], pipe: Pipeline, pipeline: list[dict[str, Any]]) -> Any:
    docs = [doc for col, doc in rows if col == COLLECTION]
    try:
        return reference.aggregate(docs, pipe.where, pipeline)
    except reference.Overflow:
        return InvalidArgument


def run_sql(backend: Backend, pipe: Pipeline) -> Any:
    accs = [(a.op, a.path) for a in pipe.group.accumulators]
    sql, params = compile_aggregate(
        backend.dialect, COLLECTION, pipe.where, pipe.group.keys, accs, MAX_GROUPS + 1
    )
    check_placeholders(backend.dialect, sql, params)
    try:
        return pipe.finish(decode_rows(backend.execute(sql, params), pipe.group))
    except InvalidArgument:
        return InvalidArgument


# -------------------------------------------------------------------- the tests


@settings(CI, max_examples=150)
@given(ROWS, pipelines())
@example(
    rows=[
        (COLLECTION, {"id": "a", "uid": "u", "n": 2**63 - 1}),
        (COLLECTION, {"id": "b", "uid": "u", "n": 2**63 - 1}),
    ],
    pipeline=[{"$group": {"_id": None, "s": {"$sum": "$n"}, "v": {"$avg": "$n"}}}],
)  # past 64 bits: a float, as in Mongo
@example(
    rows=[(COLLECTION, {"id": "a", "uid": "u", "n": 1}), (COLLECTION, {"id": "b", "uid": "u", "n": 1.0})],
    pipeline=[{"$group": {"_id": "$n", "c": {"$count": {}}}}],
)  # 1 and 1.0: one group, keyed 1.0
@example(
    rows=[(COLLECTION, {"id": "a", "uid": "u", "n": 0.1}), (COLLECTION, {"id": "b", "uid": "u", "n": 0.2})],
    pipeline=[{"$group": {"_id": None, "s": {"$sum": "$n"}}}],
)  # decimal addition: 0.3, not 0.30000000000000004
def test_aggregate_matches_reference(
    backend: Backend, rows: list[Row], pipeline: list[dict[str, Any]]
) -> None:
    try:
        pipe = parse_pipeline(pipeline)
    except InvalidArgument:
        return
    want = expected(rows, pipe, pipeline)
    backend.load(rows)
    got = run_sql(backend, pipe)
    assert got is want if want is InvalidArgument else agree(got, want), (got, want)


@settings(CI, max_examples=80)
@given(ROWS, FILTERS, pipelines())
def test_aggregate_under_a_rule_matches_reference(
    backend: Backend, rows: list[Row], rule: Filter, pipeline: list[dict[str, Any]]
) -> None:
    """Any filter a rule compiles to (owner tests, ``in`` lists, negations, constants),
    ANDed with the ``$match`` as data/api.py does: the groups of exactly those rows."""
    try:
        pipe = parse_pipeline(pipeline)
    except InvalidArgument:
        return
    pipe = replace(pipe, where=conj(rule, pipe.where))
    want = expected(rows, pipe, pipeline)
    backend.load(rows)
    got = run_sql(backend, pipe)
    assert got is want if want is InvalidArgument else agree(got, want), (got, want)


@settings(CI, max_examples=150)
@given(ROWS, pipelines())
def test_in_memory_grouping_matches_reference(rows: list[Row], pipeline: list[dict[str, Any]]) -> None:
    """What TableStore runs (store/tablestore.py groups the owner's matches in memory)."""
    try:
        pipe = parse_pipeline(pipeline)
    except InvalidArgument:
        return
    want = expected(rows, pipe, pipeline)
    docs = [d for col, d in rows if col == COLLECTION and reference.matches(d, pipe.where)]
    try:
        got: Any = pipe.finish(group_documents(docs, pipe.group, MAX_GROUPS + 1))
    except InvalidArgument:
        got = InvalidArgument
    assert got is want if want is InvalidArgument else agree(got, want), (got, want)


def test_sums_are_exact_decimals_rounded_once() -> None:
    s = ExactSum()
    for v in (0.1, 0.2, 1e20, -1e20, 3):
        s.step(v)
    assert s.finalize() == "3.3"
    p = parse_pipeline([{"$group": {"_id": None, "s": {"$sum": "$n"}}}])
    with pytest.raises(InvalidArgument, match="beyond the range of a double"):
        p.finish(group_documents([{"n": 1e308}, {"n": 1e308}], p.group, 2))


STAGES = st.sampled_from(["$match", "$group", "$sort", "$limit", "$project", "$unwind", "", "group"])
NEAR = st.lists(
    st.dictionaries(STAGES, st.one_of(JSON, pipelines().map(lambda p: p[0])), max_size=2), max_size=6
)


@settings(CI, max_examples=150)
@given(st.one_of(JSON, NEAR, pipelines()))
def test_pipelines_parse_or_refuse_and_compile_bound(pipeline: Any) -> None:
    try:
        pipe = parse_pipeline(pipeline)
    except InvalidArgument:
        return
    accs = [(a.op, a.path) for a in pipe.group.accumulators]
    for dialect in (SQLITE, POSTGRES):
        sql, params = compile_aggregate(dialect, COLLECTION, pipe.where, pipe.group.keys, accs, 11)
        assert_only_bound(sql)
        check_placeholders(dialect, sql, params)


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (None, "non-empty array of stages"),
        ([{"$match": {}}], "needs a $group stage"),
        ([{"$group": {"_id": None}}, {"$match": {}}], "in the order"),
        ([{"$group": {"_id": None}}, {"$group": {"_id": None}}], "once"),
        ([{"$sort": {"_id": 1}}], "comes after $group"),
        ([{"$group": {"_id": "n"}}], 'a field reference is a string "$field"'),
        ([{"$group": {"_id": "$uid", "n": {"$sum": 1}}}], 'a field reference is a string "$field"'),
        ([{"$group": {"_id": None, "n": {"$median": "$n"}}}], "unknown accumulator"),
        ([{"$group": {"_id": None, "$n": {"$count": {}}}}], "is not a name"),
        ([{"$group": {"n": {"$count": {}}}}], '"_id"'),
        ([{"$group": {"_id": None, "n": {"$count": {}}}}, {"$sort": {"m": 1}}], "not an output field"),
        ([{"$group": {"_id": None, "n": {"$count": {}}}}, {"$sort": {"n": True}}], "must be 1"),
        ([{"$group": {"_id": None}}, {"$limit": 0}], "from 1 to 1000"),
        ([{"$group": {"_id": None}}, {"$limit": 1001}], "from 1 to 1000"),
        ([{"$match": {"uid": "x"}}, {"$group": {"_id": None}}], "pipeline[0].$match: uid"),
        ([{"$group": {"_id": {f"k{i}": "$a" for i in range(6)}}}], "1 to 5 fields"),
        ([{"$group": {"_id": None, **{f"n{i}": {"$count": {}} for i in range(21)}}}], "at most 20"),
        ([{"$group": {"_id": None}}] * 5, "at most 4 stages"),
    ],
)
def test_bad_pipelines_are_invalid_arguments(pipeline: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_pipeline(pipeline)
    assert message in info.value.message


# ------------------------------------------------------------------ time budget

ABSENT = Or(tuple(Contains(("arr",), v) for v in range(1, 11)))  # 10 array scans a document


def _budget(setup: SQLiteStore | PostgresStore, store: SQLiteStore | PostgresStore) -> None:
    async def main() -> None:
        await setup.open()
        try:
            for i in range(20):
                doc = {"arr": [0] * 200_000}
                await setup.write([Put(Key("blobs", "u1", f"b{i}"), doc)], "2026-01-01T00:00:00.000Z")
        finally:
            await setup.close()
        await store.open()
        try:
            pipe = parse_pipeline([{"$group": {"_id": None, "n": {"$count": {}}}}])
            with pytest.raises(DeadlineExceeded):
                await store.aggregate("blobs", ABSENT, pipe.group, 10)
            # The store carries on.
            assert pipe.finish(await store.aggregate("blobs", TRUE, pipe.group, 10)) == [
                {"_id": None, "n": 20}
            ]
        finally:
            await store.close()

    asyncio.run(main())


def test_aggregate_stops_at_the_query_time_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    _budget(SQLiteStore(path), SQLiteStore(path, query_time=0.05))


def test_aggregate_stops_at_the_query_time_postgres(pg_url: str) -> None:
    _budget(PostgresStore(pg_url), PostgresStore(pg_url, query_time=0.05, max_size=2))


# ---------------------------------------------------------------- over HTTP


def call(live: Live, sid: str | None, event: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {sid}"} if sid else {}
    r = httpx.post(f"{live.url}/invoke/db", json=event, headers=headers)
    return r.status_code, r.json()


def test_aggregate_over_http(data_live: Live) -> None:
    alice = data_live.client("dev:alice")
    bob = data_live.client("dev:bob")
    for c, items in ((alice, [("a", "x", 1), ("b", "x", 2.5), ("c", "y", 4)]), (bob, [("d", "x", 100)])):
        for i, tag, n in items:
            c.invoke("db", {"op": "insert", "collection": "notes", "obj": {"id": i, "tag": tag, "n": n}})
            c.invoke("db", {"op": "insert", "collection": "todo_list", "obj": {"id": i, "tag": tag, "n": n}})
    pipeline = [
        {"$group": {"_id": "$tag", "c": {"$count": {}}, "s": {"$sum": "$n"}, "hi": {"$max": "$n"}}},
        {"$sort": {"s": -1}},
    ]
    # The owner rule: alice groups her own documents only.
    got = alice.invoke("db", {"op": "aggregate", "collection": "todo_list", "pipeline": pipeline})["data"]
    assert got == [{"_id": "y", "c": 1, "s": 4, "hi": 4}, {"_id": "x", "c": 2, "s": 3.5, "hi": 2.5}]
    # A public collection: everyone's, except on TableStore (not one owner: refused, as query).
    status, body = call(data_live, None, {"op": "aggregate", "collection": "notes", "pipeline": pipeline})
    if is_tablestore(data_live):
        assert status == 400 and body["error"]["code"] == "InvalidArgument"
        status, body = call(
            data_live,
            None,
            {"op": "aggregate", "collection": "notes", "owner": bob.uid, "pipeline": pipeline},
        )
        assert body["data"] == [{"_id": "x", "c": 1, "s": 100, "hi": 100}]
    else:
        assert status == 200, body
        assert body["data"] == [
            {"_id": "x", "c": 3, "s": 103.5, "hi": 100},
            {"_id": "y", "c": 1, "s": 4, "hi": 4},
        ]
    # Anonymous on an owner collection: as query, log in.
    status, body = call(data_live, None, {"op": "aggregate", "collection": "todo_list", "pipeline": pipeline})
    assert (status, body["error"]["code"]) == (401, "Unauthenticated")
    status, body = call(data_live, None, {"op": "aggregate", "collection": "locked", "pipeline": pipeline})
    assert status == 401
    # A bad pipeline: 400 naming the stage.
    status, body = call(
        data_live, alice.session_id, {"op": "aggregate", "pipeline": [{"$group": {"_id": "tag"}}]}
    )
    assert status == 400 and "pipeline[0].$group._id" in body["error"]["message"]


def test_too_many_groups_are_refused(data_live: Live) -> None:
    alice = data_live.client("dev:alice")
    ops = [{"op": "insert", "obj": {"id": f"d{i}", "k": i}} for i in range(MAX_GROUPS + 1)]
    for i in range(0, len(ops), 100):
        alice.invoke("db", {"op": "batch", "ops": ops[i : i + 100]})
    pipeline = [{"$group": {"_id": "$k", "c": {"$count": {}}}}]
    status, body = call(data_live, alice.session_id, {"op": "aggregate", "pipeline": pipeline})
    assert status == 400, body
    assert body["error"]["code"] == "InvalidArgument" and body["error"]["max"] == MAX_GROUPS
    # Within the cap it answers, sorted and limited.
    pipeline = [{"$match": {"k": {"$lt": 10}}}, *pipeline, {"$sort": {"_id": -1}}, {"$limit": 3}]
    assert alice.invoke("db", {"op": "aggregate", "pipeline": pipeline})["data"] == [
        {"_id": k, "c": 1} for k in (9, 8, 7)
    ]
