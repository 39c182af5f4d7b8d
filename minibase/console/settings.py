"""The effective config as the settings page shows it: every value, secrets redacted."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["REDACTED", "redacted"]

REDACTED = "•••• (redacted)"
# Whatever its field says, a value under a name like these is never shown.
_SECRET_NAME = re.compile(r"secret|password|token|private|credential", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^/:@]*:)[^/@]*@")


def _fields(value: Any) -> list[tuple[str, bool]] | None:
    """(name, hidden) of a record's or dataclass's fields; None for other values."""
    names = getattr(type(value), "__record_fields__", None)
    if names is not None:
        hidden: frozenset[str] = getattr(type(value), "__record_hidden__", frozenset())
        return [(n, n in hidden) for n in names]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, not f.repr) for f in dataclasses.fields(value)]
    return None


def _value(value: Any) -> Any:
    fields = _fields(value)
    if fields is not None:
        out: dict[str, Any] = {}
        for name, hidden in fields:
            v = getattr(value, name)
            if (hidden or _SECRET_NAME.search(name)) and not isinstance(v, Path):
                out[name] = REDACTED if v not in (None, "", ()) else v
            else:
                out[name] = _value(v)
        return out
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_value(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1" + "••••@", value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    text = getattr(value, "text", None)  # a parsed rule: its source
    return text if isinstance(text, str) else str(value)


def redacted(config: Any) -> dict[str, Any]:
    out: dict[str, Any] = _value(config)
    return out
