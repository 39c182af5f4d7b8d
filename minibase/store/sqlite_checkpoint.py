"""WAL checkpoints on a thread of their own, off the write path.

SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages:
that commit copies every page into the database file and fsyncs it, about 13 ms here
against a usual half millisecond, while its process holds the write lock the other
processes (``serve --workers``) are waiting for. Measured under two workers inserting:
half of all the time spent in COMMIT went to those. So the writer's connection turns the
automatic checkpoint off, and after each durable commit :meth:`Checkpointer.after_commit`
reads the WAL's length from the wal-index header and, past the same 1,000 pages, starts a
``PASSIVE`` checkpoint on another connection and thread: it holds no write lock, readers
and writers go on, and a checkpoint another process is running already makes it return.

Writers going on is also the catch: SQLite starts the WAL over only in a write transaction
that began with every frame copied, and under load the next one has always begun (and
appended) before the pass ends, so the WAL would grow without end (seen in the tests). A
second pass therefore runs holding the processes' write lock (the writers' ``flock``): it
copies only what was appended during the first (often nothing), and the next transaction
starts the WAL from its beginning, unless a reader still uses the old frames, as with
SQLite's own checkpoint.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no second pass (no lock file either)
    fcntl = None  # type: ignore[assignment]

__all__ = ["CHECKPOINT_PAGES", "Checkpointer", "wal_frames"]

CHECKPOINT_PAGES = 1000  # SQLite's own wal_autocheckpoint default
CLOSE_WAIT = 15.0  # seconds close waits for a running checkpoint

log = logging.getLogger("minibase.sqlite")

# SQLite's documented wal-index format (the -shm file): its header's mxFrame, the WAL's
# last valid frame, is the native-order u32 at byte 16.
_MX_FRAME = slice(16, 20)


def wal_frames(shm_fd: int) -> int:
    """The frames in the WAL, from the wal-index header (0 if it cannot be read). A hint
    only: SQLite may be changing the header while it is read."""
    try:
        head = os.pread(shm_fd, 20, 0)
    except OSError:
        return 0
    return int.from_bytes(head[_MX_FRAME], sys.byteorder) if len(head) == 20 else 0


class Checkpointer:
    """Background ``PASSIVE`` checkpoints of the database at ``path``, one at a time."""

    def __init__(self, path: str, lock_path: str | None = None, pages: int = CHECKPOINT_PAGES) -> None:
        self.path = path
        self.lock_path = lock_path if fcntl is not None else None  # the writers' flock file
        self.pages = pages
        self._shm: int | None = None  # opened by the process that writes, never inherited
        self._lock: int | None = None
        self._conn: sqlite3.Connection | None = None
        # A daemon thread per checkpoint (one every 1,000 pages): one stuck on the lock,
        # behind a process that hangs amid a write, cannot hold this process's exit.
        self._running: threading.Thread | None = None
        self.runs = 0  # checkpoints run (for tests and the curious)

    def after_commit(self) -> None:
        """Start a checkpoint if the WAL is past :attr:`pages` and none is running."""
        if self._running is not None and self._running.is_alive():
            return
        if self._shm is None:
            try:
                self._shm = os.open(f"{self.path}-shm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                return  # no wal-index (yet): nothing to measure
        if wal_frames(self._shm) < self.pages:
            return
        self._running = threading.Thread(target=self._checkpoint, name="minibase-checkpoint", daemon=True)
        self._running.start()

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._conn.execute("PRAGMA busy_timeout=0")  # PASSIVE: never wait for a lock
            [(busy, _, _)] = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if not busy and self.lock_path is not None:
                self._finish()
            self.runs += 1
        except (sqlite3.Error, OSError) as e:  # the next commit past the mark tries again
            log.warning("WAL checkpoint of %s failed: %s", self.path, e)

    def _finish(self) -> None:
        """The second pass, with no write transaction under way."""
        assert self._conn is not None and self.lock_path is not None
        if self._lock is None:
            self._lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # a writer holds it one batch at most
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running checkpoint; whether none is running now."""
        running = self._running
        if running is not None:
            running.join(timeout)
        return running is None or not running.is_alive()

    def close(self) -> None:
        """Wait for a running checkpoint (at most :data:`CLOSE_WAIT`); close what was opened
        (a checkpoint still stuck keeps its connection and lock file until the process ends)."""
        if not self.wait(CLOSE_WAIT):
            log.warning("a WAL checkpoint of %s is still waiting for the write lock", self.path)
            return
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for fd in (self._shm, self._lock):
            if fd is not None:
                os.close(fd)
        self._shm = self._lock = None
