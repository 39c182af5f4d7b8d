"""Storage is a layer of its own: auth and data import it, it imports neither."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "minibase.store.records",
        "minibase.store.protocols",
        "minibase.store.writes",
        "minibase.store.sqlite",
        "minibase.store.postgres",
        "minibase.store.tablestore",
    ],
)
def test_the_store_imports_neither_auth_nor_the_db_function(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert module in loaded
    assert not [m for m in loaded if m.startswith(("minibase.auth", "minibase.data.api", "minibase.core"))]


def test_auth_and_the_db_function_share_the_records() -> None:
    from minibase.auth.providers.base import Identity
    from minibase.store import records

    assert Identity is records.Identity
