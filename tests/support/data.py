"""Helpers for the tests (moved out of tests/data/conftest.py: conftest files hold fixtures only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from minibase.config import Config
from tests.fakes.tablestore_server import FakeTableStore
from tests.support.config import Live, base_raw

BACKENDS = ["sqlite", "postgres", "tablestore"]


# Credentials the fake TableStore accepts; config reads them from the environment, as on FC.
OTS_KEY_ID, OTS_SECRET, OTS_TOKEN = "LTAI-fake-key", "fake-secret-for-tests", "fake-sts-token"
OTS_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": OTS_KEY_ID,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": OTS_SECRET,
    "ALIBABA_CLOUD_SECURITY_TOKEN": OTS_TOKEN,
}


# What TableStore cannot serve (see minibase/store/tablestore.py): a listing not
# restricted to one owner. Tests that list across owners expect this on TableStore.
OTS_CROSS_OWNER = "TableStore cannot serve this query efficiently"


def database_raw(backend: str, db_url: str | None) -> dict[str, Any]:
    """The [database] table for ``backend`` (``db_url`` from the fixture below)."""
    return {"url": db_url} if db_url is not None else {"url": "sqlite:///minibase.db"}


def is_tablestore(live: Live) -> bool:
    return live.core.config.database.url.startswith("tablestore://")


def backend_environ(backend: str) -> dict[str, str]:
    """The environment config loading sees: TableStore's credentials, as FC sets them."""
    return dict(OTS_ENV) if backend == "tablestore" else {}


COLLECTIONS: dict[str, Any] = {
    "todo_list": {"indexes": [["done", "n"]]},
    "notes": {"read": "public", "write": "owner"},
    "board": {
        "read": "authenticated",
        "create": "authenticated",
        "update": "doc.uid == auth.uid || auth.uid in doc.editors",
        "delete": "owner",
    },
    "shared": {"read": "doc.uid == auth.uid || doc.shared == true", "write": "owner"},
    "locked": {"read": "none", "write": "none"},
    "typed": {
        "schema": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "maxLength": 20},
                "n": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["title"],
        }
    },
}


def data_config(make_config: Callable[..., Config], backend: str, pg_url: str | None, **extra: Any) -> Config:
    collections = {**COLLECTIONS, **extra}
    return make_config(
        base_raw(collections=collections, database=database_raw(backend, pg_url)), backend_environ(backend)
    )


def tablestore_url(fake: FakeTableStore, endpoint: str) -> str:
    return f"tablestore://{fake.add_instance()}?endpoint={quote(endpoint, safe=':/')}"
