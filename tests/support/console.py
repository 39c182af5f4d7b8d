"""Shared by the console tests: an admin in a live server's database, logged-in clients."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from minibase.config import Config
from minibase.console.store import build_console_store
from minibase.core import Minibase

EMAIL = "admin@example.com"
PASSWORD = "correct-horse-battery"


def create_admin(core: Minibase, email: str = EMAIL, password: str = PASSWORD) -> None:
    from minibase.console.api import Console

    asyncio.run(Console(core).create_admin(email, password))


def console_sql(config: Config, sql: str, *args: Any) -> int:
    """Run one statement on the console's tables, as another process would."""
    store: Any = build_console_store(config.database.url, config.sqlite_path)
    return int(asyncio.run(store.execute(sql, *args)))


def admin_client(url: str, email: str = EMAIL, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """A client holding an admin session cookie, and the session's CSRF token."""
    r = httpx.post(url + "/_/api/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=url, cookies=r.cookies), r.json()["data"]["csrf"]
