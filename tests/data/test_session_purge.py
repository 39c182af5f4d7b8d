"""Expired sessions are purged (issue 18, point 9: they were kept forever), on every backend.

A login deletes, in a bounded batch and at most every few minutes per instance, the
sessions that ended (idle or absolute expiry) more than a day ago; live sessions, and
ended ones still inside that day (they answer "expired", not "unknown"), stay. Driven
over real HTTP with the server's clock moved by the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from minibase.app import create_app
from minibase.auth import sessions as sessions_mod
from minibase.config import Config
from minibase.core import Minibase
from tests.support.config import Clock, base_raw
from tests.support.data import COLLECTIONS, backend_environ, database_raw
from tests.support.live import run_uvicorn

HOUR = 3600.0
DAY = 86400.0
UNKNOWN = "unknown session"
EXPIRED = "the session has expired"


@pytest.fixture
def url(make_config: Callable[..., Config], backend: str, db_url: str | None, clock: Clock) -> Iterator[str]:
    raw = base_raw(
        collections=COLLECTIONS,
        database=database_raw(backend, db_url),
        auth={"session_idle": "1h", "session_max": "3d"},
    )
    config = make_config(raw, backend_environ(backend))
    with run_uvicorn(create_app(config, core=Minibase.from_config(config, clock=clock))) as base:
        yield base


def _login(url: str, who: str) -> str:
    r = httpx.post(url + "/session", json={"authCode": f"dev:{who}"})
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["sessionId"])


def _refresh(url: str, sid: str) -> tuple[int, Any]:
    r = httpx.post(url + "/session", json={"op": "refresh", "sessionId": sid})
    return r.status_code, r.json()


def _state(url: str, sid: str) -> str:
    """'live', 'expired' (still stored) or 'unknown' (purged), as the server answers."""
    status, body = _refresh(url, sid)
    if status == 200:
        return "live"
    assert status == 401, body
    message = body["error"]["message"]
    assert message.startswith((UNKNOWN, EXPIRED)), message
    return "unknown" if message.startswith(UNKNOWN) else "expired"


def test_login_purges_long_expired_sessions(url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions_mod, "PURGE_BATCH", 1)  # to see the batch bound
    old = [_login(url, "old1"), _login(url, "old2")]  # idle-expired at +1h, purgeable from +1d+1h
    keep = _login(url, "keep")
    t0 = clock()

    def advance_to(t: float) -> None:
        # `keep` is used every 50 minutes, so it never idles out.
        while clock() + 50 * 60 < t:
            clock.advance(50 * 60)
            assert _state(url, keep) == "live"
        clock.t = t
        assert _state(url, keep) == "live"

    advance_to(t0 + DAY)
    recent = _login(url, "recent")  # idle-expired at +1d+1h: inside the grace day later on
    advance_to(t0 + DAY + 2 * HOUR)
    assert [_state(url, s) for s in old] == ["expired", "expired"]  # no login since: kept

    _login(url, "trigger1")  # purges at most one session (the batch)
    states = [_state(url, s) for s in old]
    assert states.count("unknown") <= 1, states
    # Later logins (past the purge interval) take the rest. On TableStore a purge reads the next
    # PURGE_BATCH rows in id order (resuming where the last stopped) among all sessions, each
    # trigger login adding one at a random place: reaching both can take a few dozen purges.
    for i in range(2, 80):
        if states == ["unknown", "unknown"]:
            break
        clock.advance(sessions_mod.PURGE_EVERY)
        assert _state(url, keep) == "live"
        _login(url, f"trigger{i}")
        states = [_state(url, s) for s in old]
    assert states == ["unknown", "unknown"]

    # Ended less than a day ago: still there, and says why it ended.
    assert _state(url, recent) == "expired"
    assert _state(url, keep) == "live"

    # Absolute expiry: `keep` ends at +3d however much it is used, and goes a day later.
    advance_to(t0 + 3 * DAY - 60)
    clock.advance(DAY + 2 * HOUR)
    assert _state(url, keep) == "expired"
    monkeypatch.setattr(sessions_mod, "PURGE_BATCH", 500)
    for i in range(12, 15):
        clock.advance(sessions_mod.PURGE_EVERY)
        _login(url, f"trigger{i}")
        if _state(url, keep) == "unknown":
            break
    assert _state(url, keep) == "unknown"
