"""Login providers, built from the config's provider table. Platform modules are imported
only if used; each has ``from_config(config) -> Provider``."""

from __future__ import annotations

from importlib import import_module

from ...config import PROVIDERS, AuthConfig
from .base import Identity, Provider

__all__ = ["Identity", "Provider", "build_providers"]


def build_providers(auth: AuthConfig) -> dict[str, Provider]:
    """One provider per configured platform; ConfigError (naming the key) for bad keys."""
    out: dict[str, Provider] = {}
    for entry in PROVIDERS:
        config = getattr(auth, entry.attr)
        if config is None or config is False:
            continue
        module = import_module(f"{__name__}.{entry.module}")
        provider: Provider = module.from_config(config)
        out[entry.name] = provider
    return out
