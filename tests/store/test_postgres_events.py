"""Following PostgreSQL's outbox in commit order: ``seq`` is taken before commit, so a
transaction can commit a higher ``seq`` while a lower one is still in flight. ``follow``
must neither pass over the lower one (a gap) nor return a row twice."""

from __future__ import annotations

import asyncio

import asyncpg

from minibase.store.postgres import PostgresStore
from minibase.store.postgres_events import PostgresEvents

INSERT = (
    "INSERT INTO outbox (at, op, collection, uid, doc_id) VALUES (0, 'insert', 'c', 'u', $1) RETURNING seq"
)


def test_follow_waits_for_a_lower_seq_still_in_flight(pg_url: str) -> None:
    async def main() -> None:
        store = PostgresStore(pg_url)
        await store.open()
        events = PostgresEvents(pg_url)
        await events.open()
        one, two = await asyncpg.connect(pg_url), await asyncpg.connect(pg_url)
        try:
            pos = await events.head()
            t1, t2 = one.transaction(), two.transaction()
            await t1.start()
            await one.fetchval("SELECT pg_current_xact_id()")  # T1 gets the lower txid…
            await t2.start()
            low = await two.fetchval(INSERT, "late")  # …T2 takes the lower seq
            high = await one.fetchval(INSERT, "early")
            assert low < high
            await t1.commit()  # the higher seq commits first
            seen, pos = await events.follow(pos, 100)
            assert [c.id for c in seen] == ["early"]
            await t2.commit()
            more, pos = await events.follow(pos, 100)
            assert [c.id for c in more] == ["late"]  # not passed over
            again, _ = await events.follow(pos, 100)
            assert again == []  # nor returned twice
        finally:
            await one.close()
            await two.close()
            await events.close()
            await store.close()

    asyncio.run(main())


def test_a_server_starting_up_is_an_outage_not_a_crash() -> None:
    """PostgreSQL in recovery after a crash answers 57P03 "not yet accepting connections":
    the outbox follower must see that as the outage it is (Unavailable: it waits and tries
    again, logging a warning), not as an unexpected error. The pool stands in for a server
    in that state (asyncpg's own exception); the restart itself is tests/test_load_script.py."""
    from minibase.errors import Unavailable

    class Recovering:
        async def fetch(self, *args: object) -> None:
            raise asyncpg.exceptions.CannotConnectNowError(
                "the database system is not yet accepting connections"
            )

        execute = fetch

    class Listening:
        def is_closed(self) -> bool:
            return False

    async def main() -> None:
        events = PostgresEvents("postgresql://unused")
        events._pool = Recovering()  # type: ignore[assignment]
        events._listener = Listening()  # type: ignore[assignment]  # follow goes straight to the pool
        for call in (events.follow((0, 0), 10), events.head(), events.pending_count()):
            try:
                await call
            except Unavailable:
                continue
            raise AssertionError("no Unavailable")

    asyncio.run(main())
