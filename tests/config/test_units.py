"""One grammar for durations, sizes and rates (minibase/config/units.py)."""

from __future__ import annotations

import pytest

from minibase.config import Rate, parse_config, parse_duration, parse_rate, parse_size
from minibase.errors import ConfigError

DEV = {"auth": {"dev": {"enabled": True}}}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("900", 900.0),
        ("900s", 900.0),
        ("1.5s", 1.5),
        ("250ms", 0.25),
        ("10 sec", 10.0),
        ("2 secs", 2.0),
        ("1 second", 1.0),
        ("30 seconds", 30.0),
        ("15m", 900.0),
        ("15min", 900.0),
        ("15 mins", 900.0),
        ("1 minute", 60.0),
        ("20 minutes", 1200.0),
        ("1h", 3600.0),
        ("2hr", 7200.0),
        ("1 hour", 3600.0),
        ("3 hours", 10800.0),
        ("1d", 86400.0),
        ("1day", 86400.0),
        ("30 days", 30 * 86400.0),
        ("15MIN", 900.0),
        (" 1H ", 3600.0),
    ],
)
def test_duration_spellings(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "min", "-5s", "15 fortnights", "1.5.5s", "5/s", True, None, [1]])
def test_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_numbers_are_seconds() -> None:
    assert parse_duration(900) == 900.0 and parse_duration(1.5) == 1.5
    with pytest.raises(ValueError):
        parse_duration(-1)


def test_config_durations_take_every_spelling() -> None:
    """The issue's examples: "15min" and "1day" were refused by durations, accepted by rates."""
    c = parse_config(
        {"auth": {"dev": {"enabled": True}, "credentials_ttl": "15min", "session_idle": "1day"}}, environ={}
    )
    assert c.auth.credentials_ttl == 900.0 and c.auth.session_idle == 86400.0
    c = parse_config(
        {**DEV, "functions": {"timeout": "2 minutes"}, "files": {"url_ttl": "1 hour"}}, environ={}
    )
    assert c.functions.timeout == 120.0 and c.files.url_ttl == 3600.0


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/s", Rate(100, 1.0)),
        ("100/sec", Rate(100, 1.0)),
        ("100/second", Rate(100, 1.0)),
        ("20/min", Rate(20, 60.0)),
        ("20/m", Rate(20, 60.0)),
        ("20/minutes", Rate(20, 60.0)),
        ("5/10s", Rate(5, 10.0)),
        ("5 / 10 s", Rate(5, 10.0)),
        ("5/15min", Rate(5, 900.0)),
        ("6/hour", Rate(6, 3600.0)),
        ("3/hours", Rate(3, 3600.0)),
        ("3/2h", Rate(3, 7200.0)),
        ("1000/day", Rate(1000, 86400.0)),
        ("1000/d", Rate(1000, 86400.0)),
        ("001/s", Rate(1, 1.0)),
    ],
)
def test_rate_spellings(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "bad", ["fast", "0/s", "10/0s", "5/10", "5", "/s", "5/500ms", "1/2d", "1.5/s", "-1/s"]
)
def test_rate_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("77", 77),
        ("77b", 77),
        ("1kb", 1000),
        ("1KB", 1000),
        ("1k", 1024),
        ("1KiB", 1024),
        ("1.5MB", 1_500_000),
        ("1M", 1024**2),
        ("10 MiB", 10 * 1024**2),
        ("2GB", 2 * 1000**3),
        ("2G", 2 * 1024**3),
        ("2gib", 2 * 1024**3),
    ],
)
def test_size_units_say_what_they_mean(text: str, size: int) -> None:
    """KB/MB/GB are decimal, KiB/MiB/GiB binary, and the bare letters binary (as before)."""
    assert parse_size(text) == size


def test_config_sizes_name_their_key() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({**DEV, "files": {"max_size": "10 minutes"}}, environ={})
    assert e.value.key == "files.max_size"
