"""``minibase.toml`` → one typed, immutable :class:`Config` (see docs/configuration.md).

The environment is read here and nowhere else: ``"env:NAME"`` values are resolved at
load time. Every missing or wrong value raises :class:`ConfigError` naming its key, and so
does every unknown key (a typo should not silently fall back to a default).

Each section is a record (``app``, ``auth``, ...) whose fields declare their default, how
the file spells them and how they are read, bounds included (:mod:`.fields`); the
section's ``from_table`` adds only what spans keys. :mod:`.units` holds the one grammar
of durations, sizes and rates, :mod:`.urls` the database and file-store URLs,
:mod:`.providers` the table of login providers.
"""

from __future__ import annotations

from ..errors import ConfigError
from .app import DEFAULT_CSP, AppConfig
from .auth import AuthConfig, StsConfig
from .collection import RULE_PRESETS, CollectionConfig
from .database import DatabaseConfig
from .files import FILE_RULE_PRESETS, MAX_FILE_SIZE, FilesArea, FilesConfig
from .functions import FunctionsConfig
from .limits import LimitsConfig, RateLimitsConfig
from .providers import PROVIDERS, AlipayConfig, DouyinConfig, ProviderEntry, WechatConfig
from .root import Config, load_config, parse_config, read_toml
from .units import MiB, Rate, parse_duration, parse_rate, parse_size
from .urls import S3Location, TableStoreLocation, parse_s3_url, parse_tablestore_url

__all__ = [
    "DEFAULT_CSP",
    "FILE_RULE_PRESETS",
    "MAX_FILE_SIZE",
    "PROVIDERS",
    "RULE_PRESETS",
    "AlipayConfig",
    "AppConfig",
    "AuthConfig",
    "CollectionConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "DouyinConfig",
    "FilesArea",
    "FilesConfig",
    "FunctionsConfig",
    "LimitsConfig",
    "MiB",
    "ProviderEntry",
    "Rate",
    "RateLimitsConfig",
    "S3Location",
    "StsConfig",
    "TableStoreLocation",
    "WechatConfig",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_rate",
    "parse_s3_url",
    "parse_size",
    "parse_tablestore_url",
    "read_toml",
]
