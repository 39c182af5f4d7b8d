"""The effective config as the settings page shows it: every value, secrets redacted."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

__all__ = ["REDACTED", "redacted"]

REDACTED = "•••• (redacted)"
# Whatever its field says, a value under a name like these is never shown.
_SECRET_NAME = re.compile(r"secret|password|token|private|credential", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^/:@]*:)[^/@]*@")


def _value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if (not f.repr or _SECRET_NAME.search(f.name)) and not isinstance(v, Path):
                out[f.name] = REDACTED if v not in (None, "", ()) else v
            else:
                out[f.name] = _value(v)
        return out
    if isinstance(value, dict):
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
