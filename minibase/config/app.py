"""``[app]``: names, the server secret(s), the web folder, CORS."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..util.record import field, record
from .fields import FilePath, Flag, Name, read_fields, spec
from .reader import Reader

__all__ = ["DEFAULT_CSP", "AppConfig"]

_ORIGIN_RE = re.compile(r"https?://[^/\s]+")
# The web folder's pages: same-origin scripts, styles, requests and images (plus data: and
# blob: images for previews), no plugins, and no framing by another site.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _secrets(r: Reader, v: Any, key: str) -> tuple[str, ...]:
    if isinstance(v, str):
        secrets: tuple[str, ...] = (v,)
    elif isinstance(v, list) and v and all(isinstance(s, str) for s in v):
        secrets = tuple(r.resolve(s, f"{key}[{i}]") for i, s in enumerate(v))
    else:
        raise ConfigError(key, "expected a string or a non-empty list of strings")
    if any(len(s) < 32 for s in secrets):
        raise ConfigError(key, "each secret must be at least 32 characters")
    return secrets


def _folder(r: Reader, v: Any, key: str) -> Path:
    path: Path = FilePath()(r, v, key)
    if not path.is_dir():
        raise ConfigError(key, f"{path} is not a folder")
    return path


def _csp(r: Reader, v: Any, key: str) -> str:
    csp = v.strip() if isinstance(v, str) else ""
    if not csp or len(csp) > 4096 or not re.fullmatch(r"[ -~]+", csp):
        raise ConfigError(key, "expected a Content-Security-Policy: printable ASCII, at most 4096 characters")
    if not re.search(r"(^|;)\s*frame-ancestors\s", csp):
        csp += "; frame-ancestors 'none'"  # never framed by another site unless the policy says so
    return csp


def _origins(r: Reader, v: Any, key: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(
        isinstance(o, str) and (o == "*" or _ORIGIN_RE.fullmatch(o)) for o in v
    ):
        raise ConfigError(key, 'expected a list of origins like "https://example.com", or ["*"]')
    return tuple(v)


@record
class AppConfig:
    """The ``[app]`` section: names, the server secret(s), the web folder, CORS."""

    name: str = field(default="minibase", metadata=spec(Name()))
    service: str = field(default="minibase", metadata=spec(Name()))
    default_collection: str = field(default="default", metadata=spec(Name()))
    # MAC keys, newest first; the first signs, all verify (rotation). Empty: the server
    # generates one into the data directory on first start.
    secrets: tuple[str, ...] = field(default=(), metadata=spec(_secrets, key="secret"))
    # a folder served at "/" (the example's web app)
    web: Path | None = field(default=None, metadata=spec(_folder))
    # the Content-Security-Policy of the pages served from `web` (frame-ancestors included)
    csp: str = field(default=DEFAULT_CSP, metadata=spec(_csp))
    # serve watches (/realtime) from `minibase serve` (docs/realtime.md)
    realtime: bool = field(default=True, metadata=spec(Flag()))
    # origins allowed to call from a browser; "*" for any
    cors_origins: tuple[str, ...] = field(default=(), metadata=spec(_origins))

    @classmethod
    def from_table(cls, r: Reader, t: dict[str, Any]) -> AppConfig:
        return cls(**read_fields(cls, r, t, "app"))
