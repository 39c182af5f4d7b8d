"""Events: payment notifications and webhooks, scheduled jobs, after-write triggers.

Declared with :func:`webhook`, :func:`schedule` and :func:`after_write` in the functions
module; run by :class:`~minibase.events.runner.Events`, which the core builds when the
module declares any. Their state (notification ids handled, schedule leases, the outbox
of document changes) lives in the database, behind :mod:`minibase.store.events` (SQLite: ``store/sqlite_events.py``, PostgreSQL: ``store/postgres_events.py``).
"""

from __future__ import annotations

from .decl import after_write, schedule, webhook

__all__ = ["after_write", "schedule", "webhook"]
