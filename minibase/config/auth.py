"""``[auth]``: session lifetimes, invoke credentials (``[auth.sts]``), the login providers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..util.record import field, record
from .fields import TABLE, Custom, Flag, Seconds, Text, derived, file_keys, read_fields, spec
from .providers import PROVIDERS, AlipayConfig, DouyinConfig, WechatConfig, read_provider
from .reader import Reader, check_keys

__all__ = ["AuthConfig", "StsConfig"]

_ROLE_ARN_RE = re.compile(r"acs:ram::([0-9]{1,32}):role/[A-Za-z0-9.@_+=,/-]{1,128}")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_FUNCTION_RE = re.compile(r"[A-Za-z0-9_*-]{1,128}")
_MINIBASE_KEYS = "ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / SECURITY_TOKEN (minibase's own)"


def _role_arn(r: Reader, v: Any, key: str) -> str:
    arn = Text()(r, v, key)
    if _ROLE_ARN_RE.fullmatch(arn) is None:
        raise ConfigError(key, f"{arn!r} is not a RAM role ARN (acs:ram::ACCOUNT:role/NAME)")
    return arn


def _sts_endpoint(r: Reader, v: Any, key: str) -> str:
    """A host (https) or ``http(s)://host[:port]``, as ``scheme://host[:port]``."""
    endpoint = Text()(r, v, key).rstrip("/")
    if "://" not in endpoint:
        endpoint = "https://" + endpoint
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.path or parts.query:
        raise ConfigError(key, f"{endpoint!r}: expected a host (sts.aliyuncs.com) or https://host[:port]")
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if parts.scheme == "http" and host not in _LOOPBACK:
        # AssumeRole sends minibase's own credentials' signature and returns secrets.
        raise ConfigError(key, "plain http is only allowed for a loopback test endpoint; use https")
    return f"{parts.scheme}://{parts.netloc}"


def _pattern(regex: str, message: str, *, text: bool = True) -> Any:
    """A kind for a string matching ``regex`` (``text=False``: any scalar, as its string)."""

    def read(r: Reader, v: Any, key: str) -> str:
        if text:
            v = Text()(r, v, key)
        if not re.fullmatch(regex, str(v)):
            raise ConfigError(key, message.format(v=v))
        return str(v)

    return read


def _functions(r: Reader, v: Any, key: str) -> tuple[str, ...]:
    if (
        not isinstance(v, list)
        or not v
        or not all(isinstance(f, str) and _FUNCTION_RE.fullmatch(f) for f in v)
    ):
        raise ConfigError(key, "expected a non-empty list of FC function names (* allowed)")
    return tuple(v)


@record
class StsConfig:
    """``[auth.sts]``: invoke credentials from STS ``AssumeRole`` (``auth.credentials = "sts"``).

    ``endpoint`` is ``scheme://host[:port]``. The caller credentials that sign AssumeRole are
    minibase's own (``ALIBABA_CLOUD_ACCESS_KEY_ID``/``_SECRET``/``SECURITY_TOKEN``, which FC
    sets for a service with a role).
    """

    role_arn: str = field(metadata=spec(Custom(_role_arn, "acs:ram::0:role/placeholder")))
    access_key_id: str = field(metadata=derived("ALIBABA_CLOUD_ACCESS_KEY_ID"))
    access_key_secret: str = field(repr=False, metadata=derived("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
    security_token: str | None = field(
        default=None, repr=False, metadata=derived("ALIBABA_CLOUD_SECURITY_TOKEN")
    )
    # The global endpoint; "sts.aliyuncs.com" in the file means the same (https is implied).
    endpoint: str = field(default="https://sts.aliyuncs.com", metadata=spec(_sts_endpoint))
    # in the policy's resource ARNs
    region: str = field(
        default="*",
        metadata=spec(_pattern(r"(\*|[a-z0-9-]{1,64})", "{v!r} is not a region id (e.g. cn-hangzhou) or *")),
    )
    # likewise; read from a file, it defaults to the role's account
    account_id: str = field(
        default="*",
        metadata=spec(_pattern(r"(\*|[0-9]{1,32})", "expected the numeric account id or *", text=False)),
    )
    # DurationSeconds; read from a file, it defaults to auth.credentials_ttl
    duration: float = field(
        default=900.0, metadata=spec(Seconds(900, 3600, "must be between 15m (900 s) and 1h (3600 s)"))
    )
    timeout: float = field(
        default=5.0, metadata=spec(Seconds(0, 60, "must be between 0 and 60 s", open_lo=True))
    )
    # resource ARN style: "2.0" (services/S/functions/*) or "3.0"
    fc_version: str = field(
        default="2.0", metadata=spec(_pattern(r"(2\.0|3\.0)", "must be '2.0' or '3.0'", text=False))
    )
    # FC 3.0 function names/patterns; None: the app's
    functions: tuple[str, ...] | None = field(default=None, metadata=spec(_functions))

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any], mode: str, ttl: float) -> StsConfig | None:
        """``[auth.sts]``; None unless ``auth.credentials = "sts"``."""
        check_keys(t, "auth.sts", file_keys(cls))
        if mode != "sts":
            return None
        if "role_arn" not in t:
            raise ConfigError(
                "auth.sts.role_arn", 'required when auth.credentials = "sts" (acs:ram::ACCOUNT:role/NAME)'
            )
        values = read_fields(cls, r, t, "auth.sts")
        match = _ROLE_ARN_RE.fullmatch(values["role_arn"])
        assert match is not None  # checked by _role_arn
        values.setdefault("account_id", match.group(1))
        values.setdefault("duration", ttl)
        # minibase's own credentials, as the FC runtime provides them.
        akid, secret = r.env("ALIBABA_CLOUD_ACCESS_KEY_ID"), r.env("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if akid is None or secret is None:
            raise ConfigError(
                "auth.sts",
                "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must be set to call "
                "AssumeRole (Function Compute sets them when the service has a role)",
            )
        token = r.env("ALIBABA_CLOUD_SECURITY_TOKEN")
        return cls(access_key_id=akid, access_key_secret=secret, security_token=token, **values)


def _no_provider() -> str:
    platforms = ", ".join(f"[auth.{p.name}]" for p in PROVIDERS if p.config is not None)
    return f"no login provider configured: add {platforms} or, for development, [auth.dev]"


@record
class AuthConfig:
    """The ``[auth]`` section: session lifetimes, credentials, the login providers."""

    session_idle: float = field(default=30 * 86400.0, metadata=spec(Seconds()))
    session_max: float = field(default=180 * 86400.0, metadata=spec(Seconds()))
    credentials_ttl: float = field(
        default=900.0, metadata=spec(Seconds(900, 3600, "must be between 15m (900 s) and 1h (3600 s)"))
    )
    credentials: str = field(
        default="local", metadata=spec(Text(("local", "sts"), "must be 'local' or 'sts'"))
    )
    # FC-signed calls on the FC Invoke API path must carry a (signed) Content-MD5, as they
    # always must on /invoke/…; off by default there because FC's Python SDK sends none.
    require_body_digest: bool = field(default=False, metadata=spec(Flag()))
    dev_enabled: bool = field(default=False, metadata=spec(Flag(), key="dev.enabled"))
    # A login from another app of the same open-platform account (same unionid) is the same user.
    link_by_unionid: bool = field(default=False, metadata=spec(Flag()))
    alipay: AlipayConfig | None = field(default=None, metadata=TABLE)
    wechat: WechatConfig | None = field(default=None, metadata=TABLE)
    douyin: DouyinConfig | None = field(default=None, metadata=TABLE)
    sts: StsConfig | None = field(default=None, metadata=TABLE)  # set exactly when credentials == "sts"
    # Providers declared in the file whose env: values are all unset: name → hint.
    # They refuse logins with a clear message instead of failing the whole server.
    unavailable: Mapping[str, str] = field(
        default_factory=dict, metadata=derived("providers whose env: values are all unset")
    )

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers that can log users in, in a stable order."""
        return tuple(p.name for p in PROVIDERS if getattr(self, p.attr) not in (None, False))

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any]) -> AuthConfig:
        values = read_fields(cls, r, t, "auth")
        auth = cls(**values)  # the defaults, for the checks across keys
        if auth.session_idle > auth.session_max:
            raise ConfigError("auth.session_idle", "must not be longer than auth.session_max")
        values["sts"] = StsConfig.from_table(
            r, r.table(t, "auth.sts"), auth.credentials, auth.credentials_ttl
        )
        unavailable: dict[str, str] = {}
        for entry in PROVIDERS:
            if entry.config is not None:
                values[entry.attr] = read_provider(r, t, entry, unavailable)
        auth = cls(unavailable=unavailable, **values)
        # Checked without its environment (deploy), a config may lack one: deploy says so.
        if not auth.providers and not unavailable and not r.placeholders:
            raise ConfigError("auth", _no_provider())
        return auth
