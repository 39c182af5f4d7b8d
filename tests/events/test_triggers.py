"""After-write triggers: the outbox is written in the write's own transaction; the dispatcher
delivers each event at least once, in order per document, with retries and backoff, across
instances; delivered events are pruned. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minibase.config import Config
from minibase.core import Minibase
from minibase.errors import PermissionDenied
from minibase.events.runner import Dispatcher
from minibase.store import events as events_store
from minibase.store.records import Key
from minibase.store.writes import Insert, Put, Remove, Update
from tests.support.events import handled

MODULE = """
import json, os
from minibase.events import after_write

LOG = {log!r}

def record(line):
    with open(LOG, "a") as f:
        f.write(json.dumps(line) + "\\n")

@after_write("orders")
async def on_order(ctx, change):
    assert ctx.uid is None
    if (change["new"] or {}).get("fail") and not os.path.exists(LOG + ".ok"):
        raise RuntimeError("downstream is down")
    record({"t": "all", "op": change["op"], "id": change["id"], "uid": change["uid"],
            "old": (change["old"] or {}).get("n"), "new": (change["new"] or {}).get("n"), "seq": change["seq"]})

@after_write("orders", ops=["remove"])
def on_remove(ctx, change):
    record({"t": "remove", "id": change["id"], "old": change["old"]["n"], "new": change["new"]})
"""


def source() -> str:
    return MODULE.replace("{log!r}", "'{log}'")


def lines(tmp_path: Path, t: str = "all") -> list[dict[str, Any]]:
    return [x for x in (json.loads(line) for line in handled(tmp_path)) if x["t"] == t]


async def started(config: Config) -> Minibase:
    core = Minibase.from_config(config)
    await core.start()
    return core


def test_old_and_new_documents_in_order_per_document(
    events_config: Callable[..., Config], tmp_path: Path
) -> None:
    async def run() -> None:
        core = await started(events_config(source()))
        try:
            assert core.events is not None
            a, b = Key("orders", "u1", "a"), Key("orders", "u2", "b")
            await core.store.write([Insert(a, {"n": 1}), Insert(b, {"n": 10})], "2026-01-01T00:00:00.000Z")
            await core.store.write([Put(a, {"n": 2})], "2026-01-01T00:00:01.000Z")
            await core.store.write([Update(a, lambda d: {"n": d["n"] + 1})], "2026-01-01T00:00:02.000Z")
            await core.store.write([Remove(a)], "2026-01-01T00:00:03.000Z")
            await core.store.write([Insert(Key("other", "u1", "x"), {"n": 5})], "2026-01-01T00:00:04.000Z")
            # A write that fails is rolled back whole: no event for it.
            with pytest.raises(PermissionDenied):
                await core.store.write(
                    [Insert(Key("orders", "u1", "z"), {"n": 9}, rule=_false())], "2026-01-01T00:00:05.000Z"
                )
            await core.events.dispatcher.drain()
        finally:
            await core.stop()

    asyncio.run(run())
    got = lines(tmp_path)
    by_doc = {d: [(x["op"], x["old"], x["new"]) for x in got if x["id"] == d] for d in ("a", "b")}
    assert by_doc == {
        "a": [("insert", None, 1), ("update", 1, 2), ("update", 2, 3), ("remove", 3, None)],
        "b": [("insert", None, 10)],
    }
    assert {x["id"] for x in got} == {"a", "b"}  # not "other", not the refused "z"
    assert [x["uid"] for x in got if x["id"] == "a"] == ["u1"] * 4
    assert lines(tmp_path, "remove") == [{"t": "remove", "id": "a", "old": 3, "new": None}]


def _false() -> Any:
    from minibase.data.filters import FALSE

    return FALSE


def test_a_failing_trigger_is_retried_with_backoff_and_blocks_only_its_document(
    events_config: Callable[..., Config], tmp_path: Path
) -> None:
    now = [1_000_000.0]

    async def run() -> None:
        core = await started(events_config(source()))
        try:
            assert core.events is not None
            ev = core.events
            ev.clock = lambda: now[0]
            d = Dispatcher(ev, backoff=1.0, max_backoff=4.0, max_attempts=50)
            a, b = Key("orders", "u", "a"), Key("orders", "u", "b")
            await core.store.write([Insert(a, {"n": 1, "fail": True})], "t")
            await core.store.write([Update(a, lambda doc: {"n": 2})], "t")  # queued behind the failure
            await core.store.write([Insert(b, {"n": 7})], "t")
            await d.run_once()
            assert [(x["id"], x["new"]) for x in lines(tmp_path)] == [("b", 7)]
            # Backoff: not retried before 1 s, then 2 s, then 4 s (capped).
            delays = []
            for _ in range(4):
                start = now[0]
                while await d.run_once() == 0:
                    now[0] += 0.25
                delays.append(now[0] - start)
            assert delays == [1.0, 2.0, 4.0, 4.0]
            (tmp_path / "handled.log.ok").write_text("")  # downstream is back
            now[0] += 5
            await d.drain()
            assert [(x["id"], x["op"], x["new"]) for x in lines(tmp_path)] == [
                ("b", "insert", 7),
                ("a", "insert", 1),
                ("a", "update", 2),
            ]
            assert await ev.store.pending_count() == 0
        finally:
            await core.stop()

    asyncio.run(run())


def test_an_event_is_dropped_after_max_attempts_and_the_next_one_goes(
    events_config: Callable[..., Config], tmp_path: Path
) -> None:
    async def run() -> None:
        core = await started(events_config(source()))
        try:
            assert core.events is not None
            d = Dispatcher(core.events, backoff=0.0, max_attempts=3)
            a = Key("orders", "u", "a")
            await core.store.write([Insert(a, {"n": 1, "fail": True})], "t")
            await core.store.write([Update(a, lambda doc: {"n": 2})], "t")
            await d.drain()
            assert [(x["op"], x["new"]) for x in lines(tmp_path)] == [("update", 2)]
        finally:
            await core.stop()

    asyncio.run(run())


def test_a_lease_of_a_dead_dispatcher_is_taken_over(
    events_config: Callable[..., Config], tmp_path: Path
) -> None:
    """An instance that claimed events and died (never answered): after the lease another
    instance delivers them, in order."""
    now = [2_000_000.0]

    async def run() -> None:
        config = events_config(source())
        a_core, b_core = await started(config), await started(config)
        try:
            assert a_core.events is not None and b_core.events is not None
            for ev in (a_core.events, b_core.events):
                ev.clock = lambda: now[0]
            key = Key("orders", "u", "k")
            await a_core.store.write([Insert(key, {"n": 1})], "t")
            await a_core.store.write([Update(key, lambda doc: {"n": 2})], "t")
            dead = Dispatcher(a_core.events, lease=30.0)
            claimed = await a_core.events.store.claim_deliveries(
                dead.targets, "dead-instance", now[0], 30.0, 10
            )
            assert [c.change.seq for c in claimed] != []  # the head of the document, leased
            alive = Dispatcher(b_core.events, lease=30.0)
            assert await alive.run_once() == 0  # leased: not delivered twice meanwhile
            now[0] += 31
            await alive.drain()
            assert [(x["op"], x["new"]) for x in lines(tmp_path)] == [("insert", 1), ("update", 2)]
        finally:
            await a_core.stop()
            await b_core.stop()

    asyncio.run(run())


def test_two_instances_deliver_every_event_in_order_per_document(
    events_config: Callable[..., Config], tmp_path: Path
) -> None:
    async def run() -> None:
        config = events_config(source())
        cores = [await started(config), await started(config)]
        try:
            for c in cores:
                c.events.start_background()  # type: ignore[union-attr]
            keys = [Key("orders", f"u{i % 3}", f"d{i}") for i in range(12)]
            for round_ in range(3):
                for i, k in enumerate(keys):
                    writer = cores[(i + round_) % 2]
                    if round_ == 0:
                        await writer.store.write([Insert(k, {"n": 0})], "t")
                    else:
                        await writer.store.write([Put(k, {"n": round_})], "t")
            for _ in range(200):
                if len(lines(tmp_path)) >= 36:
                    break
                await asyncio.sleep(0.05)
        finally:
            for c in cores:
                await c.stop()

    asyncio.run(run())
    got = lines(tmp_path)
    for i in range(12):
        seen = [x["new"] for x in got if x["id"] == f"d{i}"]
        # At least once, in order: duplicates could only repeat a delivered event in place.
        assert [n for j, n in enumerate(seen) if j == 0 or seen[j - 1] != n] == [0, 1, 2], (i, seen)
    assert len(got) == 36


def test_delivered_events_are_pruned(
    events_config: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All of them at once, a batch per write job: one batch a round (1,000 in 10 s) let the
    outbox grow without end under a steady 100 writes a second."""
    monkeypatch.setattr(events_store, "PRUNE_BATCH", 2)  # five events: three batches

    async def run() -> None:
        core = await started(events_config(source()))
        try:
            assert core.events is not None
            d = Dispatcher(core.events, keep=0.0)
            for i in range(5):
                await core.store.write([Insert(Key("orders", "u", f"p{i}"), {"n": i})], "t")
            await core.store.write([Insert(Key("other", "u", "x"), {"n": 1})], "t")  # no route: no event
            assert len(await core.events.store.changes_after(0, 100)) == 5
            await d.drain()
            d._last_prune = 0.0
            await d.run_once()
            assert await core.events.store.changes_after(0, 100) == []
            assert await core.events.store.pending_count() == 0
        finally:
            await core.stop()

    asyncio.run(run())
    assert len(lines(tmp_path)) == 5


def test_a_backlog_is_pruned_a_batch_per_write_job(
    events_config: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_store, "PRUNE_BATCH", 2)

    async def run() -> None:
        core = await started(events_config(source()))
        try:
            assert core.events is not None
            store = core.events.store
            for i in range(5):
                await core.store.write([Insert(Key("orders", "u", f"p{i}"), {"n": i})], "t")
            await Dispatcher(core.events).drain()  # delivered: nothing pending on them
            calls: list[int] = []
            real = store.prune

            async def counted(before: float, limit: int) -> int:
                calls.append(limit)
                return await real(before, limit)

            monkeypatch.setattr(store, "prune", counted)
            monkeypatch.setattr(events_store, "PRUNE_BATCHES", 2)
            assert await events_store.prune_outbox(store, time.time() + 1) == 4  # at most 2 x 2
            assert len(await store.changes_after(0, 100)) == 1
            monkeypatch.setattr(events_store, "PRUNE_BATCHES", 100)
            calls.clear()
            assert await events_store.prune_outbox(store, time.time() + 1) == 1
            assert calls == [2]  # fewer than a batch: done
            assert await store.changes_after(0, 100) == []
        finally:
            await core.stop()

    asyncio.run(run())


ADMIN_MODULE = """
from minibase import Conflict, NotFound
from minibase.events import after_write

@after_write("orders", ops=["insert"])
async def count_orders(ctx, change):
    # ctx.admin acts as the app: a per-user counter no client may write. Events of other
    # documents run concurrently: two may create the counter at once.
    uid = change["uid"]
    try:
        await ctx.admin.db.update("order_counts", uid, owner=uid, inc={"n": 1})
    except NotFound:
        try:
            await ctx.admin.db.insert("order_counts", {"id": uid, "n": 1}, owner=uid)
        except Conflict:
            await ctx.admin.db.update("order_counts", uid, owner=uid, inc={"n": 1})
"""


def test_handlers_act_as_the_app_through_ctx_admin(
    events_config: Callable[..., Config], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import orjson

    async def run() -> list[Any]:
        core = await started(events_config(ADMIN_MODULE))
        try:
            assert core.events is not None
            for i in range(3):
                await core.store.write([Insert(Key("orders", "u1", f"o{i}"), {"n": i})], "t")
            await core.store.write([Insert(Key("orders", "u2", "x"), {"n": 1})], "t")
            await core.events.dispatcher.drain()
            rows = await core.store.query("order_counts", _true(), [], 10, None)
            return sorted((orjson.loads(body)["uid"], orjson.loads(body)["n"]) for _, body in rows)
        finally:
            await core.stop()

    with caplog.at_level(logging.INFO, logger="minibase.audit"):
        counts = asyncio.run(run())
    assert counts == [("u1", 3), ("u2", 1)]
    audits = [r.getMessage() for r in caplog.records if '"admin.db"' in r.getMessage()]
    assert audits and all('"count_orders"' in m for m in audits)


def _true() -> Any:
    from minibase.data.filters import TRUE

    return TRUE


def test_the_dispatcher_survives_a_failing_round(
    events_config: Callable[..., Config], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A round that fails (the database away, a bug) is logged; the dispatcher goes on."""
    import logging

    async def run() -> None:
        core = await started(events_config(source()))
        try:
            ev = core.events
            assert ev is not None
            real = ev.store.claim_deliveries
            failures = [RuntimeError("the database went away")]

            async def flaky(*a: Any, **kw: Any) -> Any:
                if failures:
                    raise failures.pop()
                return await real(*a, **kw)

            ev.store.claim_deliveries = flaky  # type: ignore[method-assign]
            ev.dispatcher.poll = 0.05
            ev.start_background()
            await core.store.write([Insert(Key("orders", "u", "s1"), {"n": 1})], "t")
            for _ in range(100):
                if lines(tmp_path):
                    break
                await asyncio.sleep(0.05)
        finally:
            await core.stop()

    with caplog.at_level(logging.ERROR, logger="minibase.events"):
        asyncio.run(run())
    assert [x["id"] for x in lines(tmp_path)] == ["s1"]
    assert any("failed a round" in r.getMessage() for r in caplog.records)
