"""Storage of the platform features: one narrow protocol (``base``), one module per backend."""

from __future__ import annotations

from typing import Any

from .base import PlatformStore

__all__ = ["PlatformStore", "platform_store_for"]


def platform_store_for(store: Any) -> PlatformStore | None:
    """The platform store sharing ``store``'s database; None for a backend without one
    (TableStore: the platform features then refuse with ``Unavailable``)."""
    from ...store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        from .sqlite import SQLitePlatformStore

        return SQLitePlatformStore(store)
    try:
        from ...store.postgres import PostgresStore
    except ImportError:  # pragma: no cover - asyncpg not installed
        return None
    if isinstance(store, PostgresStore):
        from .postgres import PostgresPlatformStore

        return PostgresPlatformStore(store)
    return None
