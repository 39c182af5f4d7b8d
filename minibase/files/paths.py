"""File paths as clients write them → storage keys, and who may do what there.

A client addresses files by a *path*. It is relative to the caller's own area,
``users/<uid>/``, unless it starts with a configured shared area's prefix (e.g.
``public/``) or spells the users area out (``users/<own uid>/...``; another user's uid is
refused). The *key* is where the file lives in the store: ``users/<uid>/<path>`` or the
shared path itself.

Valid paths are 1-512 bytes of UTF-8, segments separated by single ``/``, no empty, ``.``
or ``..`` segment, no control character, no backslash, and no segment starting with
``.~mb`` (reserved for the local backend's temp and metadata files).

A *file id* is ``mb://<key>`` (``mb://public/b.png``, ``mb://users/<uid>/a.png``): the same
for every caller, so documents can store it. Wherever a path is taken, a file id is too; it
resolves like the explicit path (another user's ``users/`` area is still refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import FilesArea, FilesConfig
from ..errors import InvalidArgument, PermissionDenied, Unauthenticated

__all__ = [
    "FILE_ID_PREFIX",
    "MAX_PATH_BYTES",
    "RESERVED_SEGMENT_PREFIX",
    "USERS_PREFIX",
    "Location",
    "check_path",
    "check_prefix",
    "file_id",
    "resolve",
    "resolve_prefix",
]

MAX_PATH_BYTES = 512
FILE_ID_PREFIX = "mb://"
USERS_PREFIX = "users/"
RESERVED_SEGMENT_PREFIX = ".~mb"
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators.
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a path or listing prefix points."""

    key: str  # the full storage key (or key prefix for listings)
    base: str  # the area's root key: "users/<uid>/" or the area prefix
    area: FilesArea | None  # None: the caller's own area

    def client_path(self, key: str) -> str:
        """The path a client of this area sees for ``key``."""
        return key[len(self.base) :] if self.area is None else key


def _check_chars(text: str, what: str) -> None:
    if _BAD_CHARS.search(text):
        raise InvalidArgument(f"{what} must not contain control characters or backslashes")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidArgument(f"{what} is longer than {MAX_PATH_BYTES} bytes")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{what} is not valid Unicode") from None


def _check_segments(segments: list[str], what: str) -> None:
    for seg in segments:
        if not seg:
            raise InvalidArgument(f"{what} must not have empty segments (a leading, trailing or double '/')")
        if seg in (".", ".."):
            raise InvalidArgument(f"{what} must not have '.' or '..' segments")
        if seg.startswith(RESERVED_SEGMENT_PREFIX):
            raise InvalidArgument(f"{what} segments must not start with {RESERVED_SEGMENT_PREFIX!r}")


def check_path(path: object, what: str = "path") -> str:
    """``path`` if it is a valid file path, else :class:`InvalidArgument`."""
    if not isinstance(path, str) or not path:
        raise InvalidArgument(f"{what} is required (a string like 'photos/cat.jpg')")
    _check_chars(path, what)
    _check_segments(path.split("/"), what)
    return path


def check_prefix(prefix: object) -> str:
    """A listing prefix: like a path, but may be empty, end with ``/`` or stop mid-segment."""
    if prefix is None or prefix == "":
        return ""
    if not isinstance(prefix, str):
        raise InvalidArgument("prefix must be a string")
    _check_chars(prefix, "prefix")
    segments = prefix.split("/")
    if segments[-1] == "":
        segments.pop()  # "photos/" lists a folder
    _check_segments(segments, "prefix")
    return prefix


def _users_area(files: FilesConfig, path: str, uid: str | None) -> Location:
    if uid is None:
        raise Unauthenticated("log in to use your own files")
    base = f"{USERS_PREFIX}{uid}/"
    if path.startswith(USERS_PREFIX):
        # An explicit users/<uid>/... path: only the caller's own.
        if path == base[:-1]:
            return Location(base, base, None)
        if not path.startswith(base):
            raise PermissionDenied("that path is in another user's area")
        return Location(path, base, None)
    return Location(base + path, base, None)


def file_id(key: str) -> str:
    """The file id of storage key ``key``."""
    return FILE_ID_PREFIX + key


def resolve(files: FilesConfig, path: object, uid: str | None) -> Location:
    """The key of file ``path`` (or file id) for caller ``uid`` (None: not logged in)."""
    is_id = isinstance(path, str) and path.startswith(FILE_ID_PREFIX)
    p = check_path(path[len(FILE_ID_PREFIX) :] if is_id else path)  # type: ignore[index]
    area = files.area_for(p)
    if is_id and area is None and not p.startswith(USERS_PREFIX):
        raise InvalidArgument("a file id is mb:// and a full key (users/<uid>/... or a shared area's path)")
    if area is not None:
        if p == area.prefix or p.endswith("/"):
            raise InvalidArgument("path names a folder, not a file")
        return Location(p, area.prefix, area)
    loc = _users_area(files, p, uid)
    if loc.key == loc.base:
        raise InvalidArgument("path names a folder, not a file")
    return loc


def resolve_prefix(files: FilesConfig, prefix: object, uid: str | None) -> Location:
    """The key prefix of a listing of ``prefix`` for caller ``uid``."""
    p = check_prefix(prefix)
    area = files.area_for(p)
    if area is not None:
        return Location(p, area.prefix, area)
    return _users_area(files, p, uid)
