"""``bench/load.py``, shortened: concurrent clients on SQLite and PostgreSQL without a single
error or lost write, and a PostgreSQL restart in the middle of a run that clients see only
as clean 5xx error envelopes, after which requests succeed again by themselves and every
acknowledged write is still there. (The full run, 100 clients for 60 s, is reported in
bench/results-load.md.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_load_script_short_run(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    md = tmp_path / "load.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            "--clients",
            "10",
            "--duration",
            "6",  # after the restart (PostgreSQL back at ~3 s), time to show a success after the last failure
            "--restart-db-at",
            "1.5",
            "--outage",
            "1",
            "--json",
            str(out),
            "--markdown",
            str(md),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
        cwd=tmp_path,  # the script finds the repository from its own path
    )
    report = f"stdout:\n{proc.stdout}\nstderr (tail):\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, report
    runs = {r["name"]: r for r in json.loads(out.read_text())["runs"]}
    assert list(runs) == ["sqlite", "postgres", "postgres, restarted at 1.5 s"], report
    assert md.read_text() in proc.stdout

    for name in ("sqlite", "postgres"):
        r = runs[name]
        assert r["passed"] and r["errors"] == {} and r["lost"] == [], report
        assert r["ok"] == r["requests"] > 100, report
        # Every kind of request ran and was checked, and every acknowledged write was read back.
        assert set(r["by_op"]) == {"get", "query", "posts", "count", "insert", "update", "post", "batch"}
        assert r["writes_checked"] > 10, report

    r = runs["postgres, restarted at 1.5 s"]
    rs = r["restart"]
    assert r["passed"] and r["lost"] == [] and r["writes_checked"] > 10, report
    # The outage was seen, and only as clean error envelopes with a 5xx status.
    assert r["errors"] and r["unclean"] == 0, report
    assert all(key.startswith("5") for key in r["errors"]), report
    assert rs["errors_outside_window"] == 0, report
    assert rs["stop_at"] < rs["up_at"] and rs["first_error"] >= rs["stop_at"], report
    # Requests succeed again without any intervention once PostgreSQL is back.
    assert rs["first_ok_after_up"] is not None and rs["recovery_s"] <= 5.0, report
    assert r["ok"] > runs["postgres"]["ok"] * 0.2, report
