"""``minibase.toml`` → one typed, immutable :class:`Config` (DESIGN §3).

The environment is read here and nowhere else: ``"env:NAME"`` values are resolved at
load time. Every missing or wrong value raises :class:`ConfigError` naming its key, and so
does every unknown key (a typo should not silently fall back to a default).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .data.rules import Rule, RuleError, parse_rule
from .errors import ConfigError
from .util.durations import parse_duration
from .util.record import field, record, record_fields

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (FC's python3.10 runtime): tomllib's origin, the tomli package
    import tomli as tomllib

__all__ = [
    "AlipayConfig",
    "AppConfig",
    "AuthConfig",
    "CollectionConfig",
    "Config",
    "DatabaseConfig",
    "DouyinConfig",
    "FilesArea",
    "FilesConfig",
    "FunctionsConfig",
    "LimitsConfig",
    "Rate",
    "RateLimitsConfig",
    "S3Location",
    "StsConfig",
    "WechatConfig",
    "load_config",
    "parse_config",
    "parse_rate",
    "parse_s3_url",
    "parse_size",
]

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RULE_PRESETS = ("owner", "authenticated", "public", "none")


@record
class AppConfig:
    """The ``[app]`` section: names, the server secret(s), the web folder, CORS."""

    name: str = "minibase"
    service: str = "minibase"
    default_collection: str = "default"
    # MAC keys, newest first; the first signs, all verify (rotation). Empty: the server
    # generates one into the data directory on first start.
    secrets: tuple[str, ...] = ()
    web: Path | None = None  # a folder served at "/" (the example's web app)
    cors_origins: tuple[str, ...] = ()  # origins allowed to call from a browser; "*" for any


@record
class AlipayConfig:
    """``[auth.alipay]``: the app id, key files and gateway of Alipay's OpenAPI."""

    app_id: str
    private_key_file: Path
    alipay_public_key_file: Path
    gateway: str = "https://openapi.alipay.com/gateway.do"
    timeout: float = 5.0


@record
class WechatConfig:
    """``[auth.wechat]``: the app id and secret for jscode2session."""

    app_id: str
    secret: str = field(repr=False)
    api: str = "https://api.weixin.qq.com"
    timeout: float = 5.0


@record
class DouyinConfig:
    """``[auth.douyin]``: the app id and secret for Douyin's jscode2session."""

    app_id: str
    secret: str = field(repr=False)
    api: str = "https://developer.toutiao.com"
    timeout: float = 5.0


@record
class StsConfig:
    """``[auth.sts]``: invoke credentials from STS ``AssumeRole`` (``auth.credentials = "sts"``).

    ``endpoint`` is ``scheme://host[:port]``. The caller credentials that sign AssumeRole are
    minibase's own (``ALIBABA_CLOUD_ACCESS_KEY_ID``/``_SECRET``/``SECURITY_TOKEN``, which FC
    sets for a service with a role).
    """

    role_arn: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    endpoint: str = "https://sts.aliyuncs.com"
    region: str = "*"  # in the policy's resource ARNs
    account_id: str = "*"  # likewise; defaults to the role's account
    duration: float = 900.0  # DurationSeconds; default auth.credentials_ttl
    timeout: float = 5.0
    fc_version: str = "2.0"  # resource ARN style: "2.0" (services/S/functions/*) or "3.0"
    functions: tuple[str, ...] | None = None  # FC 3.0 function names/patterns; None: the app's


@record
class AuthConfig:
    """The ``[auth]`` section: session lifetimes, credentials, the login providers."""

    session_idle: float = 30 * 86400.0
    session_max: float = 180 * 86400.0
    credentials_ttl: float = 900.0
    credentials: str = "local"
    dev_enabled: bool = False
    alipay: AlipayConfig | None = None
    wechat: WechatConfig | None = None
    douyin: DouyinConfig | None = None
    sts: StsConfig | None = None  # set exactly when credentials == "sts"
    # Providers declared in the file whose env: values are all unset: name → hint.
    # They refuse logins with a clear message instead of failing the whole server.
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers that can log users in, in a stable order."""
        names = [n for n in ("alipay", "wechat", "douyin") if getattr(self, n) is not None]
        if self.dev_enabled:
            names.append("dev")
        return tuple(names)


@record
class DatabaseConfig:
    """The ``[database]`` section: where documents, users and sessions live."""

    url: str = "sqlite:///minibase.db"
    # TableStore credentials, from ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/SECURITY_TOKEN (set
    # by the Function Compute runtime) when url is tablestore://; else None.
    access_key_id: str | None = field(default=None, repr=False)
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)

    @property
    def tablestore(self) -> TableStoreLocation | None:
        """The parsed ``tablestore://`` url; None for other databases."""
        return parse_tablestore_url(self.url) if self.url.startswith("tablestore://") else None


@record
class TableStoreLocation:
    """A ``tablestore://INSTANCE?endpoint=…`` URL, parsed."""

    instance: str
    endpoint: str
    prefix: str = "minibase_"


_OTS_INSTANCE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
_OTS_PREFIX_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


def parse_tablestore_url(url: str, key: str = "database.url") -> TableStoreLocation:
    """``tablestore://INSTANCE?endpoint=https://INSTANCE.REGION.ots.aliyuncs.com[&prefix=P]``."""
    parts = urlsplit(url)
    expected = "expected tablestore://INSTANCE?endpoint=https://INSTANCE.REGION.ots.aliyuncs.com"
    if parts.scheme != "tablestore" or parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(key, expected)
    instance = parts.netloc
    if not _OTS_INSTANCE_RE.match(instance):
        raise ConfigError(key, f"{instance!r} is not a TableStore instance name (3-32 of [A-Za-z0-9-])")
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in ("endpoint", "prefix"):
            raise ConfigError(key, f"unknown parameter {name!r} (expected endpoint, prefix)")
        if name in params:
            raise ConfigError(key, f"parameter {name!r} given twice")
        params[name] = value
    endpoint = params.get("endpoint", "").rstrip("/")
    if not endpoint:
        raise ConfigError(key, f"the endpoint parameter is required: {expected}")
    if not _HOST_URL_RE.match(endpoint):
        raise ConfigError(key, f"endpoint {endpoint!r} is not an http(s)://host[:port] URL")
    prefix = params.get("prefix", "minibase_")
    if not _OTS_PREFIX_RE.match(prefix):
        raise ConfigError(key, f"prefix {prefix!r} is not a table name prefix (letters, digits, _)")
    return TableStoreLocation(instance, endpoint, prefix)


MiB = 1024 * 1024
FILE_RULE_PRESETS = ("public", "authenticated", "owner", "none")
MAX_FILE_SIZE = 5 * 1024 * MiB  # S3's limit for one PUT


@record
class FilesArea:
    """A shared area of the file space, ``[files.areas.NAME]``: every path starting with
    ``prefix`` belongs to it (instead of to the caller's own ``users/<uid>/`` area).

    ``read``/``write`` are presets: ``public`` (anyone, even without logging in),
    ``authenticated`` (any logged-in user), ``owner`` (the user who uploaded the file;
    any logged-in user may create a new one) or ``none``. ``max_size``/``content_types``
    replace the ``[files]`` ones for this area when set.
    """

    name: str
    prefix: str
    read: str = "owner"
    write: str = "owner"
    max_size: int | None = None
    content_types: tuple[str, ...] | None = None


@record
class S3Location:
    """Where an ``s3://`` (or ``oss://``) ``files.url`` points."""

    provider: str  # "s3" or "oss" (Alibaba OSS through its S3-compatible API)
    bucket: str
    prefix: str  # inside the bucket: "" or ending with "/"
    endpoint: str | None  # None: AWS's own
    region: str | None
    path_style: bool


@record
class FilesConfig:
    """The ``[files]`` section: the store, limits, URL lifetime and areas."""

    url: str = "file://files"
    max_size: int = 10 * MiB  # bytes of one file
    content_types: tuple[str, ...] = ()  # allowed patterns ("image/*"); empty: any
    url_ttl: float = 900.0  # seconds a signed URL stays valid
    base_url: str | None = None  # public base of this server for local URLs; None: the request's
    areas: Mapping[str, FilesArea] = field(default_factory=dict)
    # S3 credentials; None: the SDK's default chain (AWS_ACCESS_KEY_ID, ~/.aws, roles, ...).
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @property
    def backend(self) -> str:
        """``"local"`` (``file://``) or ``"s3"`` (``s3://``, ``oss://``)."""
        return "local" if self.url.startswith("file://") else "s3"

    @property
    def s3(self) -> S3Location | None:
        """The parsed bucket location of an ``s3://``/``oss://`` url; None for ``file://``."""
        return None if self.backend == "local" else parse_s3_url(self.url)

    def area_for(self, path: str) -> FilesArea | None:
        """The shared area ``path`` (relative, as a client writes it) belongs to, if any."""
        for area in self.areas.values():
            if path.startswith(area.prefix):
                return area
        return None


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_HOST_URL_RE = re.compile(r"^https?://[A-Za-z0-9.\[\]:-]+(:\d+)?$")


def parse_s3_url(url: str, key: str = "files.url") -> S3Location:
    """``s3://bucket[/prefix]?endpoint=URL&region=R&path_style=true`` (``oss://`` alike)."""
    parts = urlsplit(url)
    provider = parts.scheme
    if provider not in ("s3", "oss"):
        raise ConfigError(
            key, "expected file://DIR, s3://bucket?endpoint=...&region=... or oss://bucket?endpoint=..."
        )
    bucket = parts.netloc
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ConfigError(key, f"{bucket!r} is not a bucket name (3-63 of [a-z0-9.-])")
    prefix = parts.path.strip("/")
    if prefix:
        if any(not seg or seg in (".", "..") for seg in prefix.split("/")) or "\\" in prefix:
            raise ConfigError(key, f"{parts.path!r} is not a key prefix (a/b/c)")
        prefix += "/"
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in ("endpoint", "region", "path_style"):
            raise ConfigError(key, f"unknown parameter {name!r} (expected endpoint, region, path_style)")
        if name in params:
            raise ConfigError(key, f"parameter {name!r} given twice")
        params[name] = value
    endpoint = params.get("endpoint") or None
    if endpoint is not None:
        endpoint = endpoint.rstrip("/")
        if not _HOST_URL_RE.match(endpoint):
            raise ConfigError(key, f"endpoint {endpoint!r} is not an http(s)://host[:port] URL")
    region = params.get("region") or None
    if region is not None and not re.match(r"^[a-z0-9-]{1,64}$", region):
        raise ConfigError(key, f"region {region!r} is not a region name")
    style = params.get("path_style", "false").lower()
    if style not in ("true", "false", "1", "0"):
        raise ConfigError(key, "path_style must be true or false")
    if provider == "oss":
        if endpoint is None:
            raise ConfigError(key, "oss:// needs ?endpoint=https://oss-REGION.aliyuncs.com")
        if region is None:
            # https://oss-cn-hangzhou.aliyuncs.com → oss-cn-hangzhou, as OSS names regions
            host = urlsplit(endpoint).hostname or ""
            first = host.split(".", 1)[0]
            if not first.startswith("oss-"):
                raise ConfigError(key, "oss:// needs &region=oss-REGION (cannot tell it from the endpoint)")
            region = first.removesuffix("-internal")
    return S3Location(
        provider=provider,
        bucket=bucket,
        prefix=prefix,
        endpoint=endpoint,
        region=region,
        path_style=style in ("true", "1"),
    )


@record
class CollectionConfig:
    """Rules per operation (parsed), an optional JSON Schema and declared indexes."""

    read: Rule = field(default_factory=lambda: parse_rule("owner"))
    create: Rule = field(default_factory=lambda: parse_rule("owner"))
    update: Rule = field(default_factory=lambda: parse_rule("owner"))
    delete: Rule = field(default_factory=lambda: parse_rule("owner"))
    schema: Mapping[str, Any] | None = None
    indexes: tuple[tuple[tuple[str, ...], ...], ...] = ()

    def rule(self, op: str) -> Rule:
        rule: Rule = getattr(self, op)
        return rule


@record
class FunctionsConfig:
    """The developer's own functions: a module to import, and their time limits."""

    module: str | None = None  # dotted module name, imported from the config's folder
    path: Path | None = None  # the folder put on sys.path for it (the config's folder)
    timeout: float = 10.0
    timeouts: Mapping[str, float] = field(default_factory=dict)  # per function

    def timeout_for(self, name: str) -> float:
        return self.timeouts.get(name, self.timeout)


@record
class LimitsConfig:
    """Input limits, checked on every event before any function runs (data/validate.py)."""

    max_body: int = 1024 * 1024  # bytes of one request body (or FC Invoke API event)
    max_depth: int = 32  # nesting of JSON objects/arrays in an event (the event itself is 1)
    max_id_length: int = 256  # characters of a document id
    max_string_length: int = 256 * 1024  # characters of any one string value in an event
    max_key_length: int = 256  # characters of any one object key in an event
    max_keys: int = 1000  # keys of any one object in an event
    max_batch: int = 100  # ops in one db batch
    max_query_limit: int = 1000  # the largest `limit` a db query/list may ask for


@record
class Rate:
    """``count`` calls per ``per`` seconds: a token bucket holding ``count`` tokens
    (the burst) that refills at ``count / per`` tokens a second."""

    count: int
    per: float

    @property
    def burst(self) -> float:
        return float(self.count)

    @property
    def per_second(self) -> float:
        return self.count / self.per


@record
class RateLimitsConfig:
    """Rate limits (None: off). State lives in the database, so they hold across instances.

    Per-address limits count everyone behind one NAT together (mobile carriers put many
    users behind one address), hence their generous defaults.
    """

    login_per_ip: Rate | None = Rate(60, 60.0)  # session calls (login, refresh, logout) per client address
    login_per_subject: Rate | None = Rate(20, 60.0)  # logins per platform user; refreshes per uid
    calls_per_user: Rate | None = Rate(100, 1.0)  # db, files and developer functions, per uid
    calls_per_ip: Rate | None = Rate(50, 1.0)  # the same without a session, per client address


@record
class Config:
    """The whole configuration, typed and checked; passed down from the edge."""

    app: AppConfig = field(default_factory=AppConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    rate_limits: RateLimitsConfig = field(default_factory=RateLimitsConfig)
    functions: FunctionsConfig = field(default_factory=FunctionsConfig)
    collections: Mapping[str, CollectionConfig] = field(default_factory=dict)
    data_dir: Path = Path("data")
    source: Path | None = None  # the file this came from, for messages

    def collection(self, name: str) -> CollectionConfig:
        return self.collections.get(name) or _DEFAULT_COLLECTION

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of ``database.url``, resolved inside the data dir; else None."""
        url = self.database.url
        if not url.startswith("sqlite://"):
            return None
        rest = url[len("sqlite://") :]
        # sqlite:///rel.db → "rel.db" inside the data dir; sqlite:////abs.db → "/abs.db"
        path = Path(rest[1:]) if rest.startswith("/") else Path(rest)
        return path if path.is_absolute() else self.data_dir / path

    @property
    def files_root(self) -> Path | None:
        """The directory of a ``file://`` ``files.url``, resolved inside the data dir; else None.

        ``file://files`` → ``<data dir>/files``; ``file:///srv/files`` → ``/srv/files``.
        """
        url = self.files.url
        if not url.startswith("file://"):
            return None
        path = Path(url[len("file://") :])
        return path if path.is_absolute() else self.data_dir / path


_DEFAULT_COLLECTION = CollectionConfig()


# --------------------------------------------------------------------------- loading


def load_config(
    path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and check ``minibase.toml``. ``data_dir`` defaults to ``./data`` beside it."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(p), "config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), f"not valid TOML: {e}") from None
    base = p.resolve().parent
    ddir = Path(data_dir) if data_dir is not None else base / "data"
    return parse_config(raw, data_dir=ddir, base_dir=base, environ=environ, source=p)


def parse_config(
    raw: Mapping[str, Any],
    *,
    data_dir: str | os.PathLike[str] = "data",
    base_dir: str | os.PathLike[str] = ".",
    environ: Mapping[str, str] | None = None,
    source: Path | None = None,
) -> Config:
    r = _Reader(os.environ if environ is None else environ, Path(base_dir))
    _only(raw, "", {"app", "auth", "database", "files", "collections", "limits", "rate_limits", "functions"})

    a = r.table(raw, "app")
    secrets_raw = r.value(a, "app.secret", None)
    if secrets_raw is None:
        secrets: tuple[str, ...] = ()
    elif isinstance(secrets_raw, str):
        secrets = (secrets_raw,)
    elif isinstance(secrets_raw, list) and secrets_raw and all(isinstance(s, str) for s in secrets_raw):
        secrets = tuple(r.resolve(s, f"app.secret[{i}]") for i, s in enumerate(secrets_raw))
    else:
        raise ConfigError("app.secret", "expected a string or a non-empty list of strings")
    for s in secrets:
        if len(s) < 32:
            raise ConfigError("app.secret", "each secret must be at least 32 characters")
    _only(a, "app", {"name", "service", "default_collection", "secret", "web", "cors_origins"})
    web = None
    if "web" in a:
        web = r.path(r.string(a, "app.web", ""))
        if not web.is_dir():
            raise ConfigError("app.web", f"{web} is not a folder")
    cors = a.get("cors_origins", [])
    if not isinstance(cors, list) or not all(
        isinstance(o, str) and (o == "*" or re.match(r"^https?://[^/\s]+$", o)) for o in cors
    ):
        raise ConfigError(
            "app.cors_origins", 'expected a list of origins like "https://example.com", or ["*"]'
        )
    app = AppConfig(
        name=r.name(a, "app.name", "minibase"),
        service=r.name(a, "app.service", "minibase"),
        default_collection=r.name(a, "app.default_collection", "default"),
        secrets=secrets,
        web=web,
        cors_origins=tuple(cors),
    )

    au = r.table(raw, "auth")
    _only(
        au,
        "auth",
        {
            "session_idle",
            "session_max",
            "credentials_ttl",
            "credentials",
            "dev",
            "alipay",
            "wechat",
            "douyin",
            "sts",
        },
    )
    idle = r.duration(au, "auth.session_idle", 30 * 86400)
    smax = r.duration(au, "auth.session_max", 180 * 86400)
    if idle > smax:
        raise ConfigError("auth.session_idle", "must not be longer than auth.session_max")
    ttl = r.duration(au, "auth.credentials_ttl", 900)
    if not 900 <= ttl <= 3600:
        raise ConfigError("auth.credentials_ttl", "must be between 15m (900 s) and 1h (3600 s)")
    mode = r.string(au, "auth.credentials", "local")
    if mode not in ("local", "sts"):
        raise ConfigError("auth.credentials", "must be 'local' or 'sts'")
    sts = _parse_sts(r, r.table(au, "auth.sts"), mode, ttl)

    dev = r.table(au, "auth.dev")
    _only(dev, "auth.dev", {"enabled"})
    dev_enabled = r.boolean(dev, "auth.dev.enabled", False)

    unavailable: dict[str, str] = {}
    alipay = r.provider(
        au,
        "alipay",
        unavailable,
        required=("app_id", "private_key_file", "alipay_public_key_file"),
        optional=("gateway", "timeout"),
    )
    wechat = r.provider(au, "wechat", unavailable, required=("app_id", "secret"), optional=("api", "timeout"))
    douyin = r.provider(au, "douyin", unavailable, required=("app_id", "secret"), optional=("api", "timeout"))
    auth = AuthConfig(
        session_idle=idle,
        session_max=smax,
        credentials_ttl=ttl,
        credentials=mode,
        sts=sts,
        dev_enabled=dev_enabled,
        alipay=AlipayConfig(
            app_id=alipay["app_id"],
            private_key_file=r.path(alipay["private_key_file"]),
            alipay_public_key_file=r.path(alipay["alipay_public_key_file"]),
            gateway=r.url(alipay, "auth.alipay.gateway", "https://openapi.alipay.com/gateway.do"),
            timeout=r.duration(alipay, "auth.alipay.timeout", 5),
        )
        if alipay
        else None,
        wechat=WechatConfig(
            app_id=wechat["app_id"],
            secret=wechat["secret"],
            api=r.url(wechat, "auth.wechat.api", "https://api.weixin.qq.com"),
            timeout=r.duration(wechat, "auth.wechat.timeout", 5),
        )
        if wechat
        else None,
        douyin=DouyinConfig(
            app_id=douyin["app_id"],
            secret=douyin["secret"],
            api=r.url(douyin, "auth.douyin.api", "https://developer.toutiao.com"),
            timeout=r.duration(douyin, "auth.douyin.timeout", 5),
        )
        if douyin
        else None,
        unavailable=unavailable,
    )
    if not auth.providers and not unavailable:
        raise ConfigError(
            "auth",
            "no login provider configured: add [auth.alipay], "
            "[auth.wechat], [auth.douyin] or, for development, [auth.dev]",
        )

    db = r.table(raw, "database")
    _only(db, "database", {"url"})
    db_url = r.string(db, "database.url", "sqlite:///minibase.db")
    if not db_url.startswith(("sqlite://", "postgresql://", "postgres://", "tablestore://")):
        raise ConfigError(
            "database.url",
            "expected sqlite:///PATH, postgresql://user@host/db or tablestore://INSTANCE?endpoint=URL",
        )
    database = DatabaseConfig(url=db_url)
    if db_url.startswith("tablestore://"):
        parse_tablestore_url(db_url)
        key_id = r.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID") or None
        secret = r.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET") or None
        if key_id is None or secret is None:
            raise ConfigError(
                "database.url",
                "TableStore needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"
                " in the environment (Function Compute sets them from the service's role)",
            )
        database = DatabaseConfig(
            url=db_url,
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=r.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None,
        )

    files = _parse_files(r, r.table(raw, "files"))

    lim = r.table(raw, "limits")
    _only(
        lim,
        "limits",
        {
            "max_body",
            "max_depth",
            "max_id_length",
            "max_string_length",
            "max_key_length",
            "max_keys",
            "max_batch",
            "max_query_limit",
        },
    )
    limits = LimitsConfig(
        max_body=r.integer(lim, "limits.max_body", 1024 * 1024, 1024, 64 * 1024 * 1024),
        max_depth=r.integer(lim, "limits.max_depth", 32, 2, 256),
        max_id_length=r.integer(lim, "limits.max_id_length", 256, 1, 1024),
        max_string_length=r.integer(lim, "limits.max_string_length", 256 * 1024, 16, 64 * 1024 * 1024),
        max_key_length=r.integer(lim, "limits.max_key_length", 256, 8, 4096),
        max_keys=r.integer(lim, "limits.max_keys", 1000, 16, 100_000),
        # A batch is one transaction holding the write lock: 100 is the hard cap.
        max_batch=r.integer(lim, "limits.max_batch", 100, 1, 100),
        max_query_limit=r.integer(lim, "limits.max_query_limit", 1000, 1, 1000),
    )

    rl = r.table(raw, "rate_limits")
    _only(rl, "rate_limits", set(record_fields(RateLimitsConfig)))
    defaults = RateLimitsConfig()
    rate_limits = RateLimitsConfig(
        **{k: r.rate(rl, f"rate_limits.{k}", getattr(defaults, k)) for k in record_fields(RateLimitsConfig)}
    )

    cols: dict[str, CollectionConfig] = {}
    for cname, ctab in r.table(raw, "collections").items():
        key = f"collections.{cname}"
        if not isinstance(ctab, dict):
            raise ConfigError(key, "expected a table")
        if not _NAME_RE.match(cname):
            raise ConfigError(key, "collection names are 1-64 of [A-Za-z0-9_-], starting with a letter")
        _only(ctab, key, {"read", "write", "create", "update", "delete", "schema", "indexes"})
        write = r.string(ctab, f"{key}.write", "owner")
        cols[cname] = CollectionConfig(
            read=r.rule(ctab, f"{key}.read", "owner"),
            create=r.rule(ctab, f"{key}.create", write, f"{key}.write"),
            update=r.rule(ctab, f"{key}.update", write, f"{key}.write"),
            delete=r.rule(ctab, f"{key}.delete", write, f"{key}.write"),
            schema=r.schema(ctab, f"{key}.schema"),
            indexes=r.indexes(ctab, f"{key}.indexes"),
        )

    fn = r.table(raw, "functions")
    _only(fn, "functions", {"module", "timeout", "timeouts"})
    module = fn.get("module")
    if module is not None and (not isinstance(module, str) or not _MODULE_RE.match(module)):
        raise ConfigError("functions.module", "expected a dotted Python module name, e.g. 'functions'")
    timeouts_raw = r.table(fn, "functions.timeouts")
    functions = FunctionsConfig(
        module=module,
        path=Path(base_dir) if module else None,
        timeout=r.duration(fn, "functions.timeout", 10),
        timeouts={k: r.duration(timeouts_raw, f"functions.timeouts.{k}", 10) for k in timeouts_raw},
    )
    for k, v in [
        ("functions.timeout", functions.timeout),
        *((f"functions.timeouts.{n}", t) for n, t in functions.timeouts.items()),
    ]:
        if not 0 < v <= 900:
            raise ConfigError(k, "must be between 0 and 15 minutes")

    return Config(
        app=app,
        functions=functions,
        auth=auth,
        database=database,
        files=files,
        limits=limits,
        rate_limits=rate_limits,
        collections=cols,
        data_dir=Path(data_dir),
        source=source,
    )


_FILES_KEYS = {
    "url",
    "max_size",
    "content_types",
    "url_ttl",
    "base_url",
    "areas",
    "access_key_id",
    "secret_access_key",
    "session_token",
}
_AREA_KEYS = {"prefix", "read", "write", "max_size", "content_types"}
_AREA_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.~+=@-]+(/[A-Za-z0-9_.~+=@-]+)*/$")
_MAX_AREAS = 32


def _parse_files(r: _Reader, fs: Mapping[str, Any]) -> FilesConfig:
    _only(fs, "files", _FILES_KEYS)
    url = r.string(fs, "files.url", "file://files")
    if url.startswith("file://"):
        if url == "file://":
            raise ConfigError("files.url", "file:// needs a directory, e.g. file://files")
    else:
        parse_s3_url(url)
    ttl = r.duration(fs, "files.url_ttl", 900)
    if not 60 <= ttl <= 7 * 86400:
        raise ConfigError("files.url_ttl", "must be between 1m and 7d")
    base_url = None
    if "base_url" in fs:
        base_url = r.url(fs, "files.base_url", "")
        if urlsplit(base_url).query or urlsplit(base_url).fragment:
            raise ConfigError("files.base_url", "expected a URL without query or fragment")
    s3_keys = {}
    for name in ("access_key_id", "secret_access_key", "session_token"):
        if name in fs:
            if url.startswith("file://"):
                raise ConfigError(f"files.{name}", "only for s3:// and oss:// urls")
            s3_keys[name] = r.string(fs, f"files.{name}", "")
    if ("access_key_id" in s3_keys) != ("secret_access_key" in s3_keys):
        missing = "secret_access_key" if "access_key_id" in s3_keys else "access_key_id"
        raise ConfigError(f"files.{missing}", "access_key_id and secret_access_key go together")
    if "session_token" in s3_keys and "access_key_id" not in s3_keys:
        raise ConfigError("files.session_token", "needs access_key_id and secret_access_key")

    areas: dict[str, FilesArea] = {}
    raw_areas = r.table(fs, "files.areas")
    if len(raw_areas) > _MAX_AREAS:
        raise ConfigError("files.areas", f"at most {_MAX_AREAS} areas")
    for name, at in raw_areas.items():
        key = f"files.areas.{name}"
        if not isinstance(at, dict):
            raise ConfigError(key, "expected a table")
        if not _NAME_RE.match(name):
            raise ConfigError(key, "area names are 1-64 of [A-Za-z0-9_-], starting with a letter")
        _only(at, key, _AREA_KEYS)
        prefix = r.string(at, f"{key}.prefix", f"{name}/")
        if not _AREA_PREFIX_RE.match(prefix) or any(s in (".", "..") for s in prefix.split("/")):
            raise ConfigError(f"{key}.prefix", "expected a folder path ending with '/', e.g. 'public/'")
        if prefix == "users/" or prefix.startswith("users/"):
            raise ConfigError(f"{key}.prefix", "users/ is where each user's own files live")
        for other in areas.values():
            if prefix.startswith(other.prefix) or other.prefix.startswith(prefix):
                raise ConfigError(
                    f"{key}.prefix", f"overlaps files.areas.{other.name}.prefix ({other.prefix!r})"
                )
        areas[name] = FilesArea(
            name=name,
            prefix=prefix,
            read=_file_rule(r, at, f"{key}.read"),
            write=_file_rule(r, at, f"{key}.write"),
            max_size=_size(r, at, f"{key}.max_size", None),
            content_types=_content_types(r, at, f"{key}.content_types"),
        )
    return FilesConfig(
        url=url,
        max_size=_size(r, fs, "files.max_size", 10 * MiB) or 10 * MiB,
        content_types=_content_types(r, fs, "files.content_types") or (),
        url_ttl=ttl,
        base_url=base_url,
        areas=areas,
        **s3_keys,
    )


def _file_rule(r: _Reader, t: Mapping[str, Any], key: str) -> str:
    v = r.string(t, key, "owner")
    if v not in FILE_RULE_PRESETS:
        raise ConfigError(key, f"expected one of: {', '.join(FILE_RULE_PRESETS)}")
    return v


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib|k|m|g)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
}


def parse_size(value: object) -> int:
    """Bytes from ``1048576``, ``"10MiB"``, ``"512 KiB"``, ``"1.5MB"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a size like '10MiB' or a number of bytes")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    raise ValueError(f"expected a size like '10MiB' or a number of bytes, got {value!r}")


def _size(r: _Reader, t: Mapping[str, Any], key: str, default: int | None) -> int | None:
    v = r.value(t, key, None)
    if v is None:
        return default
    try:
        n = parse_size(v)
    except ValueError as e:
        raise ConfigError(key, str(e)) from None
    if not 1 <= n <= MAX_FILE_SIZE:
        raise ConfigError(key, "must be between 1 byte and 5GiB")
    return n


_MIME_PART = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_CONTENT_TYPE_PATTERN_RE = re.compile(rf"^(\*/\*|{_MIME_PART}/\*|{_MIME_PART}/{_MIME_PART})$")


def _content_types(r: _Reader, t: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    v = r.value(t, key, None)
    if v is None:
        return None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or len(v) > 64:
        raise ConfigError(
            key, "expected a non-empty list (at most 64) of types like 'image/*' or 'application/pdf'"
        )
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, str) or not _CONTENT_TYPE_PATTERN_RE.match(item.strip().lower()):
            raise ConfigError(
                f"{key}[{i}]", f"{item!r} is not a content type pattern like 'image/*' or 'text/plain'"
            )
        out.append(item.strip().lower())
    return tuple(out)


_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$", re.I)
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_RATE_UNITS |= {"d": 86400, "day": 86400}


def parse_rate(text: str) -> Rate:
    """``"100/s"``, ``"20/min"``, ``"5/10s"``, ``"1000/day"`` → :class:`Rate`."""
    m = _RATE_RE.match(text)
    if m is None:
        raise ValueError(f'{text!r} is not a rate like "100/s", "20/min", "5/10s", or "off"')
    count, times = int(m.group(1)), int(m.group(2) or 1)
    per = times * _RATE_UNITS[m.group(3).lower()]
    if not 1 <= count <= 1_000_000 or not 1 <= per <= 86400:
        raise ValueError("expected 1 to 1000000 calls per 1 s to 1 day")
    return Rate(count, float(per))


def _only(table: Mapping[str, Any], key: str, allowed: set[str]) -> None:
    for k in table:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            raise ConfigError(where, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


_ROLE_ARN_RE = re.compile(r"^acs:ram::([0-9]{1,32}):role/[A-Za-z0-9.@_+=,/-]{1,128}$")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
STS_KEYS = {"role_arn", "endpoint", "region", "account_id", "duration", "timeout", "fc_version", "functions"}


def _parse_sts(r: _Reader, t: Mapping[str, Any], mode: str, ttl: float) -> StsConfig | None:
    """``[auth.sts]``; None unless ``auth.credentials = "sts"``."""
    _only(t, "auth.sts", STS_KEYS)
    if mode != "sts":
        return None
    if "role_arn" not in t:
        raise ConfigError(
            "auth.sts.role_arn", 'required when auth.credentials = "sts" (acs:ram::ACCOUNT:role/NAME)'
        )
    role_arn = r.string(t, "auth.sts.role_arn", "")
    m = _ROLE_ARN_RE.match(role_arn)
    if m is None:
        raise ConfigError(
            "auth.sts.role_arn", f"{role_arn!r} is not a RAM role ARN (acs:ram::ACCOUNT:role/NAME)"
        )
    endpoint = r.string(t, "auth.sts.endpoint", "sts.aliyuncs.com").rstrip("/")
    if "://" not in endpoint:
        endpoint = "https://" + endpoint
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.path or parts.query:
        raise ConfigError(
            "auth.sts.endpoint", f"{endpoint!r}: expected a host (sts.aliyuncs.com) or https://host[:port]"
        )
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if parts.scheme == "http" and host not in _LOOPBACK:
        # AssumeRole sends minibase's own credentials' signature and returns secrets.
        raise ConfigError(
            "auth.sts.endpoint", "plain http is only allowed for a loopback test endpoint; use https"
        )
    region = r.string(t, "auth.sts.region", "*")
    if not re.match(r"^(\*|[a-z0-9-]{1,64})$", region):
        raise ConfigError("auth.sts.region", f"{region!r} is not a region id (e.g. cn-hangzhou) or *")
    account = str(r.value(t, "auth.sts.account_id", m.group(1)))
    if not re.match(r"^(\*|[0-9]{1,32})$", account):
        raise ConfigError("auth.sts.account_id", "expected the numeric account id or *")
    duration = r.duration(t, "auth.sts.duration", ttl)
    if not 900 <= duration <= 3600:
        raise ConfigError("auth.sts.duration", "must be between 15m (900 s) and 1h (3600 s)")
    timeout = r.duration(t, "auth.sts.timeout", 5)
    if not 0 < timeout <= 60:
        raise ConfigError("auth.sts.timeout", "must be between 0 and 60 s")
    fc_version = str(r.value(t, "auth.sts.fc_version", "2.0"))
    if fc_version not in ("2.0", "3.0"):
        raise ConfigError("auth.sts.fc_version", "must be '2.0' or '3.0'")
    functions = None
    if "functions" in t:
        fl = t["functions"]
        if (
            not isinstance(fl, list)
            or not fl
            or not all(isinstance(f, str) and re.match(r"^[A-Za-z0-9_*-]{1,128}$", f) for f in fl)
        ):
            raise ConfigError(
                "auth.sts.functions", "expected a non-empty list of FC function names (* allowed)"
            )
        functions = tuple(fl)
    # minibase's own credentials, as the FC runtime provides them (DESIGN §2a).
    akid = r.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
    secret = r.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
    if not akid or not secret:
        raise ConfigError(
            "auth.sts",
            "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must be set to call "
            "AssumeRole (Function Compute sets them when the service has a role)",
        )
    return StsConfig(
        role_arn=role_arn,
        access_key_id=akid,
        access_key_secret=secret,
        security_token=r.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None,
        endpoint=f"{parts.scheme}://{parts.netloc}",
        region=region,
        account_id=account,
        duration=duration,
        timeout=timeout,
        fc_version=fc_version,
        functions=functions,
    )


class _Reader:
    """Typed getters that name the key in every error and resolve ``env:NAME``."""

    def __init__(self, environ: Mapping[str, str], base: Path) -> None:
        self.environ = environ
        self.base = base

    def resolve(self, value: Any, key: str) -> Any:
        if isinstance(value, str) and value.startswith("env:"):
            name = value[4:]
            if name not in self.environ or self.environ[name] == "":
                raise ConfigError(key, f"environment variable {name} is not set")
            return self.environ[name]
        return value

    def value(self, table: Mapping[str, Any], key: str, default: Any) -> Any:
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in table:
            return default
        v = table[leaf]
        return v if isinstance(v, list) else self.resolve(v, key)

    def table(self, parent: Mapping[str, Any], key: str) -> dict[str, Any]:
        v = parent.get(key.rsplit(".", 1)[-1], {})
        if not isinstance(v, dict):
            raise ConfigError(key, "expected a table")
        return v

    def string(self, t: Mapping[str, Any], key: str, default: str) -> str:
        v = self.value(t, key, default)
        if not isinstance(v, str) or not v:
            raise ConfigError(key, "expected a non-empty string")
        return v

    def name(self, t: Mapping[str, Any], key: str, default: str) -> str:
        v = self.string(t, key, default)
        if not _NAME_RE.match(v):
            raise ConfigError(key, "expected 1-64 of [A-Za-z0-9_-], starting with a letter")
        return v

    def url(self, t: Mapping[str, Any], key: str, default: str) -> str:
        v = self.string(t, key, default)
        if not v.startswith(("https://", "http://")):
            raise ConfigError(key, "expected an http(s) URL")
        return v.rstrip("/") if not v.endswith(".do") else v

    def boolean(self, t: Mapping[str, Any], key: str, default: bool) -> bool:
        v = self.value(t, key, default)
        if isinstance(v, str) and v.lower() in ("true", "1", "yes", "false", "0", "no"):
            return v.lower() in ("true", "1", "yes")  # from env:
        if not isinstance(v, bool):
            raise ConfigError(key, "expected true or false")
        return v

    def integer(self, t: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
        v = self.value(t, key, default)
        if isinstance(v, str) and v.isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(key, f"expected an integer between {lo} and {hi}")
        return v

    def rate(self, t: Mapping[str, Any], key: str, default: Rate | None) -> Rate | None:
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in t:
            return default
        v = self.resolve(t[leaf], key)
        if v is False or (isinstance(v, str) and v.strip().lower() in ("off", "false")):
            return None
        if not isinstance(v, str):
            raise ConfigError(key, 'expected a rate like "100/s", "20/min", "5/10s", or "off"')
        try:
            return parse_rate(v)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None

    def duration(self, t: Mapping[str, Any], key: str, default: float) -> float:
        v = self.value(t, key, default)
        try:
            return parse_duration(v)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base / p

    def rule(self, t: Mapping[str, Any], key: str, default: str, default_key: str | None = None) -> Rule:
        leaf = key.rsplit(".", 1)[-1]
        where = key if leaf in t else (default_key or key)
        v = self.string(t, key, default)
        try:
            return parse_rule(v)
        except RuleError as e:
            raise ConfigError(where, f"bad rule: {e} (presets: {', '.join(RULE_PRESETS)})") from None

    def schema(self, t: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
        v = t.get("schema")
        if v is None:
            return None
        if isinstance(v, str):
            path = self.path(v)
            try:
                import json

                v = json.loads(path.read_text(encoding="utf-8"))
            except OSError as e:
                raise ConfigError(key, f"cannot read {path}: {e.strerror}") from None
            except ValueError as e:
                raise ConfigError(key, f"{path} is not valid JSON: {e}") from None
        from .data.schema import check_schema

        try:
            check_schema(v)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None
        assert isinstance(v, dict)
        return v

    def indexes(self, t: Mapping[str, Any], key: str) -> tuple[tuple[tuple[str, ...], ...], ...]:
        v = t.get("indexes", [])
        if not isinstance(v, list) or len(v) > 16:
            raise ConfigError(key, "expected a list (at most 16) of field paths or lists of field paths")
        out = []
        for i, item in enumerate(v):
            fields = [item] if isinstance(item, str) else item
            if not isinstance(fields, list) or not 1 <= len(fields) <= 4:
                raise ConfigError(f"{key}[{i}]", "expected a field path or a list of 1-4 field paths")
            paths = []
            for f in fields:
                parts = tuple(f.split(".")) if isinstance(f, str) else ()
                if (
                    not parts
                    or len(parts) > 8
                    or not all(_FIELD_RE.match(p) for p in parts)
                    or parts[0] == "uid"
                ):
                    raise ConfigError(f"{key}[{i}]", f"{f!r} is not a field path (a.b.c of [A-Za-z0-9_])")
                paths.append(parts)
            out.append(tuple(paths))
        return tuple(out)

    def provider(
        self,
        auth: Mapping[str, Any],
        name: str,
        unavailable: dict[str, str],
        *,
        required: tuple[str, ...],
        optional: tuple[str, ...],
    ) -> dict[str, Any] | None:
        key = f"auth.{name}"
        t = self.table(auth, key)
        if not t:
            return None
        _only(t, key, set(required) | set(optional) | {"enabled"})
        if not self.boolean(t, f"{key}.enabled", True):
            return None
        for r in required:
            if r not in t:
                raise ConfigError(f"{key}.{r}", "missing")
        refs = {r: t[r] for r in required}
        unset = [
            v[4:]
            for v in refs.values()
            if isinstance(v, str) and v.startswith("env:") and not self.environ.get(v[4:])
        ]
        if unset and len(unset) == len(refs):
            # Declared but not set up on this machine: keep serving the other providers.
            unavailable[name] = f"set {', '.join(unset)} to enable it"
            return None
        out = dict(t)
        for r in required:
            v = self.resolve(t[r], f"{key}.{r}")
            if not isinstance(v, str) or not v:
                raise ConfigError(f"{key}.{r}", "expected a non-empty string")
            out[r] = v
        return out
