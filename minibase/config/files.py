"""``[files]``: the file store, limits, URL lifetime, and shared areas (``[files.areas.NAME]``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..util.record import field, record
from .fields import (
    NAME_RE,
    NAME_RULE,
    TABLE,
    Bytes,
    Custom,
    Int,
    Seconds,
    Text,
    Url,
    derived,
    read_fields,
    spec,
)
from .reader import Reader
from .units import MiB
from .urls import S3Location, check_files_url, parse_s3_url

__all__ = ["FILE_RULE_PRESETS", "MAX_FILE_SIZE", "THUMB_FORMATS", "FilesArea", "FilesConfig"]

FILE_RULE_PRESETS = ("public", "authenticated", "owner", "none")
MAX_FILE_SIZE = 5 * 1024 * MiB  # S3's limit for one PUT
_MAX_AREAS = 32
_AREA_PREFIX_RE = re.compile(r"[A-Za-z0-9_.~+=@-]+(/[A-Za-z0-9_.~+=@-]+)*/")
_MIME_PART = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_CONTENT_TYPE_PATTERN_RE = re.compile(rf"(\*/\*|{_MIME_PART}/\*|{_MIME_PART}/{_MIME_PART})")
_SIZE = Bytes(1, MAX_FILE_SIZE, "must be between 1 byte and 5GiB")
_RULE = Text(FILE_RULE_PRESETS)


def _content_types(r: Reader, v: Any, key: str) -> tuple[str, ...]:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items or len(items) > 64:
        raise ConfigError(
            key, "expected a non-empty list (at most 64) of types like 'image/*' or 'application/pdf'"
        )
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not _CONTENT_TYPE_PATTERN_RE.fullmatch(item.strip().lower()):
            raise ConfigError(
                f"{key}[{i}]", f"{item!r} is not a content type pattern like 'image/*' or 'text/plain'"
            )
        out.append(item.strip().lower())
    return tuple(out)


def _area_prefix(r: Reader, v: Any, key: str) -> str:
    prefix = Text()(r, v, key)
    if not _AREA_PREFIX_RE.fullmatch(prefix) or any(s in (".", "..") for s in prefix.split("/")):
        raise ConfigError(key, "expected a folder path ending with '/', e.g. 'public/'")
    if prefix.startswith("users/"):
        raise ConfigError(key, "users/ is where each user's own files live")
    return prefix


@record
class FilesArea:
    """A shared area of the file space, ``[files.areas.NAME]``: every path starting with
    ``prefix`` belongs to it (instead of to the caller's own ``users/<uid>/`` area).

    ``read``/``write`` are presets: ``public`` (anyone, even without logging in),
    ``authenticated`` (any logged-in user), ``owner`` (the user who uploaded the file;
    any logged-in user may create a new one) or ``none``. ``max_size``/``content_types``
    replace the ``[files]`` ones for this area when set.
    """

    name: str = field(metadata=derived("the name of the [files.areas.NAME] table"))
    prefix: str = field(metadata=spec(_area_prefix))  # read from a file, it defaults to "NAME/"
    read: str = field(default="owner", metadata=spec(_RULE))
    write: str = field(default="owner", metadata=spec(_RULE))
    max_size: int | None = field(default=None, metadata=spec(_SIZE))
    content_types: tuple[str, ...] | None = field(default=None, metadata=spec(_content_types))

    @classmethod
    def from_table(
        cls, r: Reader, name: str, t: dict[str, Any], others: Mapping[str, FilesArea]
    ) -> FilesArea:
        key = f"files.areas.{name}"
        if not NAME_RE.fullmatch(name):
            raise ConfigError(key, f"area names are {NAME_RULE}")
        values = read_fields(cls, r, t, key)
        prefix = values.setdefault("prefix", _area_prefix(r, f"{name}/", f"{key}.prefix"))
        for other in others.values():
            if prefix.startswith(other.prefix) or other.prefix.startswith(prefix):
                raise ConfigError(
                    f"{key}.prefix", f"overlaps files.areas.{other.name}.prefix ({other.prefix!r})"
                )
        return cls(name=name, **values)


_THUMB_SIZE_RE = re.compile(r"([1-9][0-9]{0,3})?x([1-9][0-9]{0,3})?")
THUMB_FORMATS = ("auto", "jpeg", "png", "webp")


def _thumb_sizes(r: Reader, v: Any, key: str) -> tuple[str, ...]:
    if not isinstance(v, list) or len(v) > 16:
        raise ConfigError(key, 'expected a list (at most 16) of sizes like "200x200", "750x" or "x300"')
    out = []
    for i, item in enumerate(v):
        m = _THUMB_SIZE_RE.fullmatch(item) if isinstance(item, str) else None
        if m is None or not (m.group(1) or m.group(2)):
            raise ConfigError(
                f"{key}[{i}]",
                f'{item!r} is not a size like "200x200", "750x" (a width) or "x300" (a height), 1-9999',
            )
        out.append(item)
    return tuple(dict.fromkeys(out))


def _files_url(r: Reader, v: Any, key: str) -> str:
    return check_files_url(Text()(r, v, key), key)


def _base_url(r: Reader, v: Any, key: str) -> str:
    url = Url()(r, v, key)
    if urlsplit(url).query or urlsplit(url).fragment:
        raise ConfigError(key, "expected a URL without query or fragment")
    return url


_S3_KEYS = ("access_key_id", "secret_access_key", "session_token")


@record
class FilesConfig:
    """The ``[files]`` section: the store, limits, URL lifetime and areas."""

    url: str = field(default="file://files", metadata=spec(Custom(_files_url, "s3://placeholder")))
    max_size: int = field(default=10 * MiB, metadata=spec(_SIZE))  # bytes of one file
    # allowed patterns ("image/*"); empty: any
    content_types: tuple[str, ...] = field(default=(), metadata=spec(_content_types))
    # seconds a signed URL stays valid
    url_ttl: float = field(default=900.0, metadata=spec(Seconds(60, 7 * 86400, "must be between 1m and 7d")))
    # public base of this server for local URLs; None: the request's
    base_url: str | None = field(default=None, metadata=spec(_base_url))
    # S3/OSS: where public-read files are linked (a CDN); None: the bucket's own URL
    public_url: str | None = field(default=None, metadata=spec(_base_url))
    # Cache-Control max-age of a public file's stable URL
    public_max_age: float = field(
        default=300.0, metadata=spec(Seconds(0, 365 * 86400, "must be between 0s and 365d"))
    )
    areas: Mapping[str, FilesArea] = field(default_factory=dict, metadata=TABLE)
    # [files.thumbs]: the only thumbnail sizes anyone may ask for ("200x200", "750x")
    thumb_sizes: tuple[str, ...] = field(default=(), metadata=spec(_thumb_sizes, key="thumbs.sizes"))
    thumb_format: str = field(default="auto", metadata=spec(Text(THUMB_FORMATS), key="thumbs.format"))
    thumb_quality: int = field(default=82, metadata=spec(Int(1, 100), key="thumbs.quality"))
    # images with more pixels than this are refused (decompression bombs)
    thumb_max_pixels: int = field(
        default=40_000_000, metadata=spec(Int(1, 200_000_000), key="thumbs.max_pixels")
    )
    # S3 credentials; None: the SDK's default chain (AWS_ACCESS_KEY_ID, ~/.aws, roles, ...).
    access_key_id: str | None = field(default=None, repr=False, metadata=spec(Text()))
    secret_access_key: str | None = field(default=None, repr=False, metadata=spec(Text()))
    session_token: str | None = field(default=None, repr=False, metadata=spec(Text()))

    @property
    def backend(self) -> str:
        """``"local"`` (``file://``) or ``"s3"`` (``s3://``, ``oss://``)."""
        return "local" if self.url.startswith("file://") else "s3"

    @property
    def s3(self) -> S3Location | None:
        """The parsed bucket location of an ``s3://``/``oss://`` url; None for ``file://``."""
        return None if self.backend == "local" else parse_s3_url(self.url)

    @property
    def public_prefixes(self) -> tuple[str, ...]:
        """The prefixes of the areas anyone may read (``read = "public"``)."""
        return tuple(a.prefix for a in self.areas.values() if a.read == "public")

    def area_for(self, path: str) -> FilesArea | None:
        """The shared area ``path`` (relative, as a client writes it) belongs to, if any."""
        for area in self.areas.values():
            if path.startswith(area.prefix):
                return area
        return None

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any]) -> FilesConfig:
        values = read_fields(cls, r, t, "files")
        _check_s3_keys(values)
        raw_areas = r.tables(t, "files.areas")
        if len(raw_areas) > _MAX_AREAS:
            raise ConfigError("files.areas", f"at most {_MAX_AREAS} areas")
        areas: dict[str, FilesArea] = {}
        for name, at in raw_areas.items():
            areas[name] = FilesArea.from_table(r, name, at, areas)
        return cls(areas=areas, **values)


def _check_s3_keys(values: dict[str, Any]) -> None:
    given = [k for k in _S3_KEYS if k in values]
    if given and values.get("url", "file://").startswith("file://"):
        raise ConfigError(f"files.{given[0]}", "only for s3:// and oss:// urls")
    if "public_url" in values and values.get("url", "file://").startswith("file://"):
        raise ConfigError("files.public_url", "only for s3:// and oss:// urls (local files use base_url)")
    if ("access_key_id" in given) != ("secret_access_key" in given):
        missing = "secret_access_key" if "access_key_id" in given else "access_key_id"
        raise ConfigError(f"files.{missing}", "access_key_id and secret_access_key go together")
    if "session_token" in given and "access_key_id" not in given:
        raise ConfigError("files.session_token", "needs access_key_id and secret_access_key")
