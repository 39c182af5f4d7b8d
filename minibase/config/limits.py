"""``[limits]`` (input limits) and ``[rate_limits]`` (token buckets)."""

from __future__ import annotations

from typing import Any

from ..util.record import field, record
from .fields import Int, RateValue, Seconds, read_fields, spec
from .reader import Reader
from .units import MiB, Rate

__all__ = ["LimitsConfig", "RateLimitsConfig"]


@record
class LimitsConfig:
    """Input limits, checked on every event before any function runs (data/validate.py)."""

    # bytes of one request body (or FC Invoke API event)
    max_body: int = field(default=MiB, metadata=spec(Int(1024, 64 * MiB)))
    # nesting of JSON objects/arrays in an event (the event itself is 1)
    max_depth: int = field(default=32, metadata=spec(Int(2, 256)))
    # characters of a document id
    max_id_length: int = field(default=256, metadata=spec(Int(1, 1024)))
    # characters of any one string value in an event
    max_string_length: int = field(default=256 * 1024, metadata=spec(Int(16, 64 * MiB)))
    # characters of any one object key in an event
    max_key_length: int = field(default=256, metadata=spec(Int(8, 4096)))
    # keys of any one object in an event
    max_keys: int = field(default=1000, metadata=spec(Int(16, 100_000)))
    # ops in one db batch; a batch is one transaction holding the write lock: 100 is the hard cap
    max_batch: int = field(default=100, metadata=spec(Int(1, 100)))
    # the largest `limit` a db query/list may ask for
    max_query_limit: int = field(default=1000, metadata=spec(Int(1, 1000)))
    # bytes of one stored document (its JSON, system fields included); default: max_body
    max_document: int = field(default=MiB, metadata=spec(Int(1024, 64 * MiB)))
    # realtime (docs/realtime.md): open WebSocket/SSE connections per server process
    max_connections: int = field(default=10_000, metadata=spec(Int(1, 1_000_000)))
    # watches of one user on one server process (of one connection when anonymous)
    max_watches_per_user: int = field(default=100, metadata=spec(Int(1, 100_000)))
    # documents in one watch's result (its `limit` at most)
    max_watch_docs: int = field(default=5000, metadata=spec(Int(1, 100_000)))
    # seconds one database statement may run (DeadlineExceeded past it)
    query_time: float = field(
        default=3.0, metadata=spec(Seconds(0.01, 600, "expected a duration between 0.01 and 600 seconds"))
    )

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any]) -> LimitsConfig:
        values = read_fields(cls, r, t, "limits")
        if "max_document" not in values and "max_body" in values:
            values["max_document"] = values["max_body"]  # a document may be as large as a request
        return cls(**values)


@record
class RateLimitsConfig:
    """Rate limits (None: off). State lives in the database, so they hold across instances.

    Per-address limits count everyone behind one NAT together (mobile carriers put many
    users behind one address), hence their generous defaults.
    """

    # session calls (login, refresh, logout) per client address
    login_per_ip: Rate | None = field(default=Rate(60, 60.0), metadata=spec(RateValue()))
    # logins per platform user; refreshes per uid
    login_per_subject: Rate | None = field(default=Rate(20, 60.0), metadata=spec(RateValue()))
    # db, files and developer functions, per uid
    calls_per_user: Rate | None = field(default=Rate(100, 1.0), metadata=spec(RateValue()))
    # the same without a session, per client address
    calls_per_ip: Rate | None = field(default=Rate(50, 1.0), metadata=spec(RateValue()))

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any]) -> RateLimitsConfig:
        return cls(**read_fields(cls, r, t, "rate_limits"))
