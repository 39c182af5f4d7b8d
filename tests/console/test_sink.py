"""The audit sink (console/sink.py): each app keeps its own audit events, even with two apps in
one process (the audit logger is process-wide), and shuts down cleanly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from minibase.app import create_app
from minibase.config import parse_config
from minibase.core import Minibase
from tests.support.config import base_raw
from tests.support.live import run_uvicorn


def _audit_uids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {u for (u,) in conn.execute("SELECT uid FROM console_audit WHERE uid IS NOT NULL")}
    except sqlite3.OperationalError:  # no table: nothing was stored
        return set()
    finally:
        conn.close()


def test_two_apps_in_one_process_keep_their_own_audit_events(tmp_path: Path) -> None:
    configs = [
        parse_config(base_raw(), data_dir=tmp_path / name, base_dir=tmp_path, environ={})
        for name in ("a", "b")
    ]
    uids = {}
    a_app, b_app = (create_app(c, core=Minibase.from_config(c)) for c in configs)
    with run_uvicorn(a_app) as a_url, run_uvicorn(b_app) as b_url:
        for name, url in (("a", a_url), ("b", b_url)):
            r = httpx.post(url + "/session", json={"authCode": f"dev:{name}-user", "provider": "dev"})
            assert r.status_code == 200, r.text
            uids[name] = r.json()["user"]["uid"]
    # Both stopped (their last batches written at shutdown): each holds only its own user's events.
    assert _audit_uids(tmp_path / "a" / "minibase.db") == {uids["a"]}
    assert _audit_uids(tmp_path / "b" / "minibase.db") == {uids["b"]}
