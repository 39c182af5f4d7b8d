"""Where events may run: SQLite and PostgreSQL (their state and the outbox need triggers and
transactions); with any other store the server refuses to start, naming why."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from minibase.config import Config
from minibase.errors import ConfigError
from minibase.events.runner import open_event_store


def test_events_need_sqlite_or_postgres(make_config: Callable[..., Config]) -> None:
    config = make_config()

    class OtherStore:  # e.g. TableStore: no transactions across rows, no triggers
        pass

    with pytest.raises(ConfigError, match="SQLite or PostgreSQL"):
        open_event_store(config, OtherStore())  # type: ignore[arg-type]
