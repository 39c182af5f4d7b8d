"""Scheduled jobs: cron (5 fields, or 6 with seconds), the time zone, each run once across
instances by a claim in the database, failures logged and audited without stopping the
scheduler, `minibase run NAME`, FC timer triggers (deploy and handler)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from minibase.config import Config
from minibase.core import Minibase
from minibase.errors import ConfigError
from minibase.events import schedule
from minibase.events.cron import fc_cron, next_after
from tests.support.events import handled

MODULE = """
import json
from minibase.events import schedule

LOG = {log!r}

@schedule("tick", cron="* * * * * *")
async def tick(ctx, event):
    assert ctx.uid is None
    with open(LOG, "a") as f:
        f.write(json.dumps({"job": "tick", "time": event["time"]}) + "\\n")

@schedule("broken", cron="* * * * * *")
def broken(ctx, event):
    with open(LOG, "a") as f:
        f.write(json.dumps({"job": "broken", "time": event["time"]}) + "\\n")
    raise RuntimeError("the job failed")
"""


def source() -> str:
    return MODULE.replace("{log!r}", "'{log}'")


def runs(tmp_path: Path, job: str) -> list[float | None]:
    return [x["time"] for x in (json.loads(line) for line in handled(tmp_path)) if x["job"] == job]


def test_each_run_happens_once_across_two_instances(
    events_config: Callable[..., Config], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        config = events_config(source())
        cores = [Minibase.from_config(config, background=True) for _ in range(2)]
        for c in cores:
            await c.start()
        try:
            await asyncio.sleep(2.6)
        finally:
            for c in cores:
                await c.stop()

    with caplog.at_level(logging.ERROR, logger="minibase.events"):
        asyncio.run(run())
    ticks = runs(tmp_path, "tick")
    assert len(ticks) >= 2, ticks
    assert all(n == 1 for n in Counter(ticks).values()), ticks  # never twice for one time
    assert all(t is not None and t == int(t) for t in ticks)  # whole seconds, as the cron says
    # A failing job is logged every time and does not stop the scheduler (or the other job).
    broken = runs(tmp_path, "broken")
    assert len(broken) >= 2 and all(n == 1 for n in Counter(broken).values())
    assert sum("schedule broken failed" in r.getMessage() for r in caplog.records) == len(broken)


def test_minibase_run_runs_one_job_now(events_config: Callable[..., Config], tmp_path: Path) -> None:
    from minibase.cli import main

    config = events_config(source())
    toml = tmp_path / "minibase.toml"
    module = config.functions.module
    toml.write_text(
        f"""
[app]
name = "jobs"
service = "jobs-svc"
secret = "test-secret-0123456789-abcdefghijklmnop"
[auth.dev]
enabled = true
[database]
url = "{config.database.url}"
[functions]
module = "{module}"
"""
    )
    assert main(["run", "tick", "--config", str(toml)]) == 0
    assert runs(tmp_path, "tick") == [None]
    assert main(["run", "broken", "--config", str(toml)]) == 1
    assert main(["run", "nope", "--config", str(toml)]) == 1
    assert runs(tmp_path, "tick") == [None]


def test_cron_expressions_and_the_time_zone() -> None:
    # 03:00 in Shanghai is 19:00 UTC the day before.
    t = datetime(2026, 1, 1, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    nxt = datetime.fromtimestamp(next_after("0 3 * * *", t, "Asia/Shanghai"), ZoneInfo("UTC"))
    assert (nxt.day, nxt.hour, nxt.minute) == (1, 19, 0)
    nxt = datetime.fromtimestamp(next_after("0 3 * * *", t, "UTC"), ZoneInfo("UTC"))
    assert (nxt.day, nxt.hour) == (2, 3)
    assert next_after("*/10 * * * * *", t + 1, "UTC") == t + 10  # seconds first, as FC writes them
    assert fc_cron("0 3 * * *", "Asia/Shanghai") == "CRON_TZ=Asia/Shanghai 0 0 3 * * *"
    assert fc_cron("*/10 * * * * *", "UTC") == "CRON_TZ=UTC */10 * * * * *"
    for bad in ("0 3 * *", "61 * * * *", "* * * * * * *", "0 25 * * *", "nonsense"):
        with pytest.raises(ValueError, match="cron"):
            schedule("x", cron=bad)


def test_timezone_config(make_config: Callable[..., Config]) -> None:
    from tests.support.config import base_raw

    assert make_config().functions.timezone == "Asia/Shanghai"
    assert make_config(base_raw(functions={"timezone": "Europe/Paris"})).functions.timezone == "Europe/Paris"
    with pytest.raises(ConfigError, match=r"functions\.timezone"):
        make_config(base_raw(functions={"timezone": "Mars/Olympus"}))


def test_fc_timer_handler_runs_a_slot_once(
    events_config: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FC may deliver a timer event more than once: the slot is claimed in the database."""
    import orjson

    from minibase.runtime import fc

    config = events_config(source())
    toml = tmp_path / "fc.toml"
    toml.write_text(
        f"""
[app]
name = "jobs"
service = "jobs-svc"
secret = "test-secret-0123456789-abcdefghijklmnop"
[auth.dev]
enabled = true
[database]
url = "{config.database.url}"
[functions]
module = "{config.functions.module}"
"""
    )
    monkeypatch.setenv("MINIBASE_CONFIG", str(toml))
    monkeypatch.setenv("MINIBASE_DATA", str(tmp_path / "data"))
    fc.reset()
    try:
        event = {
            "triggerTime": "2026-12-05T19:00:00Z",
            "triggerName": "schedule-tick",
            "payload": '{"schedule": "tick"}',
        }
        assert orjson.loads(fc.timer_handler(orjson.dumps(event))) == {"data": {"ran": True}}
        assert orjson.loads(fc.timer_handler(orjson.dumps(event))) == {"data": {"ran": False}}
        bad = orjson.loads(fc.timer_handler(orjson.dumps({"payload": "nope"})))
        assert bad["error"]["code"] == "InvalidArgument"
        unknown = orjson.loads(fc.timer_handler(orjson.dumps({"payload": '{"schedule": "nope"}'})))
        assert unknown["error"]["code"] == "NotFound"
    finally:
        fc.reset()
    slot = datetime(2026, 12, 5, 19, tzinfo=ZoneInfo("UTC")).timestamp()
    assert runs(tmp_path, "tick") == [slot]


def test_deploy_fc_emits_timer_triggers(events_config: Callable[..., Config], tmp_path: Path) -> None:
    from minibase.runtime.deploy import DeployOptions, build_s_yaml, read_project

    config = events_config(
        source() + '\nfrom minibase.events import after_write\n@after_write("orders")\ndef t(ctx, c): pass\n'
    )
    toml = tmp_path / "deploy.toml"
    toml.write_text(
        f"""
[app]
name = "jobs"
service = "jobs-svc"
secret = "env:MINIBASE_SECRET"
[auth.dev]
enabled = true
[functions]
module = "{config.functions.module}"
timezone = "Asia/Shanghai"
"""
    )
    project = read_project(toml)
    doc = build_s_yaml(project, DeployOptions())
    events = doc["resources"]["events"]["props"]
    assert events["handler"] == "index.timer_handler"
    triggers = {t["triggerName"]: t for t in events["triggers"]}
    assert triggers["schedule-tick"]["triggerType"] == "timer"
    assert triggers["schedule-tick"]["triggerConfig"] == {
        "cronExpression": "CRON_TZ=Asia/Shanghai * * * * * *",
        "enable": True,
        "payload": '{"schedule": "tick"}',
    }
    assert triggers["dispatch"]["triggerConfig"]["cronExpression"] == "@every 1m"
    assert set(triggers) == {"schedule-tick", "schedule-broken", "dispatch"}
