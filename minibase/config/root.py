"""The whole configuration, :class:`Config`, and reading it from ``minibase.toml``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..util.record import field, record
from .app import AppConfig
from .auth import AuthConfig
from .collection import CollectionConfig
from .database import DatabaseConfig
from .fields import TABLE, derived, file_keys
from .files import FilesConfig
from .functions import FunctionsConfig
from .limits import LimitsConfig, RateLimitsConfig
from .reader import Reader, check_keys
from .urls import local_path
from .webhooks import WebhooksConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (FC's python3.10 runtime): tomllib's origin, the tomli package
    import tomli as tomllib

__all__ = ["Config", "load_config", "parse_config", "read_toml"]


@record
class Config:
    """The whole configuration, typed and checked; passed down from the edge."""

    app: AppConfig = field(default_factory=AppConfig, metadata=TABLE)
    auth: AuthConfig = field(default_factory=AuthConfig, metadata=TABLE)
    database: DatabaseConfig = field(default_factory=DatabaseConfig, metadata=TABLE)
    files: FilesConfig = field(default_factory=FilesConfig, metadata=TABLE)
    limits: LimitsConfig = field(default_factory=LimitsConfig, metadata=TABLE)
    rate_limits: RateLimitsConfig = field(default_factory=RateLimitsConfig, metadata=TABLE)
    functions: FunctionsConfig = field(default_factory=FunctionsConfig, metadata=TABLE)
    collections: Mapping[str, CollectionConfig] = field(default_factory=dict, metadata=TABLE)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig, metadata=TABLE)
    data_dir: Path = field(default=Path("data"), metadata=derived("--data / MINIBASE_DATA"))
    # the file this came from, for messages
    source: Path | None = field(default=None, metadata=derived("the path of the file itself"))

    def collection(self, name: str) -> CollectionConfig:
        return self.collections.get(name) or _DEFAULT_COLLECTION

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of ``database.url``, resolved inside the data dir; else None.

        ``sqlite:///rel.db`` → ``<data dir>/rel.db``; ``sqlite:////abs.db`` → ``/abs.db``.
        """
        return local_path(self.database.url, "sqlite", self.data_dir)

    @property
    def files_root(self) -> Path | None:
        """The directory of a ``file://`` ``files.url``, resolved inside the data dir; else None.

        ``file://files`` → ``<data dir>/files``; ``file:///srv/files`` → ``/srv/files``.
        """
        return local_path(self.files.url, "file", self.data_dir)


_DEFAULT_COLLECTION = CollectionConfig()


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML document of a config file; ConfigError (naming the file) if it cannot be read."""
    p = Path(path)
    try:
        doc: dict[str, Any] = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(p), "config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), f"not valid TOML: {e}") from None
    return doc


def load_config(
    path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    placeholders: bool = False,
) -> Config:
    """Read and check ``minibase.toml``. ``data_dir`` defaults to ``./data`` beside it.
    ``placeholders``: check it without its environment, every ``env:`` value a placeholder
    (what ``minibase deploy`` does: deploying needs no secrets)."""
    p = Path(path)
    raw = read_toml(p)
    base = p.resolve().parent
    ddir = Path(data_dir) if data_dir is not None else base / "data"
    return parse_config(
        raw, data_dir=ddir, base_dir=base, environ=environ, source=p, placeholders=placeholders
    )


def parse_config(
    raw: Mapping[str, Any],
    *,
    data_dir: str | os.PathLike[str] = "data",
    base_dir: str | os.PathLike[str] = ".",
    environ: Mapping[str, str] | None = None,
    source: Path | None = None,
    placeholders: bool = False,
) -> Config:
    """Check a TOML document (``env:NAME`` values from ``environ``, default the process's)
    and build its :class:`Config`; ConfigError naming the first wrong or unknown key."""
    r = Reader(os.environ if environ is None else environ, Path(base_dir), placeholders=placeholders)
    check_keys(raw, "", file_keys(Config))
    sections: dict[str, Any] = {}
    for name, cls in (
        ("app", AppConfig),
        ("auth", AuthConfig),
        ("database", DatabaseConfig),
        ("files", FilesConfig),
        ("limits", LimitsConfig),
        ("rate_limits", RateLimitsConfig),
    ):
        sections[name] = cls.from_table(r, r.table(raw, name))
    collections = r.tables(raw, "collections")
    sections["collections"] = {n: CollectionConfig.from_table(r, n, t) for n, t in collections.items()}
    sections["functions"] = FunctionsConfig.from_table(r, r.table(raw, "functions"))
    sections["webhooks"] = WebhooksConfig.from_table(r, r.table(raw, "webhooks"), sections["auth"].alipay)
    config = Config(data_dir=Path(data_dir), source=source, **sections)
    if config.app.web is not None:
        _check_web(config.app.web, config)
    return config


def _check_web(web: Path, config: Config) -> None:
    """Refuse a web folder that would serve the server's own secrets: one that is, holds or
    lies inside the data dir (secret key, database) or the files root, or that holds the
    config file, the SQLite database or a login key file."""
    root = Path(os.path.realpath(web))

    def inside(p: Path, folder: Path) -> bool:
        return p == folder or folder in p.parents

    for what, folder in (("the data dir", config.data_dir), ("the files root", config.files_root)):
        if folder is None:
            continue
        f = Path(os.path.realpath(folder))
        if inside(root, f) or inside(f, root):
            raise ConfigError("app.web", f"{web} overlaps {what} ({folder}): it would serve its files")
    files: list[tuple[str, Any]] = [
        ("the config file", config.source),
        ("the SQLite database", config.sqlite_path),
    ]
    for name in ("alipay", "wechat", "douyin"):
        provider = getattr(config.auth, name, None)
        for attr in ("private_key_file", "alipay_public_key_file"):
            files.append((f"auth.{name}.{attr}", getattr(provider, attr, None)))
    for what, file in files:
        if file is not None and inside(Path(os.path.realpath(file)), root):
            raise ConfigError("app.web", f"{web} holds {what} ({file}): it would serve it")
