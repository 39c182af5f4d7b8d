"""Control characters in identifier-like strings (issue 18, point 6).

``owner``, document ids and the owner/id parts of a cursor position reach SQL as key
columns. PostgreSQL answered a U+0000 in any of them with a driver error (a 500 and a
traceback); now each is refused with InvalidArgument on every backend, before any SQL.
Strings that are values (a ``where`` value, a sort value in a cursor) may hold other
control characters (a title may hold a newline); a U+0000 there matches nothing that can be
stored and is refused cleanly too. Hypothesis fuzzes every place over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minibase.data import cursor
from minibase.data.filters import Cmp
from minibase.errors import InvalidArgument
from minibase.store.postgres import PostgresStore
from minibase.store.records import Key
from tests.support.config import Live
from tests.support.data import is_tablestore

CONTROL = st.characters(codec="utf-8", categories=["Cc"])
PLAIN = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
# A string holding at least one control character, U+0000 often among them.
TAINTED = st.builds(lambda a, c, b: a + c + b, PLAIN, st.one_of(st.just("\x00"), CONTROL), PLAIN)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # One client for a test's hundreds of requests: a new one per request loads the CA
    # bundle each time, which made the fuzz tests slow enough to time out on a busy machine.
    with httpx.Client(timeout=30) as client:
        yield client


def post(http: httpx.Client, live: Live, sid: str, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    r = http.post(live.url + "/invoke/db", json=event, headers={"Authorization": f"Bearer {sid}"})
    return r.status_code, orjson.loads(r.content)


def refused(answer: tuple[int, dict[str, Any]], event: dict[str, Any]) -> None:
    status, body = answer
    assert status == 400 and body["error"]["code"] == "InvalidArgument", (event, status, body)


def test_control_characters_in_owner_and_ids_are_invalid_arguments(
    data_live: Live, http: httpx.Client
) -> None:
    alice = data_live.client("dev:alice")
    sid, uid = alice.session_id, alice.uid
    assert sid and uid
    for i in range(3):
        alice.db("insert", obj={"id": f"t{i}", "title": f"line\nbreak {i}"})
    page = alice.invoke("db", {"op": "query", "orderBy": [["title", "asc"]], "limit": 1})
    fingerprint, position = cursor.decode(page["next"])

    @FUZZ
    @given(s=TAINTED, which=st.sampled_from(["uid", "id", "sort"]))
    @example(s="\x00", which="uid")  # the review's finding, first
    @example(s="\x00", which="id")
    def fuzz(s: str, which: str) -> None:
        events: list[dict[str, Any]] = [
            {"op": "get", "id": "t0", "owner": s},
            {"op": "get", "id": s},
            {"op": "update", "id": "t0", "owner": s, "set": {"n": 1}},
            {"op": "update", "id": s, "set": {"n": 1}},
            {"op": "remove", "id": "t0", "owner": s},
            {"op": "remove", "id": s},
            {"op": "put", "obj": {"id": s}},
            {"op": "insert", "obj": {"id": s}},
            {"op": "batch", "ops": [{"op": "get", "id": "t0", "owner": s}]},
            {"op": "batch", "ops": [{"op": "update", "id": s, "set": {"n": 1}}]},
        ]
        if not is_tablestore(data_live):  # TableStore refuses cross-owner listings anyway
            events += [{"op": "query", "owner": s}, {"op": "count", "owner": s}]
        pos = list(position)
        if which == "sort":
            pos[2] = s  # the title's text: a value, may hold newlines, never U+0000
        else:
            pos[-2 if which == "uid" else -1] = s
        forged = {"op": "query", "orderBy": [["title", "asc"]], "cursor": cursor.encode([fingerprint, pos])}
        for event in events:
            refused(post(http, data_live, sid, event), event)
        status, body = post(http, data_live, sid, forged)
        if which == "sort" and "\x00" not in s:
            assert status == 200, body  # a legitimate kind of position: pages on
        else:
            refused((status, body), forged)

    fuzz()


def test_control_characters_in_values_never_answer_500(data_live: Live, http: httpx.Client) -> None:
    alice = data_live.client("dev:alice")
    sid = alice.session_id
    assert sid
    alice.db("insert", obj={"id": "a", "title": "x"})

    @FUZZ
    @given(
        s=TAINTED,
        field=st.sampled_from(["title", "id", "o.k"]),
        op=st.sampled_from(["$eq", "$ne", "$gt", "$in", "$prefix", "$contains"]),
    )
    @example(s="a\x00", field="title", op="$eq")
    def fuzz(s: str, field: str, op: str) -> None:
        value: Any = [s] if op == "$in" else s
        owner = {} if not is_tablestore(data_live) else {"owner": alice.uid}
        for event in (
            {"op": "query", "where": {field: {op: value}}, **owner},
            {"op": "count", "where": {"$or": [{field: {op: value}}, {"title": s}]}, **owner},
            {"op": "insert", "obj": {"title": s}},
            {"op": "update", "id": "a", "set": {"title": s}},
        ):
            status, body = post(http, data_live, sid, event)
            if status == 200:
                continue
            assert status == 400 and body["error"]["code"] == "InvalidArgument", (event, status, body)
            # Only U+0000 is refused in a value: other control characters are data.
            assert "\x00" in s, (event, body)

    fuzz()


def test_postgres_store_refuses_nul_in_any_bound_string(pg_url: str) -> None:
    """Below the validators: whatever string reaches the PostgreSQL store (a key column, a
    session id), a U+0000 is InvalidArgument, never a driver error and a 500."""

    async def run() -> None:
        store = PostgresStore(pg_url)
        await store.open()
        try:
            for call in (
                store.get_document(Key("c", "u\x00", "x")),
                store.get_document(Key("c", "u", "x"), Cmp(("title",), "eq", "a\x00")),
                store.count("c", Cmp(("uid",), "eq", "u\x00")),
                store.session_by_id("s\x00"),
                store.get_user("u\x00"),
            ):
                with pytest.raises(InvalidArgument):
                    await call
        finally:
            await store.close()

    asyncio.run(run())
