"""SQLite writes through one connection, with group commit, off the GIL's hot path.

Every write goes through one connection (``BEGIN IMMEDIATE``), so writes are serialized
and never hit ``SQLITE_BUSY`` among themselves. Jobs queue on the event loop; a flusher
runs every queued job in one transaction, each inside its own SAVEPOINT (one job's
failure rolls back only that job), then commits with one fsync. A job's future resolves
only after COMMIT returned, so every acknowledged write is durable
(``synchronous=FULL``).

A job may be marked not ``durable`` (rate-limit buckets: losing the last ones to a power
cut is harmless): a batch of only such jobs commits without fsync (``synchronous=OFF``
for that commit; the WAL frames reach the disk with the next durable commit), on the loop
thread, in microseconds.

Why jobs run on the event loop thread and only COMMIT runs on a helper thread: a job is a
few microsecond-long SQLite calls, each of which releases and re-takes the GIL; run on a
separate thread under load, every one of those calls waits for the busy loop thread to
give the GIL back. COMMIT is the one call that blocks (fsync), so it alone moves off the
loop, once per batch, while the next batch queues up behind it.

Several processes (``minibase serve --workers N``) writing one database take turns through
an advisory lock on a file beside it (``flock``, held from BEGIN to the end of COMMIT):
SQLite's own busy handler polls with sleeps of up to 100 ms, which halved the write rate of
two workers against one; a waiter on ``flock`` wakes as soon as the holder releases it, and
the kernel drops it if the holder dies.

A job that turns out not to be cheap moves off the loop: one whose guarded statements
(:meth:`BudgetedConnection.guarded`, the rule checks) run past :data:`INLINE_BUDGET`, or
one that raises :class:`RunOffLoop` (an update of a large document). Its savepoint is
rolled back and it, with the rest of its batch and the COMMIT, runs again on the helper
thread, where guarded statements stop at the job's full budget (``query_time``) with
:class:`~minibase.errors.DeadlineExceeded`. Only SELECTs are guarded: SQLite rolls back
the whole transaction when it interrupts a write statement, which would undo the other
jobs of the batch; the writes themselves are by primary key, so they are bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from ..errors import Unavailable
from .sqlite_checkpoint import Checkpointer
from .writes import deadline_exceeded

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

log = logging.getLogger("minibase.sqlite")

_MAX_GROUP = 256  # jobs in one transaction; bounds the latency of the first one
_BUSY_WAIT_MS = 10_000  # how long BEGIN may wait for another process's write lock

# SQLite's primary result codes that mean "the database cannot be used right now" (the
# request itself was fine): BUSY, LOCKED, IOERR, FULL, CANTOPEN. Python 3.10 has only the
# message, which starts with SQLite's text for the code.
_OUTAGE_CODES = frozenset((5, 6, 10, 13, 14))
_OUTAGE_TEXTS = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
    "unable to open database file",
)


def outage(e: BaseException) -> BaseException:
    """``e``, or an :class:`Unavailable` (caused by it) when it is SQLite saying that the
    database is locked past the busy timeout, the disk failed or filled up, or the file
    cannot be opened."""
    if not isinstance(e, sqlite3.OperationalError):
        return e
    code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+; 3.10 has the message only
    hit = (code & 0xFF) in _OUTAGE_CODES if code is not None else str(e).lower().startswith(_OUTAGE_TEXTS)
    if not hit:
        return e
    log.error("the SQLite database is unavailable: %s", e)
    err = Unavailable("the database is unavailable")
    err.__cause__ = e
    return err


# Seconds of guarded SQLite work a job or read may do on the event loop before it moves to
# a thread: a point read or a small write takes microseconds, never this.
INLINE_BUDGET = 0.005
# SQLite VM steps between two looks at the clock: on the loop every ~50 µs of work (the
# budget above is small); on a thread every ~1 ms (each look takes the GIL from the loop).
LOOP_STEPS = 1_000
THREAD_STEPS = 20_000


class RunOffLoop(Exception):
    """Raised by a job running on the event loop whose work would block it (a large
    document to decode): the writer runs it again on its thread."""


class BudgetedConnection(sqlite3.Connection):
    """A connection whose statements stop with SQLITE_INTERRUPT past ``deadline``
    (``time.monotonic()``), checked by a progress handler every ``steps`` VM steps."""

    deadline: float
    fired: bool  # the last interruption was ours
    budget_end: float  # the running job's deadline, for :meth:`guarded` statements
    on_loop: bool  # whether the running job runs on the event loop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = math.inf
        self.fired = False
        self.budget_end = math.inf
        self.on_loop = False
        self.steps(LOOP_STEPS)

    def steps(self, n: int) -> None:
        self.set_progress_handler(self._tick, n)

    def _tick(self) -> int:
        if time.monotonic() > self.deadline:
            self.fired = True
            return 1  # SQLite stops the statement: OperationalError("interrupted")
        return 0

    @contextlib.contextmanager
    def guarded(self) -> Iterator[None]:
        """Run the enclosed (read-only) statements within the job's budget."""
        self.deadline = self.budget_end
        try:
            yield
        finally:
            self.deadline = math.inf


class SQLiteWriter:
    def __init__(
        self,
        connect: Callable[[], BudgetedConnection],
        lock_path: str | None = None,
        budget: float = math.inf,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self._connect = connect
        self._checkpointer = checkpointer  # if any, SQLite's own checkpoints are off (_open)
        self._lock_path = lock_path if fcntl is not None else None
        self._lock_fd: int | None = None  # opened by the process that writes, never inherited
        self._budget = budget  # seconds a job's guarded statements may take in all
        self._conn: BudgetedConnection | None = None
        self._pending: list[tuple[Job, asyncio.Future[Any], bool]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._home: asyncio.AbstractEventLoop | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, job: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        with self._lock:
            home = self._home
            if home is None or home.is_closed() or (home is not loop and not home.is_running()):
                self._home = home = loop
        if home is not loop:
            # Another thread's loop owns the connection: hand the job to it.
            coro = self.run(job, durable=durable)
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((job, fut, durable))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await fut

    async def close(self) -> None:
        self._closed = True
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            try:
                same_loop = flusher.get_loop() is asyncio.get_running_loop()
            except RuntimeError:
                same_loop = False
            if same_loop:
                await flusher
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the processes' write lock (when there is a lock file) for the enclosed
        blocking work, such as opening the database and migrating it at start."""
        if self._lock_path is None:
            yield
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + _BUSY_WAIT_MS / 1000
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:  # SQLite's busy timeout still applies
                        break
                    await asyncio.sleep(0.002)
            yield
        finally:
            os.close(fd)  # and the lock with it

    # ------------------------------------------------------------------- flusher

    def _open(self) -> BudgetedConnection | None:
        """The writer connection (and lock file), or None after failing every pending job."""
        if self._conn is not None:
            return self._conn
        try:
            conn = self._connect()
            # BEGIN must not block the loop: try without waiting, wait on the helper thread.
            conn.execute("PRAGMA busy_timeout=0")
            if self._checkpointer is not None:  # it checkpoints, not a COMMIT under the lock
                conn.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as e:
            pending, self._pending = self._pending, []
            for _, fut, _ in pending:
                if not fut.done():
                    fut.set_exception(outage(e))
            return None
        self._conn = conn
        if self._lock_path is not None:
            try:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as e:  # SQLite's busy handler alone still serializes the writers
                log.warning("cannot open the write lock file %s: %s", self._lock_path, e)
                self._lock_path = None
        return conn

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        conn = self._open()
        if conn is None:
            return
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="minibase-sqlite")
        pool = self._executor
        while self._pending:
            locked = False
            if self._lock_fd is not None:
                # Before the batch is cut: what queues while another process writes joins it.
                locked = await _take_lock(self._lock_fd, loop, pool)
            batch = self._pending[:_MAX_GROUP]
            del self._pending[:_MAX_GROUP]
            outcomes: list[tuple[bool, Any]] = []
            durable = any(d for _, _, d in batch)
            try:
                if not durable:
                    conn.execute("PRAGMA synchronous=OFF")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:  # another process holds the write lock
                    await loop.run_in_executor(pool, _begin_waiting, conn)
                outcomes = self._jobs(conn, batch, on_loop=True)
                if len(outcomes) < len(batch):
                    # A job was too slow for the loop: it and the rest run on the thread.
                    rest = batch[len(outcomes) :]
                    outcomes += await loop.run_in_executor(pool, self._jobs, conn, rest)
                if durable:
                    # The lock goes on the helper thread as soon as COMMIT returns: handed
                    # back through the busy loop, it stayed held for a loop turn more.
                    lock_fd = self._lock_fd if locked else None
                    locked = False
                    await loop.run_in_executor(pool, _commit, conn, lock_fd)
                    if self._checkpointer is not None:
                        self._checkpointer.after_commit()
                else:
                    conn.execute("COMMIT")  # no fsync: nothing to wait for
            except sqlite3.Error as e:
                log.error("sqlite write transaction failed: %s", e)
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                outcomes = [(False, e)] * len(batch)
            finally:
                if locked:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
                if not durable:
                    conn.execute("PRAGMA synchronous=FULL")
            for (_, fut, _), (ok, value) in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(outage(value))

    def _jobs(
        self, conn: BudgetedConnection, batch: list[tuple[Job, Any, bool]], on_loop: bool = False
    ) -> list[tuple[bool, Any]]:
        """Run ``batch``'s jobs, each in its own savepoint. On the loop, stop at the first
        job that is too slow for it (its savepoint rolled back): fewer outcomes than jobs."""
        outcomes: list[tuple[bool, Any]] = []
        conn.on_loop = on_loop
        if not on_loop:
            conn.steps(THREAD_STEPS)
        try:
            for job, _, _ in batch:
                conn.execute("SAVEPOINT job")
                conn.fired = False
                start = time.monotonic()
                conn.budget_end = start + (INLINE_BUDGET if on_loop else self._budget)
                try:
                    result = job(conn)
                except BaseException as e:  # the job's own error goes to its caller
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    if on_loop and (conn.fired or isinstance(e, RunOffLoop)):
                        break
                    if conn.fired:
                        e = deadline_exceeded(self._budget)
                    outcomes.append((False, e))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, result))
        finally:
            conn.budget_end = math.inf
            conn.fired = conn.on_loop = False
            if not on_loop:
                conn.steps(LOOP_STEPS)
        return outcomes


async def _take_lock(fd: int, loop: asyncio.AbstractEventLoop, pool: concurrent.futures.Executor) -> bool:
    """The write lock shared by the processes on this database; False when another process
    held it past the busy timeout (BEGIN then waits, and times out, as before)."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    # The helper thread waits, and wakes this loop with one callback: through an executor
    # future, shield and wait_for the wake took four loop steps, the lock held all along
    # (0.2 ms of a 2 ms turn under two workers writing).
    taken: asyncio.Future[bool] = loop.create_future()
    pool.submit(_wait_lock, fd, loop, taken)
    timer = loop.call_later(_BUSY_WAIT_MS / 1000, _give_up, taken)
    try:
        return await taken
    finally:
        timer.cancel()


def _wait_lock(fd: int, loop: asyncio.AbstractEventLoop, taken: asyncio.Future[bool]) -> None:
    """On the helper thread: block until the lock is ours, then hand it to the loop."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as e:  # no lock to be had: SQLite's own busy wait still serializes
        log.warning("cannot take the write lock: %s", e)
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
            loop.call_soon_threadsafe(_give_up, taken)
        return
    try:
        loop.call_soon_threadsafe(_lock_taken, fd, taken)
    except RuntimeError:  # the loop is closed: nobody is waiting for it
        fcntl.flock(fd, fcntl.LOCK_UN)


def _lock_taken(fd: int, taken: asyncio.Future[bool]) -> None:
    if taken.done():  # given up (or the wait cancelled) meanwhile: give the lock back
        assert fcntl is not None
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        taken.set_result(True)


def _give_up(taken: asyncio.Future[bool]) -> None:
    if not taken.done():
        taken.set_result(False)


def _commit(conn: sqlite3.Connection, lock_fd: int | None) -> None:
    """COMMIT (the fsync), then the processes' write lock, if held, is released."""
    try:
        conn.execute("COMMIT")
    finally:
        if lock_fd is not None:
            assert fcntl is not None
            fcntl.flock(lock_fd, fcntl.LOCK_UN)


def _begin_waiting(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout={_BUSY_WAIT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout=0")
