"""The names minibase validates, in one place (a leaf: it imports nothing of ours).

Every pattern here is meant for :meth:`re.Pattern.fullmatch` (use :func:`is_name` and
friends): ``re.match`` with ``^…$`` accepts a trailing newline (``$`` matches before a final
``\\n``), which let ``locked\\n`` be a collection outside ``locked``'s rules and
``dev:alice\\n`` be another user.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "BUILTIN_FUNCTIONS",
    "DEV_USER_RE",
    "DOCUMENT_SYSTEM_FIELDS",
    "FIELD_PATH_RE",
    "MAX_SEGMENTS",
    "MODULE_RE",
    "NAME_RE",
    "SEGMENT",
    "SEGMENT_RE",
    "SERVER_FIELDS",
    "is_field_path",
    "is_name",
    "is_segment",
]

# Collections, functions, file areas, the service: 1-64 of [A-Za-z0-9_-], a letter first.
NAME: Final = r"[A-Za-z][A-Za-z0-9_-]{0,63}"
NAME_RE: Final = re.compile(NAME)
# One segment of a dotted field path: 1-64 of [A-Za-z0-9_], not a digit first.
SEGMENT: Final = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
SEGMENT_RE: Final = re.compile(SEGMENT)
MAX_SEGMENTS: Final = 8
FIELD_PATH_RE: Final = re.compile(rf"{SEGMENT}(?:\.{SEGMENT}){{0,{MAX_SEGMENTS - 1}}}")
# A dotted Python module name ([functions] module).
MODULE_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
# The user name after "dev:" in a dev-provider authCode.
DEV_USER_RE: Final = re.compile(r"[A-Za-z0-9_.@-]{1,64}")

# Fields the server sets on every document; a client may not write them.
SERVER_FIELDS: Final = frozenset({"uid", "_version", "_created", "_updated"})
# ...and with the id, the keys a patch may not touch.
DOCUMENT_SYSTEM_FIELDS: Final = SERVER_FIELDS | {"id"}
# Function names the server itself serves.
BUILTIN_FUNCTIONS: Final = frozenset({"session", "db", "files"})


def is_name(value: object) -> bool:
    """A collection, function, area or service name."""
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


def is_segment(value: object) -> bool:
    """One segment of a field path."""
    return isinstance(value, str) and SEGMENT_RE.fullmatch(value) is not None


def is_field_path(value: object) -> bool:
    """A dotted field path of at most :data:`MAX_SEGMENTS` segments."""
    return isinstance(value, str) and FIELD_PATH_RE.fullmatch(value) is not None
