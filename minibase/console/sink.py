"""Audit events into the console's table: a handler on the ``minibase.audit`` logger.

Lines are queued in memory and written in batches a moment later on the event loop, so
the request that caused one never waits for it; the console flushes before it reads the
trail. The log line stays the complete trail (a batch lost to a crash is still logged).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

import orjson

from ..errors import ConfigError, MinibaseError
from .store import AuditRecord, ConsoleStore, build_console_store

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["AuditSink"]

log = logging.getLogger("minibase.console")
_AUDIT = logging.getLogger("minibase.audit")
_MAX_PENDING = 10_000  # bounded: an unreachable database must not grow memory
_DELAY = 0.5  # seconds between an event and its batch's write


class _Handler(logging.Handler):
    def __init__(self, sink: AuditSink) -> None:
        super().__init__(logging.INFO)
        self.sink = weakref.ref(sink)

    def emit(self, record: logging.LogRecord) -> None:
        sink = self.sink()
        if sink is None:  # its app is gone
            _AUDIT.removeHandler(self)
            return
        sink.add(record)


class AuditSink:
    def __init__(self, store: ConsoleStore | None) -> None:
        self.store = store
        self.pending: list[AuditRecord] = []
        self._scheduled: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.handler = _Handler(self)
        # The loop of the app this sink belongs to (bound at the app's start). The audit
        # logger is process-wide: with two apps in one process (tests, an embedding), each
        # sink keeps only the events of its own app's loop and never schedules on another's.
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @classmethod
    def install(cls, config: Config) -> AuditSink:
        try:
            store: ConsoleStore | None = build_console_store(config.database.url, config.sqlite_path)
        except ConfigError:
            store = None  # TableStore: no console, the log line is the trail
        sink = cls(store)
        if store is not None:
            if not _AUDIT.isEnabledFor(logging.INFO):
                _AUDIT.setLevel(logging.INFO)
            _AUDIT.addHandler(sink.handler)
        return sink

    def uninstall(self) -> None:
        _AUDIT.removeHandler(self.handler)

    def add(self, record: logging.LogRecord) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None  # no loop (a CLI command): flushed by whoever flushes next
        if self.loop is not None and running is not None and running is not self.loop:
            return  # another app's event (its own sink stores it)
        try:
            line = record.getMessage()
            data = orjson.loads(line)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return
        if not isinstance(data, dict) or len(self.pending) >= _MAX_PENDING:
            return
        uid, admin = data.get("uid"), data.get("admin")
        self.pending.append(
            AuditRecord(
                record.created,
                str(data.get("event", "")),
                uid if isinstance(uid, str) else None,
                admin if isinstance(admin, str) else None,
                str(data.get("requestId", "")),
                line,
            )
        )
        if self._scheduled is None and running is not None:
            self._scheduled = running.call_later(_DELAY, self._spawn)

    def _spawn(self) -> None:
        self._scheduled = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """At the app's shutdown, before the store closes: the batches under way finish and
        the last one is written (an FC instance or a worker may stop right after a call)."""
        self.uninstall()
        loop = asyncio.get_running_loop()
        if self._scheduled is not None and self.loop in (None, loop):
            self._scheduled.cancel()
            self._scheduled = None
        mine = [t for t in self._tasks if t.get_loop() is loop]
        if mine:
            await asyncio.gather(*mine, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        if not self.pending or self.store is None:
            return
        batch, self.pending = self.pending, []
        try:
            await self.store.add_audit(batch)
        except MinibaseError as e:
            log.warning("audit events not stored in the console's table (%s); they are in the log", e.message)
        except Exception:
            # A missing table (no console used yet): create it once, then retry.
            try:
                await self.store.ensure()
                await self.store.add_audit(batch)
            except Exception:
                log.warning(
                    "audit events not stored in the console's table; they are in the log", exc_info=True
                )
