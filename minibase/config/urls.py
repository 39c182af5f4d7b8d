"""The URLs a config names: ``database.url`` (SQLite, PostgreSQL, TableStore) and
``files.url`` (a local folder, S3 or OSS), checked and parsed. Each error names the key."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigError
from ..util.record import record

__all__ = [
    "HOST_URL_RE",
    "S3Location",
    "TableStoreLocation",
    "check_database_url",
    "check_files_url",
    "local_path",
    "parse_s3_url",
    "parse_tablestore_url",
]

HOST_URL_RE = re.compile(r"https?://[A-Za-z0-9.\[\]:-]+(:\d+)?")
DATABASE_SCHEMES = ("sqlite://", "postgresql://", "postgres://", "tablestore://")
_OTS_INSTANCE_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")
_OTS_PREFIX_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION_RE = re.compile(r"[a-z0-9-]{1,64}")


@record
class TableStoreLocation:
    """A ``tablestore://INSTANCE?endpoint=…`` URL, parsed."""

    instance: str
    endpoint: str
    prefix: str = "minibase_"


@record
class S3Location:
    """Where an ``s3://`` (or ``oss://``) ``files.url`` points."""

    provider: str  # "s3" or "oss" (Alibaba OSS through its S3-compatible API)
    bucket: str
    prefix: str  # inside the bucket: "" or ending with "/"
    endpoint: str | None  # None: AWS's own
    region: str | None
    path_style: bool


def check_database_url(url: str, key: str = "database.url") -> str:
    """``url`` if it is a database minibase speaks; TableStore URLs are parsed too."""
    if not url.startswith(DATABASE_SCHEMES):
        raise ConfigError(
            key, "expected sqlite:///PATH, postgresql://user@host/db or tablestore://INSTANCE?endpoint=URL"
        )
    if url.startswith("tablestore://"):
        parse_tablestore_url(url, key)
    return url


def check_files_url(url: str, key: str = "files.url") -> str:
    """``url`` if it is ``file://DIR`` or a valid bucket URL."""
    if url.startswith("file://"):
        if url == "file://":
            raise ConfigError(key, "file:// needs a directory, e.g. file://files")
    else:
        parse_s3_url(url, key)
    return url


def local_path(url: str, scheme: str, data_dir: Path) -> Path | None:
    """The path of a ``sqlite://``/``file://`` URL, relative ones inside ``data_dir``;
    None for another scheme. ``sqlite:///rel.db`` is ``rel.db``, ``sqlite:////abs.db``
    is ``/abs.db``; ``file://files`` is ``files``, ``file:///srv/files`` is ``/srv/files``."""
    if not url.startswith(f"{scheme}://"):
        return None
    rest = url[len(scheme) + 3 :]
    if scheme == "sqlite":
        rest = rest[1:] if rest.startswith("/") else rest
    path = Path(rest)
    return path if path.is_absolute() else data_dir / path


def _params(query: str, allowed: tuple[str, ...], key: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in allowed:
            raise ConfigError(key, f"unknown parameter {name!r} (expected {', '.join(allowed)})")
        if name in params:
            raise ConfigError(key, f"parameter {name!r} given twice")
        params[name] = value
    return params


def parse_tablestore_url(url: str, key: str = "database.url") -> TableStoreLocation:
    """``tablestore://INSTANCE?endpoint=https://INSTANCE.REGION.ots.aliyuncs.com[&prefix=P]``."""
    parts = urlsplit(url)
    expected = "expected tablestore://INSTANCE?endpoint=https://INSTANCE.REGION.ots.aliyuncs.com"
    if parts.scheme != "tablestore" or parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(key, expected)
    instance = parts.netloc
    if not _OTS_INSTANCE_RE.fullmatch(instance):
        raise ConfigError(key, f"{instance!r} is not a TableStore instance name (3-32 of [A-Za-z0-9-])")
    params = _params(parts.query, ("endpoint", "prefix"), key)
    endpoint = params.get("endpoint", "").rstrip("/")
    if not endpoint:
        raise ConfigError(key, f"the endpoint parameter is required: {expected}")
    if not HOST_URL_RE.fullmatch(endpoint):
        raise ConfigError(key, f"endpoint {endpoint!r} is not an http(s)://host[:port] URL")
    prefix = params.get("prefix", "minibase_")
    if not _OTS_PREFIX_RE.fullmatch(prefix):
        raise ConfigError(key, f"prefix {prefix!r} is not a table name prefix (letters, digits, _)")
    return TableStoreLocation(instance, endpoint, prefix)


def _key_prefix(path: str, key: str) -> str:
    prefix = path.strip("/")
    if not prefix:
        return ""
    if any(not seg or seg in (".", "..") for seg in prefix.split("/")) or "\\" in prefix:
        raise ConfigError(key, f"{path!r} is not a key prefix (a/b/c)")
    return prefix + "/"


def _oss_region(endpoint: str, key: str) -> str:
    # https://oss-cn-hangzhou.aliyuncs.com → oss-cn-hangzhou, as OSS names regions
    first = (urlsplit(endpoint).hostname or "").split(".", 1)[0]
    if not first.startswith("oss-"):
        raise ConfigError(key, "oss:// needs &region=oss-REGION (cannot tell it from the endpoint)")
    return first.removesuffix("-internal")


def parse_s3_url(url: str, key: str = "files.url") -> S3Location:
    """``s3://bucket[/prefix]?endpoint=URL&region=R&path_style=true`` (``oss://`` alike)."""
    parts = urlsplit(url)
    provider = parts.scheme
    if provider not in ("s3", "oss"):
        raise ConfigError(
            key, "expected file://DIR, s3://bucket?endpoint=...&region=... or oss://bucket?endpoint=..."
        )
    bucket = parts.netloc
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(key, f"{bucket!r} is not a bucket name (3-63 of [a-z0-9.-])")
    prefix = _key_prefix(parts.path, key)
    params = _params(parts.query, ("endpoint", "region", "path_style"), key)
    endpoint = (params.get("endpoint") or "").rstrip("/") or None
    if endpoint is not None and not HOST_URL_RE.fullmatch(endpoint):
        raise ConfigError(key, f"endpoint {endpoint!r} is not an http(s)://host[:port] URL")
    region = params.get("region") or None
    if region is not None and not _REGION_RE.fullmatch(region):
        raise ConfigError(key, f"region {region!r} is not a region name")
    style = params.get("path_style", "false").lower()
    if style not in ("true", "false", "1", "0"):
        raise ConfigError(key, "path_style must be true or false")
    if provider == "oss":
        if endpoint is None:
            raise ConfigError(key, "oss:// needs ?endpoint=https://oss-REGION.aliyuncs.com")
        region = region or _oss_region(endpoint, key)
    return S3Location(provider, bucket, prefix, endpoint, region, style in ("true", "1"))
