"""``minibase.toml`` → one typed, immutable :class:`Config` (DESIGN §3).

The environment is read here and nowhere else: ``"env:NAME"`` values are resolved at
load time. Every missing or wrong value raises :class:`ConfigError` naming its key, and so
does every unknown key (a typo should not silently fall back to a default).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.rules import Rule, RuleError, parse_rule
from .errors import ConfigError
from .util.durations import parse_duration

__all__ = [
    "AlipayConfig",
    "AppConfig",
    "AuthConfig",
    "CollectionConfig",
    "Config",
    "DatabaseConfig",
    "DouyinConfig",
    "FilesConfig",
    "FunctionsConfig",
    "LimitsConfig",
    "WechatConfig",
    "load_config",
    "parse_config",
]

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RULE_PRESETS = ("owner", "authenticated", "public", "none")


@dataclass(frozen=True, slots=True)
class AppConfig:
    name: str = "minibase"
    service: str = "minibase"
    default_collection: str = "default"
    # MAC keys, newest first; the first signs, all verify (rotation). Empty: the server
    # generates one into the data directory on first start.
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AlipayConfig:
    app_id: str
    private_key_file: Path
    alipay_public_key_file: Path
    gateway: str = "https://openapi.alipay.com/gateway.do"
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class WechatConfig:
    app_id: str
    secret: str = field(repr=False)
    api: str = "https://api.weixin.qq.com"
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class DouyinConfig:
    app_id: str
    secret: str = field(repr=False)
    api: str = "https://developer.toutiao.com"
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class AuthConfig:
    session_idle: float = 30 * 86400.0
    session_max: float = 180 * 86400.0
    credentials_ttl: float = 900.0
    credentials: str = "local"
    dev_enabled: bool = False
    alipay: AlipayConfig | None = None
    wechat: WechatConfig | None = None
    douyin: DouyinConfig | None = None
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


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite:///minibase.db"


@dataclass(frozen=True, slots=True)
class FilesConfig:
    url: str = "file://files"


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class FunctionsConfig:
    """The developer's own functions: a module to import, and their time limits."""

    module: str | None = None  # dotted module name, imported from the config's folder
    path: Path | None = None  # the folder put on sys.path for it (the config's folder)
    timeout: float = 10.0
    timeouts: Mapping[str, float] = field(default_factory=dict)  # per function

    def timeout_for(self, name: str) -> float:
        return self.timeouts.get(name, self.timeout)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_body: int = 1024 * 1024  # bytes of one request body
    max_depth: int = 32  # nesting of JSON objects/arrays in an event
    max_id_length: int = 256


@dataclass(frozen=True, slots=True)
class Config:
    app: AppConfig = field(default_factory=AppConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
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
    _only(raw, "", {"app", "auth", "database", "files", "collections", "limits", "functions"})

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
    _only(a, "app", {"name", "service", "default_collection", "secret"})
    app = AppConfig(
        name=r.name(a, "app.name", "minibase"),
        service=r.name(a, "app.service", "minibase"),
        default_collection=r.name(a, "app.default_collection", "default"),
        secrets=secrets,
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
    if not db_url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise ConfigError("database.url", "expected sqlite:///PATH or postgresql://user@host/db")

    fs = r.table(raw, "files")
    _only(fs, "files", {"url"})
    files_url = r.string(fs, "files.url", "file://files")

    lim = r.table(raw, "limits")
    _only(lim, "limits", {"max_body", "max_depth", "max_id_length"})
    limits = LimitsConfig(
        max_body=r.integer(lim, "limits.max_body", 1024 * 1024, 1024, 64 * 1024 * 1024),
        max_depth=r.integer(lim, "limits.max_depth", 32, 2, 256),
        max_id_length=r.integer(lim, "limits.max_id_length", 256, 1, 1024),
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
        database=DatabaseConfig(url=db_url),
        files=FilesConfig(url=files_url),
        limits=limits,
        collections=cols,
        data_dir=Path(data_dir),
        source=source,
    )


def _only(table: Mapping[str, Any], key: str, allowed: set[str]) -> None:
    for k in table:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            raise ConfigError(where, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


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
