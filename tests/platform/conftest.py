"""Servers for the platform tests: real minibase servers over loopback HTTP, on SQLite or
on PostgreSQL (``backend`` is parametrized by the tests that run on both)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite:///{tmp_path / 'shared.db'}"
