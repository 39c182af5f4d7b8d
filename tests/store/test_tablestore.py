"""The TableStore store against the fake TableStore (tests/fakes/tablestore_server.py):
conditional writes, batches and their limits, the queries it refuses, sessions, rate
buckets, the fake's signature checks, and the ``tablestore://`` config."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from minibase.auth.providers.base import Identity
from minibase.config import ConfigError, parse_config
from minibase.data.filters import TRUE, And, Cmp, Contains, Filter, Or, OrderKey
from minibase.errors import (
    Conflict,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    PayloadTooLarge,
    Unavailable,
)
from minibase.store.records import Key
from minibase.store.tablestore import TableStoreStore
from minibase.store.tablestore_eval import matches, position, position_key
from minibase.store.writes import Get, Insert, Put, Remove, Update
from tests.fakes.tablestore_server import FakeTableStore
from tests.support import reference
from tests.support.config import base_raw
from tests.support.data import OTS_CROSS_OWNER, OTS_ENV, OTS_KEY_ID, OTS_SECRET, OTS_TOKEN
from tests.support.sql import FILTERS, ORDERS, ROWS
from tests.support.ticker import Ticker

NOW = "2026-01-01T00:00:00.000Z"
OWNER = Cmp(("uid",), "eq", "u1")


@pytest.fixture
def ots(fake_tablestore: tuple[FakeTableStore, str]) -> Iterator[tuple[FakeTableStore, str, str]]:
    fake, endpoint = fake_tablestore
    yield fake, endpoint, fake.add_instance()


def run(
    ots: tuple[FakeTableStore, str, str], body: Callable[..., Awaitable[Any]], n: int = 1, **kw: Any
) -> Any:
    _, endpoint, instance = ots

    async def main() -> Any:
        stores = [
            TableStoreStore(instance, endpoint, OTS_KEY_ID, OTS_SECRET, OTS_TOKEN, **kw) for _ in range(n)
        ]
        for s in stores:
            await s.open()
        try:
            return await body(*stores)
        finally:
            for s in stores:
                await s.close()

    return asyncio.run(main())


def k(doc_id: str, uid: str = "u1", col: str = "todo") -> Key:
    return Key(col, uid, doc_id)


# ------------------------------------------------------------ conditional writes


def test_concurrent_updates_from_two_instances_lose_nothing(ots: Any) -> None:
    async def body(a: TableStoreStore, b: TableStoreStore) -> None:
        await a.write([Insert(k("c"), {"n": 0})], NOW)
        inc = Update(k("c"), lambda d: {"n": d["n"] + 1})
        await asyncio.gather(*(s.write([inc], NOW) for _ in range(6) for s in (a, b)))
        doc = orjson.loads(await a.get_document(k("c")) or b"")
        assert doc["n"] == 12 and doc["_version"] == 13

    run(ots, body, n=2)


# ---------------------------------------------------------------------- batches


def test_batch_is_atomic_within_the_owner_partition(ots: Any) -> None:
    fake = ots[0]

    async def body(s: TableStoreStore) -> None:
        await s.write([Insert(k("x"), {"n": 1})], NOW)
        with pytest.raises(Conflict) as e:
            await s.write([Insert(k("y"), {}), Update(k("x"), lambda d: {"n": 5}), Insert(k("x"), {})], NOW)
        assert e.value.details["index"] == 2
        assert await s.get_document(k("y")) is None
        assert orjson.loads(await s.get_document(k("x")) or b"")["n"] == 1
        assert not fake.txns  # aborted: the partition is not left locked
        # Later ops see earlier ones; one BatchWriteRow carries the final state.
        before = fake.calls["BatchWriteRow"]
        got = await s.write(
            [
                Insert(k("y"), {"n": 1}),
                Update(k("y"), lambda d: {"n": d["n"] + 1}),
                Get(k("y")),
                Remove(k("x")),
                Get(k("x")),
                Insert(k("z", col="other"), {}),  # another collection, same owner
            ],
            NOW,
        )
        assert orjson.loads(got[2])["n"] == 2 and got[3] is True and got[4] is None
        assert fake.calls["BatchWriteRow"] == before + 1
        assert orjson.loads(await s.get_document(k("y")) or b"")["_version"] == 2
        assert await s.get_document(k("x")) is None
        assert await s.get_document(k("z", col="other")) is not None

    run(ots, body)


def test_batch_limits_are_clear_errors(ots: Any) -> None:
    fake = ots[0]

    async def body(s: TableStoreStore) -> None:
        with pytest.raises(InvalidArgument, match="more than one user") as e:
            await s.write([Insert(k("a"), {}), Insert(k("b", uid="u2"), {})], NOW)
        assert e.value.details["index"] == 1
        with pytest.raises(InvalidArgument, match="at most 200"):
            await s.write([Insert(k(f"d{i}"), {}) for i in range(201)], NOW)
        big = "x" * (1536 * 1024)
        with pytest.raises(PayloadTooLarge, match="4 MB"):
            await s.write([Insert(k(f"b{i}"), {"t": big}) for i in range(3)], NOW)
        with pytest.raises(PayloadTooLarge, match="2 MB"):
            await s.write([Insert(k("huge"), {"t": "y" * (2 * 1024 * 1024)})], NOW)
        assert not fake.txns
        assert await s.count("todo", OWNER) == 0  # nothing of the refused batches was written
        results = await s.write([Insert(k(f"d{i}"), {}) for i in range(200)], NOW)
        assert len(results) == 200 and await s.count("todo", OWNER) == 200

    run(ots, body)


# ---------------------------------------------------------------------- queries


def test_queries_not_restricted_to_one_owner_are_refused_without_scanning(ots: Any) -> None:
    fake = ots[0]

    async def body(s: TableStoreStore) -> None:
        await s.write([Insert(k("a"), {"shared": True})], NOW)
        scans = fake.calls["GetRange"]
        for where in (TRUE, Cmp(("shared",), "eq", True), Or((OWNER, Cmp(("shared",), "eq", True)))):
            with pytest.raises(InvalidArgument, match=OTS_CROSS_OWNER):
                await s.query("todo", where, [], 10, None)
            with pytest.raises(InvalidArgument, match=OTS_CROSS_OWNER):
                await s.count("todo", where)
        assert fake.calls["GetRange"] == scans
        # Contradictory owners match nothing, without a request either.
        both = And((OWNER, Cmp(("uid",), "eq", "u2")))
        assert await s.query("todo", both, [], 10, None) == [] and await s.count("todo", both) == 0
        assert fake.calls["GetRange"] == scans
        # The same filter within one owner is served.
        assert len(await s.query("todo", And((OWNER, Cmp(("shared",), "eq", True))), [], 10, None)) == 1

    run(ots, body)


def test_sorting_other_than_by_id_is_bounded(ots: Any) -> None:
    async def body(s: TableStoreStore) -> None:
        await s.write([Insert(k(f"d{i}"), {"n": i}) for i in range(6)], NOW)
        rows = await s.query("todo", OWNER, [OrderKey(("n",), True)], 3, None)
        assert [orjson.loads(b)["n"] for _, b in rows] == [5, 4, 3]
        await s.write([Insert(k("d9"), {"n": 9})], NOW)
        with pytest.raises(InvalidArgument, match="more than 6 documents"):
            await s.query("todo", OWNER, [OrderKey(("n",))], 3, None)
        assert (
            len(await s.query("todo", OWNER, [OrderKey(("id",), True)], 100, None)) == 7
        )  # key order: no bound

    run(ots, body, max_sort=6)


DOCS: list[dict[str, Any]] = [
    {"id": i, "n": n, "t": t, "o": {"a": a}}
    for i, n, t, a in [
        ("a", 3, "x", 1),
        ("b", 1, "y", None),
        ("c", True, "x", "s"),
        ("d", 2.5, None, 1),
        ("e", "s", "é", [1]),
        ("f", None, "😀", 2),
        ("g", 3, "x", 0),
        ("h", -1, "", 1),
    ]
] + [{"id": "i"}, {"id": "j", "n": [1, 2]}, {"id": "k", "n": {"x": 1}}]


@pytest.mark.parametrize(
    "order",
    [
        [],
        [OrderKey(("id",))],
        [OrderKey(("id",), True)],
        [OrderKey(("n",))],
        [OrderKey(("n",), True)],
        [OrderKey(("t",)), OrderKey(("n",), True)],
        [OrderKey(("o", "a"), True), OrderKey(("id",))],
    ],
)
def test_pages_follow_the_reference_order(ots: Any, order: list[OrderKey]) -> None:
    where: Filter = And((OWNER, Cmp(("t",), "ne", "y")))

    async def body(s: TableStoreStore) -> None:
        await s.write([Insert(k(d["id"]), {f: v for f, v in d.items() if f != "id"}) for d in DOCS], NOW)
        await s.write([Insert(k("zz", uid="u2"), {"t": "x"})], NOW)  # another owner: never listed
        stored = [orjson.loads(await s.get_document(k(d["id"])) or b"") for d in DOCS]
        want = [d["id"] for d in reference.sorted_docs(stored, where, order)]
        got: list[str] = []
        after = None
        while True:
            rows = await s.query("todo", where, order, 3, after)
            got += [orjson.loads(b)["id"] for _, b in rows]
            if len(rows) < 3:
                break
            after = orjson.loads(orjson.dumps(rows[-1][0]))  # positions round-trip through JSON
        assert got == want
        assert await s.count("todo", where) == len(want)

    run(ots, body)


@settings(max_examples=300, deadline=None)
@given(ROWS, FILTERS, ORDERS)
def test_python_evaluation_matches_the_reference(rows: Any, where: Filter, order: list[OrderKey]) -> None:
    docs = [doc for _, doc in rows]
    assert [d for d in docs if matches(d, where)] == [d for d in docs if reference.matches(d, where)]
    key = position_key(order)
    mine = sorted((d for d in docs if matches(d, where)), key=lambda d: key(position(d, order)))
    assert mine == reference.sorted_docs(docs, where, order)


# --------------------------------------------------- users, sessions, rate limits


def test_concurrent_first_logins_make_one_user(ots: Any) -> None:
    async def body(a: TableStoreStore, b: TableStoreStore) -> None:
        ident = Identity("wechat", "app", "same", None)
        got = await asyncio.gather(
            *(s.upsert_identity(ident, f"u_{i}", 1.0) for i, s in enumerate([a, b] * 3))
        )
        assert len({uid for uid, _ in got}) == 1 and sum(new for _, new in got) == 1

    run(ots, body, n=2)


def test_rate_buckets_are_atomic_across_instances(ots: Any) -> None:
    async def body(a: TableStoreStore, b: TableStoreStore) -> None:
        results = await asyncio.gather(
            *(s.take_tokens("k", 0.001, 5, 1, 1000.0) for _ in range(5) for s in (a, b))
        )
        assert sum(g for g, _ in results) == 5
        assert all(w > 900 for g, w in results if g == 0)
        assert await a.take_tokens("x", 2.0, 4, 4, 0.0) == (4, 0.0)
        assert (await b.take_tokens("x", 2.0, 4, 1, 0.0))[0] == 0
        assert (await b.take_tokens("x", 2.0, 4, 10, 1.0))[0] == 2  # refilled 2 tokens in 1 s

    run(ots, body, n=2)


# --------------------------------------------------------------- the fake's checks


def _client(endpoint: str, instance: str, secret: str, token: str | None = OTS_TOKEN) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tablestore

    return tablestore.OTSClient(
        endpoint,
        OTS_KEY_ID,
        secret,
        instance,
        sts_token=token,
        enable_native=False,
        retry_policy=tablestore.NoRetryPolicy(),
        logger_name="tests.tablestore",
    )


def test_fake_refuses_a_wrong_signature_as_tablestore_does(ots: Any) -> None:
    fake, endpoint, instance = ots
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tablestore import OTSServiceError

    assert isinstance(_client(endpoint, instance, OTS_SECRET).list_table(), tuple)
    refused = len(fake.refused)
    for secret, token, why in [
        ("wrong-secret", OTS_TOKEN, "Signature mismatch"),
        (OTS_SECRET, "other-token", "security token"),
        (OTS_SECRET, None, "security token"),
    ]:
        with pytest.raises(OTSServiceError) as e:
            _client(endpoint, instance, secret, token).list_table()
        assert e.value.get_http_status() == 403 and e.value.get_error_code() == "OTSAuthFailed"
        assert why in e.value.get_error_message()
    assert len(fake.refused) == refused + 3

    # The store turns a refusal into Internal, without a secret in the message.
    async def main() -> None:
        s = TableStoreStore(instance, endpoint, OTS_KEY_ID, "wrong-secret", OTS_TOKEN)
        with pytest.raises(Internal, match="refused the server's credentials") as e:
            await s.open()
        assert "wrong-secret" not in str(e.value)

    asyncio.run(main())


def test_fake_checks_the_body_against_its_signed_md5(ots: Any) -> None:
    _, endpoint, instance = ots
    client = _client(endpoint, instance, OTS_SECRET)
    send = client.connection.send_receive
    client.connection.send_receive = lambda url, headers, body: send(url, headers, body + b"\x00")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tablestore import OTSServiceError

    with pytest.raises(OTSServiceError) as e:
        client.list_table()
    assert e.value.get_error_code() == "OTSAuthFailed" and "MD5" in e.value.get_error_message()


# ------------------------------------------------------------------------ config


def test_config_parses_tablestore_urls() -> None:
    url = "tablestore://my-inst?endpoint=https://my-inst.cn-hangzhou.ots.aliyuncs.com/&prefix=app_"
    c = parse_config(base_raw(database={"url": url}), environ=OTS_ENV)
    loc = c.database.tablestore
    assert loc is not None and (loc.instance, loc.endpoint, loc.prefix) == (
        "my-inst",
        "https://my-inst.cn-hangzhou.ots.aliyuncs.com",
        "app_",
    )
    assert (c.database.access_key_id, c.database.access_key_secret, c.database.security_token) == (
        OTS_KEY_ID,
        OTS_SECRET,
        OTS_TOKEN,
    )
    assert OTS_SECRET not in repr(c.database)


@pytest.mark.parametrize(
    ("url", "environ", "message"),
    [
        ("tablestore://inst", OTS_ENV, "endpoint parameter is required"),
        ("tablestore://inst?endpoint=ftp://x", OTS_ENV, "not an http"),
        ("tablestore://i?endpoint=http://x", OTS_ENV, "not a TableStore instance name"),
        ("tablestore://inst/path?endpoint=http://x", OTS_ENV, "expected tablestore://"),
        ("tablestore://inst?endpoint=http://x&region=y", OTS_ENV, "unknown parameter 'region'"),
        ("tablestore://inst?endpoint=http://x&endpoint=http://y", OTS_ENV, "given twice"),
        ("tablestore://inst?endpoint=http://x&prefix=a-b", OTS_ENV, "not a table name prefix"),
        ("tablestore://inst?endpoint=http://x", {}, "ALIBABA_CLOUD_ACCESS_KEY_ID"),
        ("mysql://x", {}, "tablestore://INSTANCE"),
    ],
)
def test_config_refuses_malformed_tablestore_urls(url: str, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=r"database\.url") as e:
        parse_config(base_raw(database={"url": url}), environ=environ)
    assert message in str(e.value)


def test_fresh_runtime_credentials_replace_expired_ones(ots: Any) -> None:
    """FC hands every invocation its role's current credentials; the store signs with them
    from then on (the ones read at start may have expired on a long-lived instance)."""
    fake, _, _ = ots

    async def body(s: TableStoreStore) -> None:
        await s.write([Put(k("a"), {"n": 1})], NOW)
        fake.keys = {"STS.rotated": ("rotated-secret", "rotated-token")}  # the old ones expired
        with pytest.raises(Internal, match="credentials"):
            await s.get_document(k("a"))
        s.use_credentials("STS.rotated", "rotated-secret", "rotated-token")
        assert orjson.loads(await s.get_document(k("a")) or b"null")["n"] == 1
        s.use_credentials("STS.rotated", "rotated-secret", "rotated-token")  # same: kept as is

    keys = dict(fake.keys)
    try:
        run(ots, body)
    finally:
        fake.keys = keys  # the fake server is shared by the session's tests


# ------------------------------------------------------------ outages


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ((503, "OTSServerUnavailable", "Server is unavailable."), Unavailable, "the database is unavailable"),
        ((503, "OTSServerBusy", "Server is busy."), Unavailable, "the database is unavailable"),
        ((403, "OTSQuotaExhausted", "Too frequently table operations."), Unavailable, "unavailable"),
        ((500, "OTSInternalServerError", "Internal server error."), Unavailable, "unavailable"),
        ((400, "OTSParameterInvalid", "Bad column."), Internal, "the database refused a request"),
    ],
)
def test_outages_are_unavailable_refusals_internal(
    ots: Any, fault: tuple[int, str, str], error: type[Exception], message: str
) -> None:
    fake, _, _ = ots

    async def body(store: TableStoreStore) -> None:
        fake.fault = fault
        try:
            with pytest.raises(error, match=message) as e:
                await store.get_document(k("a"))
            assert type(e.value) is error
        finally:
            fake.fault = None
        assert await store.get_document(k("a")) is None  # back once the service is

    run(ots, body)


def test_an_unreachable_endpoint_is_unavailable(ots: Any) -> None:
    from tests.fakes.server import free_port

    _, _, instance = ots

    async def main() -> None:
        store = TableStoreStore(
            instance, f"http://127.0.0.1:{free_port()}", OTS_KEY_ID, OTS_SECRET, OTS_TOKEN, timeout=2
        )
        with pytest.raises(Unavailable, match="the database is unavailable") as e:
            await store.open()
        assert e.value.status == 503 and e.value.details["retryAfter"] >= 1

    asyncio.run(main())


def test_a_query_past_the_time_budget_is_deadline_exceeded(ots: tuple[FakeTableStore, str, str]) -> None:
    # Issue 18: every query has a time budget (limits.query_time) on TableStore too; the
    # store evaluates filters itself, so it checks the clock per document it reads.
    absent = Or(tuple(Contains(("arr",), v) for v in range(1, 11)))

    async def body(s: TableStoreStore) -> None:
        for i in range(30):
            await s.write([Put(k(f"d{i:02}"), {"arr": [0] * 100_000})], "t")
        for run_query in (
            lambda: s.count("todo", And((OWNER, absent))),
            lambda: s.query("todo", And((OWNER, absent)), (), 10, None),
        ):
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded) as info:
                await run_query()
            assert time.monotonic() - started < 1.5
            assert info.value.details == {"limit": "limits.query_time", "max": 0.2}

    run(ots, body, query_time=0.2)


def test_a_costly_count_does_not_hold_the_loop(ots: tuple[FakeTableStore, str, str]) -> None:
    # Issue 18: the store evaluates filters in Python, which takes long over large arrays
    # (here: 1 never is True, but == says it may be, so each $contains compares every
    # element); it does so on a worker thread, so the event loop keeps serving others.
    costly = Or(tuple(Contains(("arr",), 1) for _ in range(10)))

    async def body(s: TableStoreStore) -> None:
        for i in range(3):
            await s.write([Put(k(f"d{i:02}"), {"arr": [True] * 100_000})], "t")
        async with Ticker() as ticker:
            assert await s.count("todo", And((OWNER, costly))) == 0
        ticker.assert_free()

    run(ots, body, query_time=30)
