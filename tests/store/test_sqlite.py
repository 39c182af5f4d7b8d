"""The SQLite store: WAL, serialized durable writes, concurrent reads, migrations."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from minibase.data.filters import TRUE
from minibase.errors import RETRY_AFTER, Unavailable
from minibase.store import sqlite_writer
from minibase.store.records import Key
from minibase.store.sqlite import MIGRATIONS, SQLiteStore
from minibase.store.sqlite_writer import outage
from minibase.store.writes import Put


def run(path: Path, body: Callable[[SQLiteStore], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_wal_and_full_sync(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", "a"), {"x": 1})], "t")

    run(tmp_path / "db", body)
    conn = sqlite3.connect(tmp_path / "db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_acknowledged_writes_are_visible_to_a_new_process_view(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        await asyncio.gather(*(store.write([Put(Key("c", "u", f"d{i}"), {"i": i})], "t") for i in range(300)))
        # Read by an independent connection while the store is still open.
        n = sqlite3.connect(tmp_path / "db").execute("SELECT count(*) FROM documents").fetchone()[0]
        assert n == 300

    run(tmp_path / "db", body)


def test_one_failing_job_does_not_undo_its_group(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        def bad(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO users (uid, created) VALUES ('u_bad', 0)")
            raise ValueError("boom")

        results = await asyncio.gather(
            *(store.write([Put(Key("c", "u", f"d{i}"), {})], "t") for i in range(50)),
            store._writer.run(bad),
            *(store.write([Put(Key("c", "u", f"e{i}"), {})], "t") for i in range(50)),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1 and str(errors[0]) == "boom"
        assert len(await store.query("c", TRUE, (), 1000, None)) == 100
        assert await store.get_user("u_bad") is None  # the failed job's own write rolled back

    run(tmp_path / "db", body)


def test_concurrent_upserts_count_every_version(tmp_path: Path) -> None:
    async def body(store: SQLiteStore) -> None:
        await asyncio.gather(*(store.write([Put(Key("c", "u", "same"), {"n": i})], "t") for i in range(200)))
        doc = orjson.loads(await store.get_document(Key("c", "u", "same")) or b"null")
        assert doc["_version"] == 200

    run(tmp_path / "db", body)


def test_data_survives_restart(tmp_path: Path) -> None:
    async def write(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", "a"), {"keep": True})], "t")

    async def read(store: SQLiteStore) -> Any:
        return await store.get_document(Key("c", "u", "a"))

    run(tmp_path / "db", write)
    assert orjson.loads(run(tmp_path / "db", read))["keep"] is True


def test_opening_waits_while_another_connection_switches_the_file(tmp_path: Path) -> None:
    """Another writer holds the write lock of a fresh (rollback-journal) file, as one does
    mid-way through its own switch to WAL: SQLite refuses the second switch at once,
    without its busy handler (it would deadlock), so opening tries again until it is free."""
    path = tmp_path / "db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE held (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO held VALUES (1)")
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    try:
        run(path, lambda store: store.write([Put(Key("c", "u", "a"), {"x": 1})], "t"))
    finally:
        release.join()
        other.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 1


def _open_at_once(paths: list[str], barrier: Any, errors: Any) -> None:
    """For each fresh file: wait for the other processes, then open (WAL switch and
    migrations) and write, all at the same moment."""

    async def write(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", f"p{os.getpid()}"), {"x": 1})], "t")

    for path in paths:
        barrier.wait(30)
        try:
            run(Path(path), write)
        except Exception as e:  # reported to the parent, which fails the test with it
            errors.put(f"{path}: {type(e).__name__}: {e}")


def test_processes_opening_one_fresh_file_at_once(tmp_path: Path) -> None:
    """``serve --workers N`` starts its workers at once on a fresh file: the WAL switch and
    the migrations of one wait for the other's instead of failing with "database is
    locked" (seen with two workers). Three processes, five fresh files."""
    paths = [str(tmp_path / f"db{i}") for i in range(5)]
    ctx = multiprocessing.get_context("spawn")
    barrier, errors = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(paths, barrier, errors)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    assert [p.exitcode for p in procs] == [0, 0, 0]
    for path in paths:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [
            (v,) for v, _ in MIGRATIONS
        ]
        assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 3


def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "db")
        await store.open()
        await store.close()
        with pytest.raises(RuntimeError):
            await store.write([Put(Key("c", "u", "a"), {})], "t")

    asyncio.run(main())


def test_rate_buckets_commit_without_fsync_and_leave_durable_writes_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of only rate-bucket jobs commits on the loop thread with synchronous=OFF;
    the connection is back to FULL for the next batch, and a mixed batch is durable."""
    levels: list[int] = []

    async def body(store: SQLiteStore) -> None:
        loop = asyncio.get_running_loop()
        hops: list[object] = []
        real = loop.run_in_executor

        def spy(executor: Any, fn: Any, *args: Any) -> Any:
            hops.append(fn)
            return real(executor, fn, *args)

        monkeypatch.setattr(loop, "run_in_executor", spy)

        def level(conn: sqlite3.Connection) -> None:
            levels.append(conn.execute("PRAGMA synchronous").fetchone()[0])

        assert (await store.take_tokens("k", 1.0, 5, 1, 0.0))[0] == 1
        assert sqlite_writer._commit not in hops  # no fsync to wait for
        await store.write([Put(Key("c", "u", "a"), {"x": 1})], "t")
        assert sqlite_writer._commit in hops
        await store._writer.run(level)
        hops.clear()
        # Mixed in one group: the batch is durable.
        await asyncio.gather(store.take_tokens("k", 1.0, 5, 1, 0.0), store._writer.run(level))
        assert sqlite_writer._commit in hops

    run(tmp_path / "db", body)
    assert levels == [2, 2]  # FULL whenever a durable job runs


def test_database_and_wal_are_owner_only(tmp_path: Path) -> None:
    """Issue 18: the database and its WAL were created 0644 (every user's data readable by
    any local account). Created 0600 like the secret key, -wal and -shm too, whatever the
    umask; a database an older version left 0644 is narrowed on open."""
    import os
    import stat

    old = os.umask(0o022)
    try:

        async def body(store: SQLiteStore) -> None:
            await store.write([Put(Key("c", "u", "a"), {"x": 1})], "t")
            await store.get_user("nobody")  # a reader connection too
            for suffix in ("", "-wal", "-shm"):
                mode = stat.S_IMODE(os.stat(f"{store.path}{suffix}").st_mode)
                assert mode == 0o600, (suffix, oct(mode))

        run(tmp_path / "db", body)

        legacy = tmp_path / "legacy.db"
        conn = sqlite3.connect(legacy)
        conn.execute("CREATE TABLE t (x)")
        conn.close()
        os.chmod(legacy, 0o644)
        run(legacy, body)
    finally:
        os.umask(old)


def lock_free(fd: int) -> bool:
    """Whether another process could take the write lock now (``fd``: its own open of it)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def test_processes_take_turns_through_the_write_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers of one database in several processes (serve --workers) wait on a flock of
    <db>-wlock, held from BEGIN to COMMIT: a write waits while another process holds it,
    goes through once it is released, and the file is owner-only."""
    import fcntl
    import os
    import stat

    path = tmp_path / "db"
    fd = os.open(f"{path}-wlock", os.O_RDWR | os.O_CREAT, 0o600)

    async def body(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", "a"), {"x": 1})], "t")
        assert stat.S_IMODE(os.stat(f"{path}-wlock").st_mode) == 0o600
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another worker in its transaction
        write = asyncio.ensure_future(store.write([Put(Key("c", "u", "b"), {"x": 2})], "t"))
        await asyncio.sleep(0.3)
        assert not write.done()  # waiting for the lock, not polling past it
        fcntl.flock(fd, fcntl.LOCK_UN)
        await write
        assert await store.get_document(Key("c", "u", "b")) is not None
        # While this store writes, the lock is taken: another process cannot get it.
        holds: list[bool] = []

        def probe(conn: sqlite3.Connection) -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holds.append(True)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                holds.append(False)

        await store._writer.run(probe)
        assert holds == [True]

    try:
        run(path, body)
    finally:
        os.close(fd)


def test_a_write_lock_taken_after_the_wait_gave_up_is_given_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the busy wait the flusher goes on without the lock (SQLite's own lock still
    serializes); the helper thread, still waiting, must hand the lock back once it gets
    it, or every other process would wait for it forever."""
    import fcntl

    monkeypatch.setattr(sqlite_writer, "_BUSY_WAIT_MS", 200)
    path = tmp_path / "db"
    fd = os.open(f"{path}-wlock", os.O_RDWR | os.O_CREAT, 0o600)

    async def body(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", "first"), {"x": 0})], "t")
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another worker, for longer than the busy wait
        write = asyncio.ensure_future(store.write([Put(Key("c", "u", "a"), {"x": 1})], "t"))
        await asyncio.sleep(0.5)
        fcntl.flock(fd, fcntl.LOCK_UN)
        await write
        deadline = time.monotonic() + 5
        while not lock_free(fd):
            assert time.monotonic() < deadline, "the lock was never given back"
            await asyncio.sleep(0.01)
        await store.write([Put(Key("c", "u", "b"), {"x": 2})], "t")  # and writes go on
        assert lock_free(fd)
        for k in "ab":
            assert await store.get_document(Key("c", "u", k)) is not None

    try:
        run(path, body)
    finally:
        os.close(fd)


def test_writes_queued_while_another_process_writes_join_one_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is cut once the lock is held, not before waiting for it: the writes that
    queue meanwhile share the one commit (and fsync) instead of waiting for another turn."""
    import fcntl

    path = tmp_path / "db"
    fd = os.open(f"{path}-wlock", os.O_RDWR | os.O_CREAT, 0o600)
    commits: list[int] = []
    real = sqlite_writer._commit

    def counted(conn: sqlite3.Connection, lock_fd: int | None) -> None:
        commits.append(1)
        real(conn, lock_fd)

    monkeypatch.setattr(sqlite_writer, "_commit", counted)

    async def body(store: SQLiteStore) -> None:
        await store.write([Put(Key("c", "u", "first"), {"x": 0})], "t")
        commits.clear()
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another worker in its transaction
        first = asyncio.ensure_future(store.write([Put(Key("c", "u", "a"), {"x": 1})], "t"))
        await asyncio.sleep(0.1)  # its flusher is waiting for the lock
        later = [asyncio.ensure_future(store.write([Put(Key("c", "u", k), {"x": 2})], "t")) for k in "bc"]
        await asyncio.sleep(0.1)
        fcntl.flock(fd, fcntl.LOCK_UN)
        await asyncio.gather(first, *later)
        assert commits == [1]
        for k in "abc":
            assert await store.get_document(Key("c", "u", k)) is not None

    try:
        run(path, body)
    finally:
        os.close(fd)


def test_the_write_lock_is_released_when_commit_returns_not_when_the_loop_is_free(
    tmp_path: Path,
) -> None:
    """The lock goes on the commit's thread: another process may write while this one's
    loop is still busy (released through the loop, it stayed held that long)."""

    path = tmp_path / "db"
    fd = os.open(f"{path}-wlock", os.O_RDWR | os.O_CREAT, 0o600)

    async def body(store: SQLiteStore) -> float:
        await store.write([Put(Key("c", "u", "a"), {"x": 1})], "t")
        write = asyncio.ensure_future(store.write([Put(Key("c", "u", "b"), {"x": 2})], "t"))
        for _ in range(100):  # until the flusher holds the lock: its COMMIT is then under way
            await asyncio.sleep(0)
            if not lock_free(fd):
                break
        else:
            raise AssertionError("the write never took the lock")
        start = time.monotonic()
        while not lock_free(fd) and time.monotonic() - start < 5:  # the loop stays blocked here
            time.sleep(0.001)
        waited = time.monotonic() - start
        await write
        assert await store.get_document(Key("c", "u", "b")) is not None
        return waited

    try:
        assert run(path, body) < 5
    finally:
        os.close(fd)


# ------------------------------------------------------------------ outages


def test_a_write_lock_held_past_the_busy_timeout_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the database's write lock longer than writes wait: 503
    Unavailable (nothing written), not 500; writes succeed again once it lets go."""
    monkeypatch.setattr(sqlite_writer, "_BUSY_WAIT_MS", 200)

    async def body(store: SQLiteStore) -> None:
        other = sqlite3.connect(tmp_path / "db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(Unavailable, match=r"^the database is unavailable$") as e:
                await store.write([Put(Key("c", "u", "a"), {"x": 1})], "t")
            assert isinstance(e.value.__cause__, sqlite3.OperationalError)
            assert e.value.details == {"retryAfter": RETRY_AFTER}
            assert await store.get_document(Key("c", "u", "a")) is None  # reads go on
        finally:
            other.execute("ROLLBACK")
            other.close()
        await store.write([Put(Key("c", "u", "a"), {"x": 1})], "t")
        assert await store.get_document(Key("c", "u", "a")) is not None

    run(tmp_path / "db", body)


def test_sqlite_outages_are_told_from_refused_statements(tmp_path: Path) -> None:
    """Real SQLite errors: locked and cannot-open are outages; a bad statement is not."""
    path = tmp_path / "db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    errors: dict[str, sqlite3.Error] = {}
    for name, attempt in {
        "locked": lambda: other.execute("BEGIN IMMEDIATE"),
        "cannot open": lambda: sqlite3.connect(tmp_path / "missing" / "db").execute("SELECT 1"),
        "syntax": lambda: other.execute("SELEC 1"),
        "no table": lambda: other.execute("SELECT * FROM nope"),
    }.items():
        with pytest.raises(sqlite3.OperationalError) as e:
            attempt()
        errors[name] = e.value
    holder.execute("ROLLBACK")
    holder.close()
    other.close()
    assert isinstance(outage(errors["locked"]), Unavailable)
    assert isinstance(outage(errors["cannot open"]), Unavailable)
    assert outage(errors["syntax"]) is errors["syntax"]
    assert outage(errors["no table"]) is errors["no table"]
    boom = ValueError("x")
    assert outage(boom) is boom


def test_a_feature_table_shares_the_writer_and_the_readers(tmp_path: Path) -> None:
    # docs/architecture.md#storage: a feature's table lives in the same file, its writes
    # commit through the one writer (a failing job undoes only its own statements).
    async def body(store: SQLiteStore) -> None:
        await store.run_write(lambda c: c.execute("CREATE TABLE feature (k TEXT PRIMARY KEY, v INTEGER)"))
        await store.run_write(lambda c: c.execute("INSERT INTO feature VALUES ('a', 1)"))

        def fails(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO feature VALUES ('b', 2)")
            raise RuntimeError("the job failed")

        with pytest.raises(RuntimeError):
            await store.run_write(fails)
        rows = await store.run_read(lambda c: c.execute("SELECT k, v FROM feature").fetchall())
        assert rows == [("a", 1)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store.run_read(lambda c: c.execute("INSERT INTO feature VALUES ('c', 3)"))

    run(tmp_path / "db", body)
