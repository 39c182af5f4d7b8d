"""Helpers for the tests (moved out of tests/events/conftest.py: conftest files hold fixtures only)."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

APP_ID = "2021000000000001"


def write_module(tmp_path: Path, source: str) -> str:
    name = f"events_{secrets.token_hex(4)}"  # unique: modules are cached per process
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def handled(tmp_path: Path) -> list[str]:
    """The lines the handlers appended (one per run)."""
    path = tmp_path / "handled.log"
    return path.read_text().splitlines() if path.exists() else []
