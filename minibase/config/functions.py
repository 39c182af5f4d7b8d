"""``[functions]``: the developer's own functions module and their time limits."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..util import names
from ..util.record import field, record
from .fields import Seconds, derived, read_fields, spec
from .reader import Reader

__all__ = ["FunctionsConfig"]

_MODULE_RE = names.MODULE_RE
_TIMEOUT = Seconds(0, 900, "must be between 0 and 15 minutes", open_lo=True)
_LEASE = Seconds(1, 3600, "must be between 1 second and 1 hour")


def _module(r: Reader, v: Any, key: str) -> str:
    if not isinstance(v, str) or not _MODULE_RE.fullmatch(v):
        raise ConfigError(key, "expected a dotted Python module name, e.g. 'functions'")
    return v


def _timezone(r: Reader, v: Any, key: str) -> str:
    from zoneinfo import ZoneInfo

    if not isinstance(v, str) or not v:
        raise ConfigError(key, "expected an IANA time zone name, e.g. 'Asia/Shanghai'")
    try:
        ZoneInfo(v)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(key, f"{v!r} is not a known IANA time zone") from None
    return v


def _timeouts(r: Reader, v: Any, key: str) -> Mapping[str, float]:
    if not isinstance(v, dict):
        raise ConfigError(key, "expected a table")
    return {name: _TIMEOUT(r, r.value(v, f"{key}.{name}"), f"{key}.{name}") for name in v}


@record
class FunctionsConfig:
    """The developer's own functions: a module to import, and their time limits."""

    # dotted module name, imported from the config's folder
    module: str | None = field(default=None, metadata=spec(_module))
    # the folder put on sys.path for it (the config's folder)
    path: Path | None = field(default=None, metadata=derived("the config file's folder"))
    timeout: float = field(default=10.0, metadata=spec(_TIMEOUT))
    # per function
    timeouts: Mapping[str, float] = field(default_factory=dict, metadata=spec(_timeouts))
    # the time zone of @schedule cron expressions
    timezone: str = field(default="Asia/Shanghai", metadata=spec(_timezone))
    # how long an instance holds the trigger deliveries it claimed: another instance retries
    # them after this (the claimer died); longer than the slowest trigger handler
    trigger_lease: float = field(default=60.0, metadata=spec(_LEASE))

    def timeout_for(self, name: str) -> float:
        return self.timeouts.get(name, self.timeout)

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any]) -> FunctionsConfig:
        values = read_fields(cls, r, t, "functions")
        if values.get("module"):
            values["path"] = r.base
        return cls(**values)
